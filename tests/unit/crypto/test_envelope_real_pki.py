"""The recipes against the real X.509 TrustStore and encrypted-file FileKeyProvider."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from pathlib import Path

import pytest

from exchange.crypto import BatchSealer, Opener, SuiteId, open, seal, verify
from exchange.crypto.keys import KeyProvider, TrustResolver
from exchange.crypto.pki import (
    FileKeyProvider,
    Passphrase,
    PkiLayout,
    TrustStore,
    bootstrap_demo_pki,
    revoke_key,
    rotate_agency,
)
from exchange.errors import IntegrityError, IntegrityReason
from exchange.policy import summary_from_handling
from exchange.records import RECORD_TYPE_NAMES, record_type, record_type_for_fingerprint
from exchange.records.sample import generate
from tests.unit.crypto.envelope_world import message

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
PASS = Passphrase(b"correct horse battery staple")


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("real-pki")
    bootstrap_demo_pki(home, PASS, now=NOW, scrypt_log2_n=10)
    return home


def _provider(home: Path, agency: str, trust: TrustStore) -> FileKeyProvider:
    return FileKeyProvider(PkiLayout(home), agency, PASS, trust=trust)


def test_real_pki_implements_the_protocols(demo_home: Path) -> None:
    trust = TrustStore.load(demo_home)
    assert isinstance(trust, TrustResolver)
    assert isinstance(_provider(demo_home, "MEX-FGR", trust), KeyProvider)


@pytest.mark.parametrize("suite", list(SuiteId), ids=lambda s: s.value)
def test_real_pki_seals_and_opens_single_and_batch(demo_home: Path, suite: SuiteId) -> None:
    trust = TrustStore.load(demo_home)
    mex, usa = _provider(demo_home, "MEX-FGR", trust), _provider(demo_home, "USA-ATF", trust)
    blob = seal(b"avro", sender=mex, trust=trust, suite=suite, **message(now=NOW))
    assert open(blob, recipient=usa, trust=trust, now=NOW).plaintext == b"avro"
    assert verify(blob, trust=trust, now=NOW).sender_key.suite is suite
    with BatchSealer(mex, trust, suite=suite, clock=lambda: NOW) as batch:
        futures = [batch.add(b"%d" % i, **message(now=NOW)) for i in range(5)]
    opener = Opener(trust, recipient=usa, clock=lambda: NOW)
    assert [opener.open(f.result()).plaintext for f in futures] == [b"%d" % i for i in range(5)]


def test_real_pki_rotation_keeps_old_envelopes_valid(demo_home: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(demo_home, home)
    trust = TrustStore.load(home)
    old = seal(b"before", sender=_provider(home, "MEX-FGR", trust), trust=trust,
               suite=SuiteId.CLASSIC, **message(now=NOW))  # fmt: skip
    later = NOW + dt.timedelta(days=1)
    rotate_agency(home, "MEX-FGR", PASS, suites=[SuiteId.CLASSIC], now=later)
    trust = TrustStore.load(home)
    new = seal(b"after", sender=_provider(home, "MEX-FGR", trust), trust=trust,
               suite=SuiteId.CLASSIC, **message(now=later))  # fmt: skip
    old_key = verify(old, trust=trust, now=NOW).header.sender.key_id
    new_key = verify(new, trust=trust, now=later).header.sender.key_id
    assert old_key != new_key
    usa = _provider(home, "USA-ATF", trust)
    assert open(old, recipient=usa, trust=trust, now=NOW).plaintext == b"before"


def test_real_pki_compromised_key_is_rejected(demo_home: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(demo_home, home)
    trust = TrustStore.load(home)
    blob = seal(b"x", sender=_provider(home, "MEX-FGR", trust), trust=trust,
                suite=SuiteId.PQ_HYBRID, **message(now=NOW))  # fmt: skip
    key_id = verify(blob, trust=trust, now=NOW).header.sender.key_id
    revoke_key(home, "MEX-FGR", key_id, PASS, now=NOW + dt.timedelta(hours=1))
    with pytest.raises(IntegrityError) as info:
        verify(blob, trust=TrustStore.load(home), now=NOW)
    assert info.value.reason is IntegrityReason.REVOKED_KEY


@pytest.mark.parametrize("suite", list(SuiteId), ids=lambda s: s.value)
@pytest.mark.parametrize(("sender", "receiver"), [("MEX-FGR", "USA-ATF"), ("USA-ATF", "MEX-FGR")])
def test_every_record_family_crosses_the_border_through_the_api(
    demo_home: Path, suite: SuiteId, sender: str, receiver: str
) -> None:
    trust = TrustStore.load(demo_home)
    tx, rx = _provider(demo_home, sender, trust), _provider(demo_home, receiver, trust)
    opener = Opener(trust, recipient=rx, clock=lambda: NOW)
    for name in RECORD_TYPE_NAMES:
        rt = record_type(name)
        (record,) = generate(name, count=1, seed=5, originator=sender)
        handling = summary_from_handling(record.handling)
        if handling.releasable_to_agencies is not None:
            named = (*handling.releasable_to_agencies, receiver)
            handling = dataclasses.replace(
                handling, releasable_to_agencies=tuple(sorted(set(named)))
            )
        blob = seal(rt.encode(record), sender=tx, trust=trust, recipients=[receiver], suite=suite,
                    record_type=name, schema_fingerprint=rt.fingerprint, handling=handling,
                    topic=f"xchg.{sender}.crossborder.{name}", now=NOW)  # fmt: skip
        opened = opener.open(blob)
        fingerprint = opened.header.schema_fingerprint
        decoded = record_type_for_fingerprint(fingerprint).decode(
            opened.plaintext, writer_fingerprint=fingerprint
        )
        assert decoded == record

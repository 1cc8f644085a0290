"""The real PKI under the envelope recipes: the contract the two halves share (keys.py)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from exchange.crypto import SuiteId, open, seal, verify
from exchange.crypto.pki import TrustStore, enroll_agency, revoke_key, rotate_agency
from exchange.errors import IntegrityError, IntegrityReason, PolicyError
from exchange.policy import HandlingSummary
from tests.unit.crypto.pki._pki_world import NOW, Pki

HANDLING = HandlingSummary(tlp="AMBER", releasable_to=("MEX", "USA"), originator="MEX-FGR")
TOPIC = "xchg.MEX-FGR.crossborder.seizure"
LATER = NOW + dt.timedelta(days=1)


def _seal(pki: Pki, suite: SuiteId, *, at: dt.datetime, record_type: str = "seizure") -> bytes:
    return seal(
        b"avro bytes of a seizure",
        sender=pki.provider("MEX-FGR"),
        trust=pki.store(),
        recipients=["USA-ATF"],
        suite=suite,
        record_type=record_type,
        schema_fingerprint=bytes(32),
        handling=HANDLING,
        topic=TOPIC,
        now=at,
    )


@pytest.mark.parametrize("suite", list(SuiteId), ids=lambda s: s.value)
def test_envelope_round_trip_and_auditor_without_private_keys(
    demo_pki: Pki, suite: SuiteId, tmp_path: Path
) -> None:
    blob = _seal(demo_pki, suite, at=NOW)
    opened = open(blob, recipient=demo_pki.provider("USA-ATF"), trust=demo_pki.store(), now=NOW)
    assert opened.plaintext == b"avro bytes of a seizure"
    # An auditor gets the public trust directory only.
    shutil.copytree(demo_pki.layout.trust_dir, tmp_path / "trust")
    auditor = TrustStore.from_directory(tmp_path / "trust")
    assert verify(blob, trust=auditor, now=NOW).header.sender.agency_id == "MEX-FGR"


def test_message_signed_before_rotation_still_verifies(pki: Pki) -> None:
    blob = _seal(pki, SuiteId.PQ_HYBRID, at=NOW)
    rotate_agency(
        pki.home, "MEX-FGR", pki.passphrase, suites=["pq-hybrid"], now=NOW + dt.timedelta(hours=1)
    )
    assert verify(blob, trust=pki.store(), now=LATER).header.sender.agency_id == "MEX-FGR"
    newer = _seal(pki, SuiteId.PQ_HYBRID, at=LATER)
    assert verify(newer, trust=pki.store(), now=LATER).header.sender.key_id != (
        verify(blob, trust=pki.store(), now=LATER).header.sender.key_id
    )


def test_message_from_compromised_key_rejected_even_if_signed_before(pki: Pki) -> None:
    blob = _seal(pki, SuiteId.CLASSIC, at=NOW)
    key_id = pki.store().current_key("MEX-FGR", SuiteId.CLASSIC, at=NOW).key_id
    revoke_key(pki.home, "MEX-FGR", key_id, pki.passphrase, now=NOW + dt.timedelta(hours=1))
    with pytest.raises(IntegrityError) as info:
        verify(blob, trust=pki.store(), now=LATER)
    assert info.value.reason is IntegrityReason.REVOKED_KEY


def test_publishing_rights_from_the_certificate_are_enforced(pki: Pki) -> None:
    enroll_agency(
        pki.home, "MEX-SEDENA", pki.passphrase, suites=["classic"], may_publish=["intel"], now=NOW
    )
    with pytest.raises(PolicyError):
        seal(
            b"x",
            sender=pki.provider("MEX-SEDENA"),
            trust=pki.store(),
            recipients=["USA-ATF"],
            suite=SuiteId.CLASSIC,
            record_type="seizure",
            schema_fingerprint=bytes(32),
            handling=HandlingSummary(
                tlp="AMBER", releasable_to=("MEX", "USA"), originator="MEX-SEDENA"
            ),
            topic="xchg.MEX-SEDENA.crossborder.seizure",
            now=NOW,
        )

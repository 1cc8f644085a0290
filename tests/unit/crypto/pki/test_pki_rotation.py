"""Enrollment and rotation: overlapping generations, each checked at its signing time."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from exchange.crypto.keys import SuiteId
from exchange.crypto.pki import enroll_agency, init_country, rotate_agency, verify_signatures
from exchange.errors import ConfigurationError, IntegrityError, IntegrityReason
from tests.unit.crypto.pki._pki_world import NOW, Pki

DAY = dt.timedelta(days=1)


@pytest.mark.parametrize("suite", list(SuiteId), ids=lambda s: s.value)
def test_rotation_old_key_verifies_its_messages_new_key_is_current(
    pki: Pki, suite: SuiteId
) -> None:
    old = pki.store().current_key("MEX-FGR", suite, at=NOW)
    old_message_at = NOW + DAY
    old_signatures = pki.provider("MEX-FGR").sign(old.key_id, b"old message")

    rotated_at = NOW + 30 * DAY
    (new,) = rotate_agency(pki.home, "MEX-FGR", pki.passphrase, suites=[suite], now=rotated_at)
    assert new.key_id != old.key_id
    assert new.not_before == rotated_at
    assert new.may_publish == old.may_publish  # rights carry over

    store = pki.store()
    provider = pki.provider("MEX-FGR")
    assert provider.current_key(suite, at=rotated_at + DAY).key_id == new.key_id
    assert store.current_key("MEX-FGR", suite, at=rotated_at - DAY).key_id == old.key_id
    # The old generation still verifies what it signed, also after the rotation.
    for at in (old_message_at, rotated_at + DAY):
        assert verify_signatures(
            store.signing_key("MEX-FGR", old.key_id, at=at), b"old message", old_signatures
        )
    new_signatures = provider.sign(new.key_id, b"new message")
    assert verify_signatures(
        store.signing_key("MEX-FGR", new.key_id, at=rotated_at), b"new message", new_signatures
    )
    # The new generation did not exist before the rotation.
    with pytest.raises(IntegrityError) as info:
        store.signing_key("MEX-FGR", new.key_id, at=rotated_at - DAY)
    assert info.value.reason is IntegrityReason.KEY_NOT_VALID_AT_SIGNING_TIME

    entry = store.entry("MEX-FGR", old.key_id)
    assert entry is not None
    assert store.status(entry, at=rotated_at + DAY) == "superseded"


def test_rotate_all_enrolled_suites_by_default(pki: Pki) -> None:
    new = rotate_agency(pki.home, "USA-ATF", pki.passphrase, now=NOW + DAY)
    assert {k.suite for k in new} == set(SuiteId)
    assert len(pki.store().entries()) == 4 * 3 + 3


def test_rotate_unenrolled_agency_refused(pki: Pki) -> None:
    with pytest.raises(
        ConfigurationError, match=r"not enrolled.*exchange pki enroll --agency USA-HSI"
    ):
        rotate_agency(pki.home, "USA-HSI", pki.passphrase, now=NOW)


def test_enroll_twice_refused(pki: Pki) -> None:
    with pytest.raises(
        ConfigurationError, match="already enrolled for classic; run `exchange pki rotate"
    ):
        enroll_agency(pki.home, "MEX-FGR", pki.passphrase, suites=["classic"], now=NOW)


def test_enroll_with_restricted_rights_and_one_suite(pki: Pki) -> None:
    (key,) = enroll_agency(
        pki.home,
        "USA-HSI",
        pki.passphrase,
        suites=["cnsa"],
        may_publish=["intel", "seizure"],
        valid_days=30,
        now=NOW,
    )
    assert key.may_publish == {"intel", "seizure"}
    assert key.not_after - key.not_before == 30 * DAY
    stored = pki.store().signing_key("USA-HSI", key.key_id, at=NOW)
    assert stored.may_publish == {"intel", "seizure"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"may_publish": ["gossip"]}, "unknown record types"),
        ({"may_publish": []}, "may-publish is empty"),
        ({"valid_days": 0}, "must be positive"),
    ],
)
def test_enroll_bad_input_refused(pki: Pki, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        enroll_agency(pki.home, "USA-HSI", pki.passphrase, now=NOW, **kwargs)  # type: ignore[arg-type]  # mixed-type table


@pytest.mark.parametrize("agency", ["mex-fgr", "CAN-RCMP", "MEX-../../x", "MEX-"])
def test_malformed_agency_id_refused(pki: Pki, agency: str) -> None:
    with pytest.raises(ConfigurationError, match="malformed"):
        enroll_agency(pki.home, agency, pki.passphrase, now=NOW)


def test_enroll_without_country_root_explains_what_to_do(tmp_path: Path, demo_pki: Pki) -> None:
    init_country(tmp_path, "MEX", demo_pki.passphrase, now=NOW, scrypt_log2_n=10)
    with pytest.raises(
        ConfigurationError, match=r"no classic root CA for USA .*init-country --country USA"
    ):
        enroll_agency(tmp_path, "USA-ATF", demo_pki.passphrase, now=NOW)


def test_certificate_validity_clipped_to_root(pki: Pki) -> None:
    (key,) = enroll_agency(
        pki.home, "USA-HSI", pki.passphrase, suites=["classic"], valid_days=100_000, now=NOW
    )
    root = pki.store().entry("USA-HSI", key.key_id)
    assert root is not None
    assert key.not_after == root.root.not_valid_after_utc


def test_rotation_in_the_same_second_as_enrollment_still_switches_keys(pki: Pki) -> None:
    # X.509 validity has one-second resolution; the serial's time prefix breaks the tie.
    (first,) = enroll_agency(pki.home, "USA-HSI", pki.passphrase, suites=["classic"], now=NOW)
    (second,) = rotate_agency(pki.home, "USA-HSI", pki.passphrase, now=NOW)
    assert first.not_before == second.not_before
    assert pki.store().current_key("USA-HSI", SuiteId.CLASSIC, at=NOW).key_id == second.key_id

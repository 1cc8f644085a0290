"""Audit entries: canonical encoding, bounds, and no record content by construction."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from exchange.audit import (
    MAX_ENTRY_BYTES,
    AuditFormatError,
    AuditReason,
    EntryKind,
    KafkaPosition,
    Outcome,
    decode_entry,
    delivery_entry,
    encode_entry,
    publish_entry,
    quarantine_entry,
)
from exchange.crypto import KeyRef, SuiteId, seal, verify
from exchange.crypto.testing import InMemoryAgency, InMemoryTrust
from exchange.errors import IntegrityReason
from exchange.identifiers import is_agency_id
from exchange.policy import CAVEATS, TLP_LEVELS, allowed_recipients, summary_from_handling
from exchange.records import record_type, schema_root
from exchange.records.sample import generate_corpus
from tests.unit.audit.audit_world import NOW, sample_entry

AGENCIES = ["MEX-FGR", "MEX-SSPC", "MEX-SEDENA", "MEX-FGJ-TAMPS", "USA-ATF", "USA-CBP", "USA-HSI"]


def test_entry_round_trips_through_its_canonical_bytes() -> None:
    entry = sample_entry(7)
    data = encode_entry(entry)
    assert data[:3] == b"XA\x01"
    assert decode_entry(data) == entry
    assert encode_entry(decode_entry(data)) == data


def test_every_kind_round_trips() -> None:
    base = sample_entry(1)
    pos = KafkaPosition("usa-atf.inbound", 2, 9)
    entries = [
        base,
        dataclasses.replace(base, kind=EntryKind.DELIVERY, record_id=uuid.uuid4()),
        dataclasses.replace(base, kind=EntryKind.QUARANTINE, outcome=Outcome.QUARANTINED,
                            reason=AuditReason.BAD_SIGNATURE, position=pos),
        dataclasses.replace(base, kind=EntryKind.RECEIPT, receipt_digest=bytes(32)),
        dataclasses.replace(base, outcome=Outcome.FAILED, reason=AuditReason.BROKER_ERROR),
    ]  # fmt: skip
    for e in entries:
        assert decode_entry(encode_entry(e)) == e


@pytest.mark.parametrize(
    ("mutate", "why"),
    [
        (lambda b: b"XB" + b[2:], "magic"),
        (lambda b: b[:2] + b"\x02" + b[3:], "version"),
        (lambda b: b + b"\x00", "trailing"),
        (lambda b: b[:-1], "truncated"),
        (lambda b: b[:0], "empty"),
        (lambda b: b[:3] + b"\xff" * 20, "garbage"),
        (lambda b: b + bytes(MAX_ENTRY_BYTES), "oversized"),
    ],
)
def test_malformed_entries_are_refused(mutate: Any, why: str) -> None:
    with pytest.raises(AuditFormatError):
        decode_entry(mutate(encode_entry(sample_entry(3))))
    assert why


def test_non_minimal_varint_is_not_canonical() -> None:
    data = encode_entry(sample_entry(3))
    # kind is the first Avro field: enum index 0 (publish) is the single byte 0x00; the
    # two-byte varint 0x80 0x00 decodes to the same value but is not the canonical form.
    assert data[3] == 0x00
    with pytest.raises(AuditFormatError):
        decode_entry(data[:3] + b"\x80\x00" + data[4:])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("log_agency", "mex-fgr"),
        ("record_type", "Seizure record of Juan"),
        ("signing_digest", b"short"),
        ("recipients", (KeyRef("USA-CBP", "k"), KeyRef("USA-ATF", "k"))),
        ("recipients", (KeyRef("USA-ATF", "key with spaces"),)),
        ("recipients", tuple(KeyRef(f"USA-A{i:03d}", "k") for i in range(65))),
        ("reason", AuditReason.REPLAY),  # a reason with outcome ok
        ("message_id", None),  # publish needs a message id
        ("position", None),  # a successful publish has a broker position
    ],
)
def test_fields_outside_their_syntax_are_refused(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=r"."):
        dataclasses.replace(sample_entry(1), **{field: value})


def test_schema_enums_are_pinned_to_the_code() -> None:
    schema = json.loads((schema_root() / "audit" / "v1.avsc").read_text())

    def enums(node: Any) -> Iterator[tuple[str, list[str]]]:
        if isinstance(node, dict):
            if node.get("type") == "enum":
                yield node["name"], node["symbols"]
            for v in node.values():
                yield from enums(v)
        elif isinstance(node, list):
            for v in node:
                yield from enums(v)

    found = dict(enums(schema))
    assert found["EntryKind"] == [k.value for k in EntryKind]
    assert found["Outcome"] == [o.value for o in Outcome]
    assert found["ReasonCode"] == [r.value for r in AuditReason]
    assert {r.value for r in IntegrityReason} <= set(found["ReasonCode"])
    assert found["Tlp"] == list(TLP_LEVELS)
    assert set(found["Caveat"]) == set(CAVEATS)
    string_fields = {"logAgency", "recordType", "topic", "originator", "agencyId", "keyId"}
    assert "detail" not in json.dumps(schema)  # no free-text field
    assert string_fields  # every string in the schema is one of these identifiers


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def test_entries_from_real_sample_records_carry_no_record_content() -> None:
    corpus = generate_corpus(seed=11, cases=2)
    names = set(AGENCIES)
    for r in corpus.records():
        names.add(r.handling.originator.agency_id)
        names.update(str(a) for a in r.handling.releasable_to_agencies or ())
    agencies = {a: InMemoryAgency.generate(a, (SuiteId.CLASSIC,), seed=b"pii") for a in names}
    trust = InMemoryTrust.of(*agencies.values())
    handling_words = set(TLP_LEVELS) | set(CAVEATS)
    checked = 0
    for i, record in enumerate(corpus.records()):
        rtype = record_type(type(record).record_type_name)
        summary = summary_from_handling(record.handling)
        sender = summary.originator
        recipients = sorted(allowed_recipients(summary, names, sender=sender))
        assert recipients, f"record {i} has nobody to go to"
        blob = seal(rtype.encode(record), sender=agencies[sender], trust=trust,
                    recipients=recipients, suite=SuiteId.CLASSIC, record_type=rtype.name,
                    schema_fingerprint=rtype.fingerprint, handling=summary,
                    topic=f"{sender.lower()}.{rtype.name}", now=NOW)  # fmt: skip
        verified = verify(blob, trust=trust, now=NOW)
        pos = KafkaPosition(f"{sender.lower()}.{rtype.name}", 0, i)
        rid = uuid.UUID(str(record.meta.record_id))
        encoded = b"".join(
            encode_entry(e)
            for e in (
                publish_entry(verified, log_agency=sender, position=pos, time=NOW, record_id=rid,
                              header_digest=verified.signing_digest),
                delivery_entry(verified, log_agency=recipients[0], position=pos, time=NOW,
                               record_id=rid),
                quarantine_entry(log_agency=recipients[0], position=pos, time=NOW,
                                 reason=AuditReason.SCHEMA_MISMATCH, verified=verified),
            )
        )  # fmt: skip
        allowed = {str(record.meta.record_id), rtype.name}
        values = {
            s
            for s in _strings(record.model_dump(mode="json"))
            if len(s) >= 4 and s not in allowed and s not in handling_words and not is_agency_id(s)
        }
        assert len(values) >= 5  # names, serial numbers, places, narrative, dates...
        for s in values:
            assert s.encode() not in encoded, f"{rtype.name} field value {s!r} leaked"
            assert s.lower().encode() not in encoded.lower()
        checked += 1
    assert checked == len(corpus.records()) >= 10

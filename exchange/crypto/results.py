"""Results of verification and opening: what the application may trust (unstable module)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from exchange.crypto.header import DerivedFrom, EnvelopeHeader
from exchange.crypto.keys import AgencyKey

__all__ = ["OpenedEnvelope", "VerifiedEnvelope"]


@dataclass(frozen=True)
class VerifiedEnvelope:
    """A header whose signature, sender key, publishing right, time and handling checked out.

    Attributes:
        header: the verified signed header.
        sender_key: the sender key generation that signed it (valid at ``header.created_at``).
        signing_digest: the leaf data; cite it as provenance of derived records.
        batch_root: the signed Merkle root; ``batch_size``/``leaf_index`` place the leaf.
        header_digest: ``h_hdr``, the digest of the signed header bytes (audit entries).
    """

    header: EnvelopeHeader
    sender_key: AgencyKey = field(repr=False)
    signing_digest: bytes
    batch_root: bytes
    batch_size: int
    leaf_index: int
    header_digest: bytes

    @property
    def message_id(self) -> uuid.UUID:
        return self.header.message_id

    def as_parent(self) -> DerivedFrom:
        """Provenance entry naming this message in a derived record's header."""
        return DerivedFrom(self.header.message_id, self.signing_digest)

    def to_dict(self) -> dict[str, Any]:
        """The verified header as JSON-ready data (what ``exchange envelope verify`` prints)."""
        v = self
        h = v.header
        hs = h.handling
        return {
            "verified": True,
            "version": h.version,
            "suite": h.suite.value,
            "messageId": str(h.message_id),
            "sender": {"agencyId": h.sender.agency_id, "keyId": h.sender.key_id},
            "producer": {
                "producerId": h.producer.producer_id,
                "epoch": h.producer.epoch,
                "sequence": h.producer.sequence,
            },
            "createdAt": h.created_at.isoformat(),
            "expiresAt": h.expires_at.isoformat(),
            "topic": h.topic,
            "recordType": h.record_type,
            "schemaFingerprint": h.schema_fingerprint.hex(),
            "handling": {
                "tlp": hs.tlp_label,
                "releasableTo": list(hs.releasable_to),
                "releasableToAgencies": None
                if hs.releasable_to_agencies is None
                else list(hs.releasable_to_agencies),
                "caveats": list(hs.caveats),
                "originator": hs.originator,
            },
            "provenance": [
                {"messageId": str(p.message_id), "digest": p.digest.hex()} for p in h.provenance
            ],
            "recipients": [{"agencyId": r.agency_id, "keyId": r.key_id} for r in h.recipients],
            "dekEpoch": h.dek_epoch.hex(),
            "nonceCounter": h.nonce_counter,
            "commitment": h.commitment.hex(),
            "signingDigest": v.signing_digest.hex(),
            "batch": {"size": v.batch_size, "leafIndex": v.leaf_index, "root": v.batch_root.hex()},
        }


@dataclass(frozen=True)
class OpenedEnvelope:
    """A verified envelope opened by one of its recipients.

    Attributes:
        verified: the verification result (header, sender key, digests).
        plaintext: the Avro bytes the sender committed to.
        salt: the commitment salt; revealing ``plaintext`` and ``salt`` proves the content to
            a third party holding the signed header (non-repudiation).
    """

    verified: VerifiedEnvelope
    plaintext: bytes = field(repr=False)
    salt: bytes = field(repr=False)

    @property
    def header(self) -> EnvelopeHeader:
        return self.verified.header

"""Errors of the audit library, placed in the tree of :mod:`exchange.errors`.

::

    DataError
    ├── AuditFormatError          an entry, note, checkpoint or receipt is malformed
    ├── AuditLogCorruptError      the entries file is damaged beyond a torn last write
    └── WitnessRefusedError       a witness refused to cosign (``reason`` says why)
    InfrastructureError
    └── AuditStorageError         the disk failed (retry may help)

Receipt verification failures raise the opaque :class:`~exchange.errors.IntegrityError`, like
envelopes, because a receipt arrives from a peer.
"""

from __future__ import annotations

from enum import StrEnum

from exchange.errors import DataError, InfrastructureError

__all__ = [
    "AuditFormatError",
    "AuditLogCorruptError",
    "AuditStorageError",
    "RefusalReason",
    "WitnessRefusedError",
]


class AuditFormatError(DataError):
    """Bytes or text are not a valid, canonical, in-bounds audit format (entry, note...)."""


class AuditLogCorruptError(DataError):
    """The entries file is damaged in a way a crash cannot explain; it is never repaired."""

    def diagnostics(self) -> str:
        return f"{self}; the log was not opened; keep the directory as evidence and restore it"


class AuditStorageError(InfrastructureError):
    """Reading or writing the log directory failed."""


class RefusalReason(StrEnum):
    """Why a witness refused (C2SP tlog-witness response codes in brackets)."""

    UNKNOWN_LOG = "unknown_log"  # [404] the origin is not a log this witness follows
    BAD_SIGNATURE = "bad_signature"  # [403] the log signature does not verify
    CONFLICT = "conflict"  # [409] old size is not the size this witness last cosigned
    INCONSISTENT = "inconsistent"  # [422] the consistency proof fails (fork or rewrite)
    ROLLBACK = "rollback"  # [400] the checkpoint is smaller than the one already cosigned
    MALFORMED = "malformed"  # [400] the request is not well formed


class WitnessRefusedError(DataError):
    """A witness refused to cosign a checkpoint.

    Attributes:
        reason: the refusal code.
        known_size: for ``conflict``, the tree size the witness last cosigned (the log
            retries with a proof from that size, as in C2SP tlog-witness).
    """

    def __init__(self, reason: RefusalReason, message: str, *, known_size: int | None = None):
        super().__init__(f"witness refused the checkpoint ({reason.value}): {message}")
        self.reason = reason
        self.known_size = known_size

"""Running witnesses over logs, the witness policy file, and the audit home layout.

Transport (decision 0005, phase 2): a witness reads the log directories it follows and calls
:meth:`Witness.add_checkpoint <exchange.audit.Witness.add_checkpoint>` directly, once per
stored checkpoint it has not cosigned yet, in size order, each with an RFC 9162 consistency
proof from the size it last cosigned; the cosignature line is stored with the log's
checkpoint. This is the single-site transport of ``exchange demo`` and ``exchange audit
witness``; across two sites the same request travels over the bus (see docs/audit.md).

Layout under ``$EXCHANGE_HOME/audit``::

    logs/<agency>/            each agency's log (AuditLog)
    witness/<agency>/         each witness agency's state (last cosigned checkpoint per log)
    witness-policy.json       {"<country>": {"witnesses": [...], "quorum": n}, ...}: who must
                              cosign the logs of that country's agencies
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

from exchange.audit.agency import locked_log
from exchange.audit.checkpoint import WitnessPolicy
from exchange.audit.errors import WitnessRefusedError
from exchange.audit.note import parse_key_name
from exchange.audit.storage import atomic_write
from exchange.audit.witness import Witness
from exchange.errors import ConfigurationError

__all__ = [
    "AuditHome",
    "WitnessOutcome",
    "load_witness_policies",
    "witness_logs",
    "write_witness_policies",
]

POLICY_FILE: Final = "witness-policy.json"


@dataclass(frozen=True)
class AuditHome:
    """Where an installation keeps its audit logs, witness state and witness policy."""

    root: Path

    def log_dir(self, agency_id: str) -> Path:
        return self.root / "logs" / agency_id

    def witness_dir(self, agency_id: str) -> Path:
        return self.root / "witness" / agency_id

    @property
    def policy_path(self) -> Path:
        return self.root / POLICY_FILE

    def logs(self) -> dict[str, Path]:
        """Every agency log directory present (agency id -> directory)."""
        folder = self.root / "logs"
        if not folder.is_dir():
            return {}
        return {p.name: p for p in sorted(folder.iterdir()) if (p / "ORIGIN").is_file()}


@dataclass(frozen=True)
class WitnessOutcome:
    """What a witness did with one checkpoint: cosigned, or refused with a reason."""

    witness: str
    log_agency: str
    size: int
    refused: str | None = None


def witness_logs(
    witness: Witness, logs: Mapping[str, Path], *, now: datetime | None = None
) -> list[WitnessOutcome]:
    """Let ``witness`` cosign every checkpoint of the ``logs`` it follows, in size order.

    Logs it does not follow are skipped. A refusal stops that log (later checkpoints would
    only conflict) and is returned, never swallowed.

    Raises:
        AuditStorageError: a log is held by a writer, or the disk failed.
        AuditLogCorruptError: a log or the witness state is damaged.
    """
    out: list[WitnessOutcome] = []
    for agency, directory in sorted(logs.items()):
        if agency == witness.agency_id or not witness.follows(agency):
            continue
        with locked_log(directory, agency) as log:
            state = witness.state(agency)
            size = 0 if state is None else state.size
            for signed in log.checkpoints():
                cp = signed.checkpoint
                mine = any(
                    (parse_key_name(s.name) or ("",))[0] == witness.agency_id
                    for s in signed.note.signatures
                )
                if cp.size < size or (cp.size == size and mine):
                    continue
                try:
                    line = witness.add_checkpoint(
                        signed.encode(), old_size=size, proof=log.consistency_proof(size, cp.size),
                        now=now,
                    )  # fmt: skip
                except WitnessRefusedError as exc:
                    out.append(WitnessOutcome(witness.agency_id, agency, cp.size, str(exc)))
                    break
                log.add_cosignature(signed, line)
                size = cp.size
                out.append(WitnessOutcome(witness.agency_id, agency, cp.size))
    return out


def write_witness_policies(path: Path, policies: Mapping[str, WitnessPolicy]) -> None:
    """Write the per-country witness policy file (atomically)."""
    data = {
        country: {"witnesses": sorted(p.witnesses), "quorum": p.quorum}
        for country, p in sorted(policies.items())
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, (json.dumps(data, indent=2) + "\n").encode())


def load_witness_policies(path: Path) -> dict[str, WitnessPolicy]:
    """Read the per-country witness policy file.

    Raises:
        ConfigurationError: missing or invalid (an auditor never guesses a quorum).
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {
            str(country): WitnessPolicy(frozenset(map(str, p["witnesses"])), int(p["quorum"]))
            for country, p in data.items()
        }
    except FileNotFoundError:
        raise ConfigurationError(
            f"no witness policy at {path}: write one (docs/audit.md, 'Witness policy file') "
            "or run `exchange demo`"
        ) from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigurationError(f"witness policy {path} is invalid: {exc}") from None

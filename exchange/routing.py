"""Topic names and the routing table: which agencies a record type goes to by default.

Topic layout (see docs/decisions/0003-topic-topology.md):

``xchg.<sender>.<reach>.<record-type>``
    the sender's outbound exchange topic. ``reach`` is ``domestic`` when every recipient is
    in the sender's country and ``crossborder`` otherwise, so MirrorMaker 2 replicates only
    ``xchg.<COUNTRY>-*.crossborder.*`` to the other country: a national-only record, even
    encrypted, never leaves its country's cluster.
``quarantine.<agency>``
    what an agency's consumer refused, with the original bytes and the reason code.
``audit.<agency>``
    the agency's audit log as published: entries, then the signed checkpoint covering them
    (docs/audit.md, "On the bus").
``receipts.<agency>``
    signed delivery receipts addressed to the agency as a sender, one per settled message.

Every name may carry a deployment prefix (``EXCHANGE_TOPIC_PREFIX``, e.g. ``staging.``) so
several exchanges, or isolated test runs, can share one cluster.

The routing table says which agencies a record type goes to by default; the record's own
handling markings (``exchange.policy``) then remove every agency they do not release it to,
and an operator's ``--to`` may narrow the result further. Nothing can widen it.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from exchange.errors import ConfigurationError
from exchange.identifiers import AGENCY_ID_PATTERN

__all__ = [
    "EXCHANGE_TOPIC_REGEX",
    "Reach",
    "RoutingRule",
    "RoutingTable",
    "audit_topic",
    "check_prefix",
    "exchange_topic",
    "exchange_topic_regex",
    "parse_exchange_topic",
    "quarantine_topic",
    "reach_for",
    "receipts_topic",
]

_AGENCY = AGENCY_ID_PATTERN
_TYPE = r"[a-z]+(?:-[a-z]+)*"
_TOPIC = re.compile(rf"^xchg\.({_AGENCY})\.(domestic|crossborder)\.({_TYPE})$")
_PREFIX = re.compile(r"^(?:[a-z0-9][a-z0-9_-]{0,40}\.)?$")


def check_prefix(prefix: str) -> str:
    """Return ``prefix`` if it is empty or ``<lowercase name>.``.

    Raises:
        ValueError: anything else.
    """
    if not _PREFIX.match(prefix):
        raise ValueError(f"got topic prefix {prefix!r}, expected '' or a lowercase name and '.'")
    return prefix


def exchange_topic_regex(prefix: str = "") -> str:
    """librdkafka regex subscription (``^`` first) matching every exchange topic."""
    # Only '.' needs escaping in a checked prefix; librdkafka's regex engine is minimal.
    return "^" + check_prefix(prefix).replace(".", r"\.") + r"xchg\..*"


#: Subscription to every exchange topic without a prefix.
EXCHANGE_TOPIC_REGEX = exchange_topic_regex()


class Reach(StrEnum):
    DOMESTIC = "domestic"
    CROSS_BORDER = "crossborder"


def _country(agency_id: str) -> str:
    return agency_id.split("-", 1)[0]


def reach_for(sender: str, recipients: frozenset[str] | set[str] | list[str]) -> Reach:
    """``crossborder`` when any recipient belongs to another country than the sender."""
    home = _country(sender)
    return Reach.CROSS_BORDER if any(_country(r) != home for r in recipients) else Reach.DOMESTIC


def exchange_topic(sender: str, reach: Reach, record_type: str, *, prefix: str = "") -> str:
    """The outbound topic of ``sender`` for ``record_type`` records of ``reach``.

    Raises:
        ValueError: ``sender``, ``record_type`` or ``prefix`` is not a valid identifier.
    """
    name = f"xchg.{sender}.{reach.value}.{record_type}"
    if not _TOPIC.match(name):
        raise ValueError(f"got sender {sender!r} and type {record_type!r}, not a valid topic")
    return check_prefix(prefix) + name


def parse_exchange_topic(topic: str, *, prefix: str = "") -> tuple[str, Reach, str] | None:
    """``(sender, reach, record_type)`` of an exchange topic, or None for any other topic."""
    if not topic.startswith(check_prefix(prefix)):
        return None
    match = _TOPIC.match(topic[len(prefix) :])
    if match is None:
        return None
    return match.group(1), Reach(match.group(2)), match.group(3)


def quarantine_topic(agency_id: str, *, prefix: str = "") -> str:
    """The quarantine topic of ``agency_id``'s consumers."""
    return f"{check_prefix(prefix)}quarantine.{agency_id}"


def audit_topic(agency_id: str, *, prefix: str = "") -> str:
    """The topic ``agency_id``'s audit log (entries and checkpoints) is published to."""
    return f"{check_prefix(prefix)}audit.{agency_id}"


def receipts_topic(sender: str, *, prefix: str = "") -> str:
    """The topic recipients send ``sender`` their signed delivery receipts on."""
    return f"{check_prefix(prefix)}receipts.{sender}"


_Pattern = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9*?-]{1,40}$")]
_TypePattern = Annotated[str, StringConstraints(pattern=r"^[a-z*?-]{1,40}$")]


class RoutingRule(BaseModel):
    """Records of ``record_types`` from ``senders`` go to ``recipients`` by default.

    Patterns are shell-style (``USA-*``, ``*``) over agency ids and record type names.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    senders: list[_Pattern] = Field(min_length=1, max_length=64)
    record_types: list[_TypePattern] = Field(default=["*"], min_length=1, max_length=16)
    recipients: list[Annotated[str, StringConstraints(pattern=rf"^{_AGENCY}$")]] = Field(
        min_length=1, max_length=64
    )

    def matches(self, sender: str, record_type: str) -> bool:
        return any(fnmatch.fnmatchcase(sender, p) for p in self.senders) and any(
            fnmatch.fnmatchcase(record_type, p) for p in self.record_types
        )


class RoutingTable(BaseModel):
    """Default recipients per sender and record type; an empty table routes nothing."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rules: list[RoutingRule] = Field(default_factory=list, max_length=1024)

    def targets(self, sender: str, record_type: str) -> frozenset[str]:
        """Every agency some rule sends ``record_type`` from ``sender`` to (never the sender)."""
        found = {
            agency
            for rule in self.rules
            if rule.matches(sender, record_type)
            for agency in rule.recipients
        }
        found.discard(sender)
        return frozenset(found)

    @classmethod
    def load(cls, path: Path) -> RoutingTable:
        """Read a routing table from a TOML file of ``[[rules]]`` tables.

        Raises:
            ConfigurationError: the file is missing, not TOML, or not a valid table.
        """
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
            return cls.model_validate(data)
        except FileNotFoundError:
            raise ConfigurationError(f"routing table {path} not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"routing table {path} is not valid TOML: {exc}") from None
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigurationError(f"routing table {path}: {where}: {first['msg']}") from None

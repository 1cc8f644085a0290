"""``plan.json``: what ``exchange deploy init`` decided, read back by ``broker up`` and clients.

It holds no secret: ports, agencies, the topic prefix, the mirror topic patterns and the
ACL plan. Key material lives in files of mode 0600 next to it (see
:mod:`exchange.deploy.layout`).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exchange.deploy.acls import AclEntry
from exchange.deploy.config import CountryPorts
from exchange.deploy.layout import COUNTRIES
from exchange.errors import ConfigurationError

__all__ = ["DEFAULT_DEPLOY_BASE_PORT", "PLAN_FORMAT", "DeploymentPlan", "country_ports"]

PLAN_FORMAT = 1
#: MEX uses BASE..BASE+2 (mTLS, controller, SCRAM), USA the next three; clear of the
#: single-cluster default 19092-19097.
DEFAULT_DEPLOY_BASE_PORT = 19100


def country_ports(base_port: int) -> dict[str, CountryPorts]:
    """Ports of each country for ``base_port``.

    Raises:
        ValueError: the six ports do not fit in 1024-65535.
    """
    if base_port < 1024 or base_port + 3 * len(COUNTRIES) > 65535:
        raise ValueError(f"got base port {base_port}, expected 1024-65529")
    return {
        country: CountryPorts(
            ssl=base_port + 3 * i, controller=base_port + 3 * i + 1, sasl=base_port + 3 * i + 2
        )
        for i, country in enumerate(COUNTRIES)
    }


@dataclass(frozen=True)
class DeploymentPlan:
    """The binational deployment as initialised."""

    base_port: int
    topic_prefix: str
    agencies: tuple[str, ...]
    record_types: tuple[str, ...]
    #: Target country -> Java regexes of the topics its mirror pulls from the other cluster.
    mirror_topics: dict[str, tuple[str, ...]]
    acls: dict[str, tuple[AclEntry, ...]]

    @property
    def ports(self) -> dict[str, CountryPorts]:
        return country_ports(self.base_port)

    def agencies_of(self, country: str) -> tuple[str, ...]:
        """The agencies whose home cluster is ``country``'s."""
        return tuple(a for a in self.agencies if a.split("-", 1)[0] == country)

    def to_json(self) -> dict[str, Any]:
        """The document stored in ``plan.json``."""
        return {
            "format": PLAN_FORMAT,
            "base_port": self.base_port,
            "topic_prefix": self.topic_prefix,
            "agencies": list(self.agencies),
            "record_types": list(self.record_types),
            "ports": {c: vars(p) for c, p in self.ports.items()},
            "mirror_topics": {c: list(t) for c, t in self.mirror_topics.items()},
            "acls": {c: [e.to_json() for e in entries] for c, entries in self.acls.items()},
        }

    @classmethod
    def from_json(cls, doc: Any) -> DeploymentPlan:
        """Parse :meth:`to_json`'s document.

        Raises:
            ValueError: not a plan of this format.
        """
        if not isinstance(doc, dict) or doc.get("format") != PLAN_FORMAT:
            raise ValueError(f"expected a deployment plan of format {PLAN_FORMAT}")
        try:
            return cls(
                base_port=int(doc["base_port"]),
                topic_prefix=str(doc["topic_prefix"]),
                agencies=tuple(str(a) for a in doc["agencies"]),
                record_types=tuple(str(t) for t in doc["record_types"]),
                mirror_topics={str(c): tuple(map(str, t)) for c, t in doc["mirror_topics"].items()},
                acls={
                    str(c): tuple(AclEntry.from_json(e) for e in entries)
                    for c, entries in doc["acls"].items()
                },
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"plan is missing or mistypes {exc}") from exc

    @classmethod
    def load(cls, path: Path) -> DeploymentPlan:
        """Read ``plan.json``.

        Raises:
            ConfigurationError: it is missing or invalid.
        """
        try:
            return cls.from_json(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise ConfigurationError(
                f"no deployment under {path.parent}; run `exchange deploy init` first"
            ) from None
        except ValueError as exc:
            raise ConfigurationError(f"{path} is not a valid deployment plan: {exc}") from None

    def save(self, path: Path) -> None:
        """Write ``plan.json`` atomically (mode 0644: it is public)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".plan-", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(self.to_json(), out, indent=2)
            out.write("\n")
        os.chmod(tmp, 0o644)
        Path(tmp).replace(path)

"""``exchange broker up --profile binational``: two sovereign clusters linked by MirrorMaker 2.

On loopback, one KRaft node per country (production runs three or more, see
docs/deployment.md), each with only TLS listeners (mTLS, SCRAM over TLS, and an mTLS
controller listener), ``StandardAuthorizer`` and ``allow.everyone.if.no.acl.found=false``.
The deployment under ``$EXCHANGE_HOME/deploy`` (``exchange deploy init``) supplies the
certificates, broker settings, mirror configurations and the ACL plan.

::

    $EXCHANGE_HOME/binational/
    ├── state.json                mirror pids
    ├── MEX/broker/...            the MEX cluster (an exchange.broker home of its own)
    ├── USA/broker/...
    └── mirror-<CTY>/logs/        the mirror writing into <CTY>: mirror.log, stdout.log
"""

from __future__ import annotations

import fcntl
import json
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exchange.broker.cluster import ClusterStatus, cluster_status, ensure_cluster, stop_cluster
from exchange.broker.jars import find_mirror_pom, resolve_runtime
from exchange.broker.launch import PORT_GRACE_S, Progress
from exchange.broker.mirror import (
    MirrorLayout,
    find_mirror_processes,
    is_mirror_process,
    spawn_mirror,
    wait_mirror_started,
)
from exchange.broker.ports import check_ports_free
from exchange.broker.process import terminate
from exchange.broker.state import load_state
from exchange.broker.tools import require_java
from exchange.deploy import COUNTRIES, DeployLayout, DeploymentPlan, admin_connection, apply_country
from exchange.deploy.config import parse_properties
from exchange.errors import BrokerError, ConfigurationError

__all__ = [
    "BinationalInfo",
    "BinationalStatus",
    "MirrorStatus",
    "binational_status",
    "ensure_binational",
    "stop_binational",
]

_MIRROR_START_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class MirrorStatus:
    """One MirrorMaker 2 process: the flow it runs and whether it is alive."""

    target: str
    source: str
    pid: int | None
    alive: bool
    topics: tuple[str, ...]
    log: Path

    def to_json(self) -> dict[str, Any]:
        """The mirror's entry in ``exchange broker status --json``."""
        return {
            "flow": f"{self.source}->{self.target}",
            "pid": self.pid,
            "alive": self.alive,
            "topics": list(self.topics),
            "log": str(self.log),
        }


@dataclass(frozen=True)
class BinationalStatus:
    """Both clusters and both mirrors as observed now."""

    clusters: dict[str, ClusterStatus]
    mirrors: tuple[MirrorStatus, ...]

    @property
    def exists(self) -> bool:
        return any(c.nodes for c in self.clusters.values())

    @property
    def up(self) -> bool:
        """Whether every node and every mirror is alive."""
        return all(c.up for c in self.clusters.values()) and all(m.alive for m in self.mirrors)

    def to_json(self) -> dict[str, Any]:
        """The ``binational`` section of ``exchange broker status --json``."""
        return {
            "state": "up" if self.up else "down" if not self.exists else "degraded",
            "clusters": {c: s.to_json() for c, s in self.clusters.items()},
            "mirrors": [m.to_json() for m in self.mirrors],
        }


@dataclass(frozen=True)
class BinationalInfo:
    """What :func:`ensure_binational` left running."""

    status: BinationalStatus
    plan: DeploymentPlan
    elapsed_s: float
    applied: dict[str, tuple[int, int]]


def profile_dir(home: Path) -> Path:
    """``$EXCHANGE_HOME/binational``."""
    return home.expanduser().resolve() / "binational"


def country_home(home: Path, country: str) -> Path:
    """The broker home of ``country``'s cluster."""
    return profile_dir(home) / country


def ensure_binational(
    home: Path,
    *,
    libs_cache: Path | None = None,
    timeout: float = 120.0,
    progress: Progress | None = None,
) -> BinationalInfo:
    """Start (or complete) both clusters, apply SCRAM users and ACLs, start both mirrors.

    Args:
        home: ``$EXCHANGE_HOME`` holding ``deploy/`` (run ``exchange deploy init`` first).
        libs_cache: Where resolved jars are cached (default ``home/kafka/libs``).
        timeout: Seconds each cluster and each mirror may take to start.
        progress: Called with a short phrase as each phase begins.

    Returns:
        The status, the plan, the elapsed time and ``(users, acls)`` applied per country.

    Raises:
        ConfigurationError: no deployment under ``home``.
        PortInUseError, ToolMissingError, BrokerStartError, ClusterMismatchError: as for
            :func:`exchange.broker.ensure_cluster`, and for a mirror that does not start.
        BrokerError: applying users or ACLs failed.
    """
    began = time.monotonic()
    note = progress or (lambda _: None)
    layout = DeployLayout(home)
    plan = DeploymentPlan.load(layout.plan_file)
    cache = libs_cache or home.expanduser().resolve() / "kafka" / "libs"
    with _locked(profile_dir(home)):
        note("starting the MEX and USA clusters")
        was_up = {c for c in COUNTRIES if cluster_status(country_home(home, c)).up}
        # Both JVMs start at once: start-up is mostly waiting (quorum, unfencing).
        with ThreadPoolExecutor(max_workers=len(COUNTRIES)) as pool:
            futures = [
                pool.submit(_ensure_country, home, layout, plan, c, cache=cache, timeout=timeout)
                for c in COUNTRIES
            ]
            failures = [f.exception() for f in futures if f.exception() is not None]
        if failures:
            # Half a profile is no profile: stop what this call started (its data stays).
            for country in set(COUNTRIES) - was_up:
                stop_cluster(country_home(home, country), keep_data=True)
            raise failures[0]  # type: ignore[misc]  # an exception, checked just above
        note("applying SCRAM users and ACLs")
        applied = {c: apply_country(layout, plan, c) for c in COUNTRIES}
        note("starting MirrorMaker 2 (MEX->USA, USA->MEX)")
        _ensure_mirrors(home, layout, timeout)
    return BinationalInfo(binational_status(home), plan, time.monotonic() - began, applied)


def binational_status(home: Path) -> BinationalStatus:
    """Observe both clusters and both mirrors without changing anything.

    Raises:
        BrokerError: a state file is unreadable.
    """
    clusters = {c: cluster_status(country_home(home, c)) for c in COUNTRIES}
    pids = _load_pids(profile_dir(home))
    layout = DeployLayout(home)
    try:
        plan: DeploymentPlan | None = DeploymentPlan.load(layout.plan_file)
    except ConfigurationError:
        plan = None  # no deployment: status still reports what runs
    mirrors = tuple(
        MirrorStatus(
            target=target,
            source=_other(target),
            pid=pids.get(target),
            alive=is_mirror_process(pids.get(target), _mirror(home, layout, target).properties),
            topics=plan.mirror_topics.get(target, ()) if plan else (),
            log=_mirror(home, layout, target).log,
        )
        for target in COUNTRIES
        if target in pids
    )
    return BinationalStatus(clusters, mirrors)


def stop_binational(home: Path, *, keep_data: bool = False, timeout: float = 30.0) -> int:
    """Stop both mirrors and both clusters; unless ``keep_data``, delete their data.

    The deployment (``deploy/``: CAs, credentials, plan) is always kept.

    Returns:
        How many processes (nodes and mirrors) were stopped.
    """
    root = profile_dir(home)
    if not root.exists():
        return 0
    with _locked(root):
        layout = DeployLayout(home)
        pids = {
            pid
            for target, pid in _load_pids(root).items()
            if is_mirror_process(pid, _mirror(home, layout, target).properties)
        }
        pids.update(find_mirror_processes(layout.root))
        terminate(pids, timeout=timeout)
        stopped = len(pids)
        for country in COUNTRIES:
            stopped += stop_cluster(
                country_home(home, country), keep_data=keep_data, timeout=timeout
            )
        _save_pids(root, {})
    if not keep_data:
        shutil.rmtree(root, ignore_errors=True)
    return stopped


# -- internals ---------------------------------------------------------------------------


def _other(country: str) -> str:
    return next(c for c in COUNTRIES if c != country)


def _mirror(home: Path, layout: DeployLayout, target: str) -> MirrorLayout:
    return MirrorLayout(
        profile_dir(home) / f"mirror-{target}", target, layout.country(target).mirror_properties
    )


def _ensure_country(
    home: Path,
    layout: DeployLayout,
    plan: DeploymentPlan,
    country: str,
    *,
    cache: Path,
    timeout: float,
) -> None:
    here = layout.country(country)
    extra = parse_properties(here.broker_properties.read_text(encoding="utf-8"))
    chome = country_home(home, country)
    if not cluster_status(chome).up:
        # The SCRAM listener is not one of the runtime's planned ports; check it here.
        check_ports_free([plan.ports[country].sasl], grace=PORT_GRACE_S)
    admin = admin_connection(layout, plan, country)
    admin.pop("bootstrap.servers")
    ensure_cluster(
        chome,
        nodes=1,
        base_port=plan.ports[country].ssl,
        libs_cache=cache,
        timeout=timeout,
        extra_properties=extra,
        client_config=admin,
    )


def _ensure_mirrors(home: Path, layout: DeployLayout, timeout: float) -> None:
    root = profile_dir(home)
    pids = _load_pids(root)
    state = load_state(country_home(home, COUNTRIES[0]) / "broker" / "state.json")
    if state is None:
        raise BrokerError("the MEX cluster has no state after start-up; run `exchange broker down`")
    java = require_java()
    libs = resolve_runtime(state.libs_dir.parent, pom=find_mirror_pom())
    starting = []
    for target in COUNTRIES:
        mirror = _mirror(home, layout, target)
        if is_mirror_process(pids.get(target), mirror.properties):
            continue
        pid, offset = spawn_mirror(java, libs, mirror)
        pids[target] = pid
        starting.append((mirror, pid, offset))
    _save_pids(root, pids)
    try:
        for mirror, pid, offset in starting:
            wait_mirror_started(mirror, pid, offset, timeout=timeout)
    except BrokerError:
        terminate([pid for _, pid, _ in starting], timeout=10)
        raise


def _load_pids(root: Path) -> dict[str, int]:
    try:
        doc = json.loads((root / "state.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise BrokerError(
            f"{root / 'state.json'} is unreadable ({exc}); run `exchange broker down`"
        ) from exc
    mirrors = doc.get("mirrors", {}) if isinstance(doc, dict) else {}
    return {str(k): int(v) for k, v in mirrors.items()}


def _save_pids(root: Path, pids: dict[str, int]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / ".state.json.tmp"
    tmp.write_text(json.dumps({"format": 1, "mirrors": pids}, indent=2) + "\n", "utf-8")
    tmp.replace(root / "state.json")


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)

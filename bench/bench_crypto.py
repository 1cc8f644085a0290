"""Microbenchmarks of the envelope recipes: seal / verify / open per suite, per message and
per batch, with caches warm and cold. ``python bench/bench_crypto.py [--quick]``.

Prints a Markdown table (microseconds per message, median of repeats) that goes into
docs/benchmarks.md together with the machine, versions and date it prints first.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import cryptography

from exchange.crypto import BatchSealer, HandlingSummary, Opener, Sealer, SuiteId, seal
from exchange.crypto.testing import InMemoryAgency, InMemoryTrust

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
HANDLING = HandlingSummary(tlp="AMBER", releasable_to=("MEX", "USA"), originator="MEX-FGR")
PLAINTEXT = os.urandom(1024)  # a seizure record is ~0.5-2 KiB of Avro
BATCH = 64


def _kw() -> dict[str, Any]:
    return {
        "recipients": ["USA-ATF"],
        "record_type": "seizure",
        "schema_fingerprint": bytes(32),
        "handling": HANDLING,
        "topic": "xchg.MEX-FGR.crossborder.seizure",
        "now": NOW,
    }


def _time(fn: Callable[[], object], per: int, repeats: int) -> float:
    """Median microseconds per item of ``fn`` (which processes ``per`` items)."""
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e6 / per)
    return statistics.median(samples)


def bench_suite(suite: SuiteId, repeats: int) -> dict[str, float]:
    mex, usa = (
        InMemoryAgency.generate("MEX-FGR", [suite]),
        InMemoryAgency.generate("USA-ATF", [suite]),
    )
    trust = InMemoryTrust.of(mex, usa)
    single = seal(PLAINTEXT, sender=mex, trust=trust, suite=suite, **_kw())
    with BatchSealer(mex, trust, suite=suite, max_batch=BATCH, clock=lambda: NOW) as b:
        futures = [b.add(PLAINTEXT, **_kw()) for _ in range(BATCH)]
    batch = [f.result() for f in futures]
    epoch_sealer = Sealer(mex, trust, suite=suite, clock=lambda: NOW)

    def seal_batch() -> None:
        with BatchSealer(mex, trust, suite=suite, max_batch=BATCH, clock=lambda: NOW) as b:
            for _ in range(BATCH):
                b.add(PLAINTEXT, **_kw())

    def open_all(opener: Opener) -> None:
        for blob in batch:
            opener.open(blob)

    def verify_all(opener: Opener) -> None:
        for blob in batch:
            opener.verify(blob)

    warm = Opener(trust, recipient=usa, clock=lambda: NOW)
    open_all(warm)
    few = max(3, repeats // 10)
    cold = Opener(trust, recipient=usa, root_cache_size=0, dek_cache_size=0)

    def one_seal() -> None:
        seal(PLAINTEXT, sender=mex, trust=trust, suite=suite, **_kw())

    return {
        "seal, per message (fresh DEK, 1 signature)": _time(one_seal, 1, repeats),
        "seal, DEK epoch, 1 signature each": _time(
            lambda: epoch_sealer.seal(PLAINTEXT, **_kw()), 1, repeats
        ),
        f"seal, batch of {BATCH} (DEK epoch + 1 signature)": _time(seal_batch, BATCH, few),
        "verify, per message (no cache)": _time(
            lambda: Opener(trust, root_cache_size=0).verify(single, now=NOW), 1, repeats
        ),
        f"verify, batch of {BATCH} (root cached after 1st)": _time(
            lambda: verify_all(Opener(trust, clock=lambda: NOW)), BATCH, few
        ),
        "open, per message, cold (HPKE + signature)": _time(
            lambda: cold.open(single, now=NOW), 1, repeats
        ),
        f"open, batch of {BATCH}, cold caches": _time(
            lambda: open_all(Opener(trust, recipient=usa, clock=lambda: NOW)), BATCH, few
        ),
        f"open, batch of {BATCH}, warm caches": _time(lambda: open_all(warm), BATCH, few),
    }


def machine() -> str:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next(
            (
                ln.split(":", 1)[1].strip()
                for ln in lscpu.splitlines()
                if ln.startswith("Model name")
            ),
            "?",
        )
    except OSError:
        model = platform.processor() or "?"
    return (
        f"{model}, {os.cpu_count()} CPUs ({platform.machine()}), {platform.system()} "
        f"{platform.release()}; Python {platform.python_version()}; cryptography "
        f"{cryptography.__version__}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="envelope microbenchmarks")
    parser.add_argument("--quick", action="store_true", help="few repeats (smoke test)")
    args = parser.parse_args(argv)
    repeats = 5 if args.quick else 200
    results = {s: bench_suite(s, repeats) for s in SuiteId}
    print(f"Machine: {machine()}")
    print(f"Command: python bench/bench_crypto.py; plaintext {len(PLAINTEXT)} B, 1 recipient\n")
    rows = list(next(iter(results.values())))
    print("| us per message | " + " | ".join(s.value for s in SuiteId) + " |")
    print("|---|" + "---:|" * len(SuiteId))
    for row in rows:
        print(f"| {row} | " + " | ".join(f"{results[s][row]:.0f}" for s in SuiteId) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

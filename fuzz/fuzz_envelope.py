"""Run the envelope fuzz target under atheris (libFuzzer) for a chosen time.

Usage (from the repository root, after ``pip install -e '.[fuzz]'``)::

    make fuzz FUZZ_SECONDS=600
    .venv/bin/python -m fuzz.fuzz_envelope --seconds 600 [--corpus DIR] [-- LIBFUZZER_FLAGS]

The corpus directory (default ``.exchange/fuzz/envelope``) is seeded with valid inputs of
every mode and suite (:func:`fuzz.envelope_target.seed_corpus`) and keeps what libFuzzer
finds interesting, so later runs resume. A finding stops the run with a non-zero exit and
leaves the input as ``crash-*``, ``timeout-*`` or ``oom-*`` in the artifacts directory
(default ``.exchange/fuzz/artifacts/``); replay it with
``.venv/bin/python -m fuzz.fuzz_envelope --replay FILE``. Each input gets at most
``--input-timeout`` seconds and the process at most ``--rss-mb`` MiB: a hang or unbounded
growth is a finding too.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["main"]


def _parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="python -m fuzz.fuzz_envelope", description=__doc__)
    parser.add_argument("--seconds", type=int, default=60, help="total fuzzing time")
    parser.add_argument("--corpus", type=Path, default=Path(".exchange/fuzz/envelope"))
    parser.add_argument("--artifacts", type=Path, default=Path(".exchange/fuzz/artifacts"))
    parser.add_argument("--input-timeout", type=int, default=10, help="seconds per input")
    parser.add_argument("--rss-mb", type=int, default=2048, help="memory limit of the process")
    parser.add_argument("--replay", type=Path, default=None, help="run one saved input and exit")
    args, extra = parser.parse_known_args(argv)
    if args.seconds < 1:
        parser.error(f"got --seconds {args.seconds}, expected at least 1")
    return args, [x for x in extra if x != "--"]


def _write_seeds(corpus: Path, seeds: list[bytes]) -> int:
    corpus.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        (corpus / f"seed-{hashlib.sha256(seed).hexdigest()[:16]}").write_bytes(seed)
    return len(seeds)


def main(argv: list[str] | None = None) -> int:
    """Seed the corpus and fuzz; returns only on ``--replay`` (libFuzzer exits itself)."""
    args, extra = _parse(sys.argv[1:] if argv is None else argv)
    try:
        import atheris  # noqa: PLC0415  # optional: the `fuzz` extra
    except ImportError:
        print("error: atheris is not installed; run: pip install -e '.[fuzz]'", file=sys.stderr)
        return 2
    # Instrument our code (not third-party libraries) for coverage feedback: the target and
    # everything of ``exchange`` it imports are imported inside this block.
    with atheris.instrument_imports(include=["exchange", "fuzz"]):
        from fuzz import envelope_target  # noqa: PLC0415

    fuzz_one: Callable[[bytes], None] = envelope_target.fuzz_one
    if args.replay is not None:
        fuzz_one(args.replay.read_bytes())
        print(f"{args.replay}: no finding")
        return 0
    count = _write_seeds(args.corpus, list(envelope_target.seed_corpus()))
    args.artifacts.mkdir(parents=True, exist_ok=True)
    print(f"seeded {args.corpus} with {count} inputs; fuzzing for {args.seconds} s", flush=True)
    libfuzzer = [
        sys.argv[0],
        str(args.corpus),
        f"-max_total_time={args.seconds}",
        f"-timeout={args.input_timeout}",
        f"-rss_limit_mb={args.rss_mb}",
        f"-malloc_limit_mb={args.rss_mb}",
        f"-artifact_prefix={args.artifacts}/",
        "-max_len=1100000",  # a little over the 1 MiB envelope bound
        "-len_control=200",
        "-print_final_stats=1",
        *extra,
    ]
    atheris.Setup(libfuzzer, fuzz_one)
    atheris.Fuzz()  # never returns: libFuzzer exits the process
    return 0  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())

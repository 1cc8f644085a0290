"""Seeded generator of realistic, mutually consistent sample records.

The same seed always gives the same records (no clock, no global randomness). A corpus
ties the families together the way real traffic does: trace requests name the seizure
and firearm they came from, trace responses answer those requests, ballistic records
link exhibits across Mexican and US cases, and intelligence reports cite all of them
with handling that keeps or tightens their sources' restrictions::

    from exchange.records.sample import generate, generate_corpus

    corpus = generate_corpus(seed=7, cases=3)
    request = corpus.trace_requests[0]
    assert request.seizure_record_id == corpus.seizures[0].meta.record_id
    seizures = generate("seizure", count=5, seed=7, originator="MEX-FGR")

The data is invented: real places and firearm makes, fictional people, cases and licensees.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from exchange.errors import RecordValidationError
from exchange.records._registry import RECORD_TYPE_NAMES
from exchange.records._sample_base import SAMPLE_EPOCH, Builder
from exchange.records._sample_cases import seizure_record, trace_request, trace_response
from exchange.records._sample_intel import intel_report
from exchange.records._sample_links import ballistic_pair
from exchange.records._types import agency_country
from exchange.records.ballistic import BallisticRecord
from exchange.records.common import ExchangeRecord
from exchange.records.handling import AgencyRef
from exchange.records.intel import IntelligenceReport
from exchange.records.seizure import SeizureRecord
from exchange.records.trace import TraceRequest, TraceResponse

__all__ = ["MAX_SAMPLE_COUNT", "SAMPLE_EPOCH", "SampleCorpus", "generate", "generate_corpus"]

MAX_SAMPLE_COUNT = 10_000


@dataclass(frozen=True)
class SampleCorpus:
    """Records of all five families generated together from one seed."""

    seizures: tuple[SeizureRecord, ...]
    trace_requests: tuple[TraceRequest, ...]
    trace_responses: tuple[TraceResponse, ...]
    ballistic: tuple[BallisticRecord, ...]
    intel: tuple[IntelligenceReport, ...]

    def of_type(self, name: str) -> tuple[ExchangeRecord, ...]:
        """The records of one family, by CLI name (``"seizure"``, ``"trace-request"``, ...).

        Raises:
            RecordValidationError: ``name`` is not a record type name.
        """
        families: dict[str, tuple[ExchangeRecord, ...]] = {
            "seizure": self.seizures,
            "trace-request": self.trace_requests,
            "trace-response": self.trace_responses,
            "ballistic": self.ballistic,
            "intel": self.intel,
        }
        if name not in families:
            raise RecordValidationError(
                f"unknown record type {name!r}; expected one of {', '.join(RECORD_TYPE_NAMES)}"
            )
        return families[name]

    def records(self) -> tuple[ExchangeRecord, ...]:
        """Every record, family by family."""
        return tuple(r for name in RECORD_TYPE_NAMES for r in self.of_type(name))


def generate_corpus(
    seed: int = 0, *, cases: int = 3, originator: str | None = None
) -> SampleCorpus:
    """Generate records of all five families that reference each other.

    Each case yields one seizure, a trace request and response for up to two of its
    firearms, a pair of cross-border ballistic records (a Mexican and a US crime scene)
    linked to each other, and one intelligence report citing all of them.

    Args:
        seed: the random seed; the same seed gives the same corpus.
        cases: how many cases, 1 to 10 000.
        originator: an agency id (``"MEX-FGR"``) to originate every record; default varies.

    Returns:
        The corpus; every family has at least ``cases`` records.

    Raises:
        RecordValidationError: ``originator`` is not a valid agency id.
        ValueError: ``cases`` is out of range.
    """
    if not 1 <= cases <= MAX_SAMPLE_COUNT:
        raise ValueError(f"got cases={cases}, expected 1 to {MAX_SAMPLE_COUNT}")
    override = None
    if originator is not None:
        try:
            override = AgencyRef(agency_id=originator, country=agency_country(originator))
        except ValidationError as exc:
            raise RecordValidationError(
                f"originator {originator!r}: {exc.errors(include_url=False)[0]['msg']}"
            ) from exc
    b = Builder(seed, override)
    seizures, requests, responses, ballistic, intel = [], [], [], [], []
    for _ in range(cases):
        ids: list[str] = []
        seizure, traced = seizure_record(b, ids)
        seizures.append(seizure)
        case_requests = [
            trace_request(b, seizure, i, rid) for i, rid in zip(traced, ids, strict=True)
        ]
        case_responses = [trace_response(b, r) for r in case_requests]
        pair = ballistic_pair(b, seizure)
        requests += case_requests
        responses += case_responses
        ballistic += pair
        intel.append(intel_report(b, seizure, case_requests, case_responses, pair))
    return SampleCorpus(
        tuple(seizures), tuple(requests), tuple(responses), tuple(ballistic), tuple(intel)
    )


def generate(
    type_name: str, *, count: int, seed: int = 0, originator: str | None = None
) -> list[ExchangeRecord]:
    """Generate ``count`` records of one family.

    The records come from :func:`generate_corpus` with ``cases=count``, so records of
    different families generated with the same seed and count reference each other.

    Args:
        type_name: one of :data:`~exchange.records.RECORD_TYPE_NAMES`.
        count: how many records, 1 to 10 000.
        seed: the random seed.
        originator: an agency id to originate every record.

    Returns:
        ``count`` validated records.

    Raises:
        RecordValidationError: unknown ``type_name`` or invalid ``originator``.
        ValueError: ``count`` is out of range.
    """
    if type_name not in RECORD_TYPE_NAMES:
        raise RecordValidationError(
            f"unknown record type {type_name!r}; expected one of {', '.join(RECORD_TYPE_NAMES)}"
        )
    corpus = generate_corpus(seed, cases=count, originator=originator)
    return list(corpus.of_type(type_name)[:count])

"""Fixtures for the record contract tests: one seeded corpus, and JSON to mutate."""

from __future__ import annotations

import json
from typing import Any

import pytest

from exchange.records import RECORD_TYPE_NAMES, ExchangeRecord, record_type
from exchange.records.sample import SampleCorpus, generate_corpus


@pytest.fixture(scope="session")
def corpus() -> SampleCorpus:
    """Enough cases that every optional branch of the generator shows up at least once."""
    return generate_corpus(seed=11, cases=12)


@pytest.fixture(scope="session")
def one_of_each(corpus: SampleCorpus) -> dict[str, ExchangeRecord]:
    """The first record of every family."""
    return {name: corpus.of_type(name)[0] for name in RECORD_TYPE_NAMES}


@pytest.fixture
def seizure_json(one_of_each: dict[str, ExchangeRecord]) -> dict[str, Any]:
    """A valid seizure as a JSON-compatible dict (Avro field names), fresh per test."""
    data: dict[str, Any] = json.loads(record_type("seizure").to_json(one_of_each["seizure"]))
    return data

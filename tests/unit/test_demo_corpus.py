"""The demo's choice of sample corpus (no broker needed)."""

from __future__ import annotations

from exchange.demo import SHOWN_FLOWS, corpus_flows, showing_corpus
from exchange.records.sample import generate_corpus


def test_demo_corpus_crosses_the_border_every_way_it_shows() -> None:
    for seed in (0, 7, 12345):
        chosen, corpus = showing_corpus(seed, 4)
        assert chosen >= seed
        assert corpus_flows(corpus) >= SHOWN_FLOWS
        assert corpus == generate_corpus(chosen, cases=4)


def test_flows_follow_handling_not_routing() -> None:
    # Trace requests go to the tracing authority abroad; results come back: never the reverse.
    flows = corpus_flows(generate_corpus(3, cases=6))
    assert ("trace-request", "MEX", "USA") in flows
    assert ("trace-response", "MEX", "USA") not in flows

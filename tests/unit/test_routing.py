from __future__ import annotations

from pathlib import Path

import pytest

from exchange.errors import ConfigurationError
from exchange.routing import (
    Reach,
    RoutingRule,
    RoutingTable,
    exchange_topic,
    parse_exchange_topic,
    quarantine_topic,
    reach_for,
)


def test_topic_round_trips() -> None:
    topic = exchange_topic("MEX-FGJ-CHIH", Reach.CROSS_BORDER, "trace-request")
    assert topic == "xchg.MEX-FGJ-CHIH.crossborder.trace-request"
    assert parse_exchange_topic(topic) == ("MEX-FGJ-CHIH", Reach.CROSS_BORDER, "trace-request")


@pytest.mark.parametrize(
    "topic", ["quarantine.USA-ATF", "xchg.MEX-FGR.abroad.seizure", "xchg.mex-fgr.domestic.seizure"]
)
def test_other_topics_are_not_exchange_topics(topic: str) -> None:
    assert parse_exchange_topic(topic) is None


def test_invalid_sender_cannot_name_a_topic() -> None:
    with pytest.raises(ValueError, match="not a valid topic"):
        exchange_topic("MEX.FGR", Reach.DOMESTIC, "seizure")


def test_reach_is_crossborder_when_any_recipient_is_abroad() -> None:
    assert reach_for("MEX-FGR", {"MEX-SSPC"}) is Reach.DOMESTIC
    assert reach_for("MEX-FGR", {"MEX-SSPC", "USA-ATF"}) is Reach.CROSS_BORDER
    assert quarantine_topic("USA-ATF") == "quarantine.USA-ATF"


def test_routing_table_matches_patterns_and_never_routes_to_the_sender() -> None:
    table = RoutingTable(
        rules=[
            RoutingRule(senders=["MEX-*"], record_types=["seizure"], recipients=["USA-ATF"]),
            RoutingRule(senders=["*"], recipients=["MEX-FGR", "USA-HSI"]),
        ]
    )
    assert table.targets("MEX-FGR", "seizure") == {"USA-ATF", "USA-HSI"}
    assert table.targets("USA-CBP", "seizure") == {"MEX-FGR", "USA-HSI"}


def test_empty_routing_table_routes_nothing() -> None:
    assert RoutingTable().targets("MEX-FGR", "seizure") == frozenset()


def test_routing_table_loads_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "routing.toml"
    path.write_text(
        '[[rules]]\nsenders = ["USA-*"]\nrecord_types = ["trace-response"]\n'
        'recipients = ["MEX-FGR"]\n'
    )
    assert RoutingTable.load(path).targets("USA-ATF", "trace-response") == {"MEX-FGR"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules = [", "not valid TOML"),
        ('[[rules]]\nsenders = ["MEX-*"]\nrecipients = ["not an agency"]\n', "recipients"),
        ('[[rules]]\nsenders = ["MEX-*"]\nrecipients = ["USA-ATF"]\nextra = 1\n', "extra"),
    ],
)
def test_bad_routing_table_is_a_clear_configuration_error(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "routing.toml"
    path.write_text(text)
    with pytest.raises(ConfigurationError, match=message):
        RoutingTable.load(path)


def test_missing_routing_table_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not found"):
        RoutingTable.load(tmp_path / "nope.toml")

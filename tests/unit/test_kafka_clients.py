from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException

from exchange.errors import BrokerError, ConfigurationError
from exchange.kafka_clients import broker_error, consumer_config, producer_config


def test_producer_config_is_idempotent_and_fully_acknowledged() -> None:
    config = producer_config("127.0.0.1:1", client_id="MEX-FGR")
    assert config["enable.idempotence"] is True
    assert config["acks"] == "all"


def test_producer_overrides_pass_through() -> None:
    config = producer_config("127.0.0.1:1", client_id="x", overrides={"linger.ms": 50})
    assert config["linger.ms"] == 50


@pytest.mark.parametrize("key", ["acks", "enable.idempotence"])
def test_weakening_producer_guarantees_is_refused(key: str) -> None:
    with pytest.raises(ConfigurationError, match=key):
        producer_config("127.0.0.1:1", client_id="x", overrides={key: "1"})


def test_consumer_commits_only_explicitly() -> None:
    config = consumer_config("127.0.0.1:1", group_id="g", client_id="USA-ATF")
    assert config["enable.auto.commit"] is False
    assert config["enable.auto.offset.store"] is False


def test_turning_on_auto_commit_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"enable\.auto\.commit"):
        consumer_config("b:1", group_id="g", client_id="c", overrides={"enable.auto.commit": True})


def test_broker_error_keeps_librdkafka_retriability() -> None:
    transient = broker_error("produce", KafkaException(KafkaError(KafkaError._TRANSPORT)))
    assert isinstance(transient, BrokerError)
    assert "produce failed" in str(transient)
    fatal = broker_error("produce", KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))
    assert fatal.retriable is False

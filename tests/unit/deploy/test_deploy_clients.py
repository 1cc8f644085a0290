"""How connection failures are classified: authentication refused vs. no broker."""

from __future__ import annotations

from confluent_kafka import KafkaError

from exchange.deploy.clients import _auth_failure


def test_refused_client_certificate_counts_as_authentication_failure() -> None:
    # TLS 1.3: librdkafka sees the broker's alert only as a transport error.
    alert = KafkaError(
        KafkaError._TRANSPORT,
        "ssl://127.0.0.1:29500/bootstrap: Receive failed: ssl/tls alert bad certificate",
    )
    assert _auth_failure([KafkaError(KafkaError._ALL_BROKERS_DOWN), alert]) is alert


def test_wrong_password_counts_as_authentication_failure() -> None:
    wrong = KafkaError(KafkaError._AUTHENTICATION, "SASL authentication error: invalid credentials")
    assert _auth_failure([wrong]) is wrong


def test_connection_refused_is_not_an_authentication_failure() -> None:
    refused = KafkaError(
        KafkaError._TRANSPORT, "Connect to ipv4#127.0.0.1:1 failed: Connection refused"
    )
    assert _auth_failure([refused, KafkaError(KafkaError._ALL_BROKERS_DOWN)]) is None

"""Shared fixtures: a real Kafka-protocol broker (embedded tansu) on loopback for the service tests."""

from __future__ import annotations

import pytest

from zstream.testing.broker import EmbeddedBroker


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory) -> EmbeddedBroker:
    """One in-memory broker for the whole session; tests use their own topic and group names."""
    log_path = tmp_path_factory.mktemp("broker") / "tansu.log"
    with EmbeddedBroker(log_path=log_path) as broker:
        yield broker

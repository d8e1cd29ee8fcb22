"""The broker stopped and restarted under a running service: it waits, reconnects and resumes;
/readyz goes false while the broker is away and true again after; nothing goes missing."""

from __future__ import annotations

import threading
import time

import pytest

from zstream.service.traffic import json_messages, send
from zstream.sim import simulate

from reliability_helpers import http_get, ledger, make_config, producer_for, wait_ready
from durable_broker import durable_broker

TIMEOUT_S = 120
OUTAGE_S = 4.0


@pytest.mark.slow
def test_broker_restart_service_waits_and_resumes(basis_files, tmp_path, serve_process):
    with durable_broker(tmp_path) as broker:
        config = make_config(broker.bootstrap_servers, basis_files[0], tmp_path, topic_partitions=2)
        broker.create_topics([config.input_topic, config.output_topic, config.dlq_topic], partitions=2)
        producer = producer_for(config)
        before, _ = simulate(20, seed=31)
        before.spectrum_id = [f"before-{i}" for i in range(len(before))]
        send(producer, config.input_topic, json_messages(before))
        service = serve_process(config, "service")
        port = service.metrics_port()
        wait_ready(port)
        assert ledger(config, len(before), TIMEOUT_S).complete

        during, _ = simulate(60, seed=32)
        during.spectrum_id = [f"during-{i}" for i in range(len(during))]
        traffic = threading.Thread(target=send, args=(producer, config.input_topic, json_messages(during)),
                                   kwargs={"rate": 15.0}, daemon=True)
        traffic.start()
        time.sleep(1.0)
        broker.stop()
        wait_ready(port, TIMEOUT_S, status=503)
        assert "Kafka" in http_get(port, "/readyz")[1]
        time.sleep(OUTAGE_S)
        broker.start()
        wait_ready(port, TIMEOUT_S)
        traffic.join(TIMEOUT_S)

        report = ledger(config, len(before) + len(during), TIMEOUT_S)
        assert report.complete and not report.inconsistent, report.summary()
        assert service.process.poll() is None, "the service must survive the outage"
        code, _ = service.terminate()
        assert code == 0, service.log()[-3000:]
        producer.close()

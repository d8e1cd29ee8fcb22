"""A basis hot swap during steady traffic: every message answered once, each partition switches from the
old version to the new one exactly once (no message seen by both), and the output does not pause for
longer than the service's ordinary gaps between batches."""

from __future__ import annotations

import threading

import numpy as np
import orjson
import pytest

from zstream.io import load_basis
from zstream.service.message import send
from zstream.service.metrics import RESULTS_PRODUCED
from zstream.service.versions import point_serving, publish_basis
from zstream.sim import simulate
from zstream.testing.ledger import reconcile
from zstream.testing.traffic import json_messages

from reliability_helpers import http_get, make_config, producer_for, read_back, wait_for_metric, wait_ready

TIMEOUT_S = 120


@pytest.mark.slow
def test_hot_swap_under_steady_traffic(kafka_broker, basis_files, tmp_path, serve_process):
    config = make_config(kafka_broker.bootstrap_servers, basis_files[0], tmp_path, topic_partitions=2)
    kafka_broker.create_topics([config.input_topic, config.output_topic, config.dlq_topic], partitions=2)
    service = serve_process(config, "service")
    port = service.metrics_port()
    wait_ready(port)
    producer = producer_for(config)
    spectra, _ = simulate(150, seed=51)
    spectra.spectrum_id = [f"steady-{i:04d}" for i in range(len(spectra))]
    traffic = threading.Thread(target=send, args=(producer, config.input_topic, json_messages(spectra)),
                               kwargs={"rate": 30.0}, daemon=True)
    traffic.start()
    wait_for_metric(port, RESULTS_PRODUCED, 30)  # the old basis is answering steady traffic; most of the stream is still to come
    new_basis = load_basis(basis_files[1])
    publish_basis(producer, config.basis_topic, new_basis)
    point_serving(producer, config.basis_topic, new_basis.version, previous="rel-v1", reason="test hot swap")
    traffic.join(TIMEOUT_S)

    inputs, outputs = read_back(config, len(spectra), TIMEOUT_S)
    report = reconcile(inputs, outputs, config.output_topic)
    assert report.complete and not report.duplicates, report.summary()
    assert set(report.versions) == {"rel-v1", "rel-v2"} and min(report.versions.values()) > 0, report.summary()
    assert 'zstream_basis_info{version="rel-v2"} 1.0' in http_get(port, "/metrics")[1]

    results = sorted((record for record in outputs if record.topic == config.output_topic),
                     key=lambda record: record.timestamp)
    values = [orjson.loads(record.value) for record in results]
    for partition in {value["input_partition"] for value in values}:
        in_offset_order = sorted((v["input_offset"], v["basis_version"]) for v in values
                                 if v["input_partition"] == partition)
        versions = [version for _, version in in_offset_order]
        switches = sum(a != b for a, b in zip(versions, versions[1:]))
        assert switches == 1 and (versions[0], versions[-1]) == ("rel-v1", "rel-v2"), f"partition {partition}: {versions}"

    # the pause at the swap is no longer than the longest ordinary gap between result batches (+ one batch)
    stamps = np.array([record.timestamp for record in results]) / 1000.0
    swap_index = next(i for i, value in enumerate(values) if value["basis_version"] == "rel-v2")
    gaps = np.diff(stamps)
    swap_gap = gaps[swap_index - 1]
    ordinary = np.delete(gaps, swap_index - 1)
    assert swap_gap <= 2 * ordinary.max() + config.max_wait_ms / 1000.0, (swap_gap, ordinary.max())
    code, _ = service.terminate()
    assert code == 0
    producer.close()

"""`zstream serve` as a real process: SIGTERM mid-stream finishes the batch, commits and exits 0."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from zstream.io import decode_result_json
from zstream.service.config import as_arguments
from zstream.service.message import send
from zstream.testing.traffic import TopicReader, json_messages

from service_builders import simulate_test

EXIT_TIMEOUT_S = 60


def test_sigterm_finishes_batch_commits_and_exits_zero(kafka_broker, service_config):
    config = service_config
    kafka_broker.create_topics([config.input_topic, config.output_topic, config.dlq_topic], partitions=2)
    spectra, _ = simulate_test(30, 41)
    producer = KafkaProducer(bootstrap_servers=config.bootstrap_servers, max_request_size=4_000_000)
    send(producer, config.input_topic, json_messages(spectra))
    reader = TopicReader(KafkaConsumer(bootstrap_servers=config.bootstrap_servers, group_id=None),
                         [config.output_topic])
    flags, env = as_arguments(dataclasses.replace(config, batch_size=3, archive=None))
    service = subprocess.Popen([sys.executable, "-m", "zstream.cli", "serve", *flags],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, **env})
    try:
        reader.read_until(3, 120)
        assert reader.records, "service produced nothing"
        service.send_signal(signal.SIGTERM)
        output, _ = service.communicate(timeout=EXIT_TIMEOUT_S)
    finally:
        if service.poll() is None:
            service.kill()
            service.wait()
    assert service.returncode == 0, output.decode()[-2000:]

    probe = KafkaConsumer(bootstrap_servers=config.bootstrap_servers, group_id=config.group_id,
                          enable_auto_commit=False)
    committed = {partition: probe.committed(TopicPartition(config.input_topic, partition)) or 0 for partition in range(2)}
    reader.read_until(sum(committed.values()), 30)  # every committed input has its result on the topic
    reader.poll(timeout_ms=1000)  # and nothing beyond them turns up late
    produced = {}
    for record in reader.records:
        result = decode_result_json(record.value)
        produced.setdefault(result["input_partition"], set()).add(result["input_offset"])
    for partition, offset in committed.items():
        assert produced.get(partition, set()) == set(range(offset)), "results and commits disagree"
    assert reader.records
    probe.close()
    reader.close()
    producer.close()

"""Two replicas in one consumer group split the partitions; a refit during traffic is promoted
and hot-swapped on both; `zstream basis list/rollback` move every replica back."""

from __future__ import annotations

import dataclasses
import time

from kafka import KafkaConsumer, KafkaProducer

from zstream.cli import main
from zstream.io import decode_result_json, save_basis
from zstream.service.archive import Archive
from zstream.service.message import send
from zstream.service.replica import Replica
from zstream.testing.traffic import TopicReader, json_messages

from service_builders import simulate_test, sources_only, train_small_basis

TIMEOUT_S = 150


def _wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _refits_settled(a: Replica, b: Replica) -> bool:
    """No refit is running or due (a later promotion would undo a rollback) and both serve one version."""
    return not a.refit_busy and a.serving.version == b.serving.version


def test_two_replicas_split_partitions_and_hot_swap_a_refit(kafka_broker, service_config, running, tmp_path, capsys):
    weak = train_small_basis(seed=21, n=40, k=3, max_iter=8, version="weak-v1")
    save_basis(weak, tmp_path / "weak.parquet")
    refitting = dataclasses.replace(
        service_config, basis=tmp_path / "weak.parquet", batch_size=4, refit_enabled=True, refit_every_spectra=1,
        refit_recent=200, refit_reservoir=0, refit_margin=0.0, refit_max_iter=40,
        # a refit of a deliberately weak basis corrects many confident answers; the live-flip bound of the
        # promotion gate (tested in test_promotion_gate) would rightly hold such a candidate back
        refit_max_flip_share=1.0,
    )
    labelled = sources_only(120, seed=22)  # the archive starts with a labelled training set, as in production
    Archive(refitting.archive).add_labelled(labelled)
    plain = dataclasses.replace(refitting, archive=None, refit_enabled=False)
    kafka_broker.create_topics([refitting.input_topic, refitting.output_topic, refitting.dlq_topic], partitions=2)
    producer = KafkaProducer(bootstrap_servers=refitting.bootstrap_servers, max_request_size=4_000_000)
    reader = TopicReader(KafkaConsumer(bootstrap_servers=refitting.bootstrap_servers, group_id=None),
                         [refitting.output_topic])
    first, _ = simulate_test(40, 31)
    second, _ = simulate_test(8, 32)
    second.spectrum_id = [f"after-swap-{i}" for i in range(len(second))]
    basis_flags = ["--bootstrap-servers", refitting.bootstrap_servers, "--basis-topic", refitting.basis_topic]

    a, b = Replica(refitting), Replica(plain)
    with running(a), running(b):
        _wait_for(lambda: a.membership.partitions and b.membership.partitions, TIMEOUT_S, "both replicas to be assigned")
        send(producer, refitting.input_topic, json_messages(first))
        reader.read_until(len(first), TIMEOUT_S)
        _wait_for(lambda: a.serving.version != "weak-v1" and b.serving.version == a.serving.version,
                  TIMEOUT_S, "a promoted refit on both replicas")
        send(producer, refitting.input_topic, json_messages(second))
        reader.read_until(len(first) + len(second), TIMEOUT_S)
        _wait_for(lambda: _refits_settled(a, b), TIMEOUT_S, "refits to settle")
        serving = a.serving.version

        assert main(["basis", "list", *basis_flags]) == 0
        listing = capsys.readouterr().out
        assert "  weak-v1 " in listing and f"* {serving} " in listing
        swaps_before = [r.metrics.value("zstream_basis_swaps_total") for r in (a, b)]
        assert main(["basis", "rollback", "weak-v1", *basis_flags]) == 0
        _wait_for(lambda: a.serving.version == b.serving.version == "weak-v1", 60, "rollback on both replicas")
        assert [r.metrics.value("zstream_basis_swaps_total") for r in (a, b)] == [n + 1 for n in swaps_before]

    results = [decode_result_json(record.value) for record in reader.records]
    ids = [row["spectrum_id"] for row in results]
    assert sorted(ids) == sorted([*first.spectrum_id, *second.spectrum_id])
    assert {row["input_partition"] for row in results} == {0, 1}
    consumed = [r.metrics.value("zstream_messages_consumed_total") for r in (a, b)]
    assert all(count > 0 for count in consumed) and sum(consumed) == len(ids)
    published = set(listing.split())
    assert all(row["basis_version"] != "weak-v1" for row in results if row["spectrum_id"].startswith("after-swap"))
    assert {row["basis_version"] for row in results} <= published
    assert a.metrics.value("zstream_refits_total", outcome="promoted") >= 1
    assert (refitting.archive / "bases" / f"{serving}.parquet").exists()
    reader.close()
    producer.close()

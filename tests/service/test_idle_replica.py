"""A replica the group gives no partition is ready but idle, says so on /readyz and /metrics, and takes
over when the busy one leaves."""

from __future__ import annotations

import threading

from zstream.service.replica import Replica

from probes import http_get
from service_builders import REPLICA_STOP_TIMEOUT_S, scrape, wait_for

TIMEOUT_S = 120
ASSIGNED = ("zstream_assigned_partitions", ())
READY = ("zstream_ready", ())


def _start(replica: Replica) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(target=replica.run, args=(stop,), name="replica-under-test")
    thread.start()
    return stop, thread


def test_a_replica_without_partitions_is_ready_but_idle(kafka_broker, service_config):
    kafka_broker.create_topics([service_config.input_topic], partitions=1)
    replicas = [Replica(service_config), Replica(service_config)]
    ports = [replica.health.port for replica in replicas]
    started = [_start(replica) for replica in replicas]
    try:
        wait_for(lambda: all(http_get(port, "/readyz")[0] == 200 and scrape(port)[READY] == 1 for port in ports)
                 and sorted(scrape(port)[ASSIGNED] for port in ports) == [0, 1],
                 TIMEOUT_S, "both replicas ready with the one partition between them")
        idle = next(i for i, port in enumerate(ports) if scrape(port)[ASSIGNED] == 0)
        status, reason = http_get(ports[idle], "/readyz")
        assert status == 200 and "idle" in reason
        assert "idle" not in http_get(ports[1 - idle], "/readyz")[1]

        stop, thread = started[1 - idle]  # the busy replica leaves the group: the idle one takes over
        stop.set()
        thread.join(REPLICA_STOP_TIMEOUT_S)
        wait_for(lambda: scrape(ports[idle])[ASSIGNED] == 1, TIMEOUT_S, "the idle replica to take the partition")
        assert "idle" not in http_get(ports[idle], "/readyz")[1]
    finally:
        for stop, thread in started:
            stop.set()
            thread.join(REPLICA_STOP_TIMEOUT_S)
    assert not any(thread.is_alive() for _, thread in started)

"""Prometheus metrics of the service: the single definition of every metric name.

Dashboards and alert rules (``deploy/``) use these names. Each service instance
owns a private ``CollectorRegistry`` so several replicas can live in one process
(tests, the demo) without clashing.
"""

from __future__ import annotations

import resource

import torch
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

MESSAGES_CONSUMED = "zstream_messages_consumed_total"
RESULTS_PRODUCED = "zstream_results_produced_total"
DLQ_RECORDS = "zstream_dlq_records_total"
BATCH_DURATION = "zstream_batch_duration_seconds"
SCAN_DURATION = "zstream_scan_duration_seconds"
END_TO_END_LATENCY = "zstream_end_to_end_latency_seconds"
CONSUMER_LAG = "zstream_consumer_lag"
BASIS_INFO = "zstream_basis_info"
BASIS_SWAPS = "zstream_basis_swaps_total"
REFITS = "zstream_refits_total"
REFIT_DURATION = "zstream_refit_duration_seconds"
CLASSIFICATIONS = "zstream_classifications_total"
DELTA_CHI2_LOG10 = "zstream_delta_chi2_log10"
DEVICE_MEMORY = "zstream_device_memory_bytes"
READY = "zstream_ready"
ASSIGNED_PARTITIONS = "zstream_assigned_partitions"
REFIT_LEADER = "zstream_refit_leader"
ISOLATED_RECORDS = "zstream_isolated_records_total"
BROKER_RETRIES = "zstream_broker_retries_total"
LOOP_HEARTBEAT = "zstream_loop_heartbeat_timestamp_seconds"

REFIT_OUTCOMES = ("promoted", "rejected", "failed")
CLASSIFICATION_LABELS = ("source", "false", "blend")
ISOLATION_STAGES = ("decode", "scan")
BROKER_OPERATIONS = ("deliver", "commit", "poll")

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
_REFIT_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
_LOG10_DELTA_CHI2_BUCKETS = (-5.0, -4.0, -3.0, -2.5, -2.0, -1.5, -1.0, -0.5, 0.0)


def _strip_total(name: str) -> str:
    """prometheus-client appends ``_total`` to counters itself."""
    return name.removesuffix("_total")


class ServiceMetrics:
    """Every metric of one service instance, registered in its own registry.

    Attributes are the prometheus-client metric objects; label names are fixed
    here (``topic``, ``reason``, ``partition``, ``version``, ``outcome``, ``label``, ``stage``, ``operation``).
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.messages_consumed = Counter(
            _strip_total(MESSAGES_CONSUMED), "Input messages read, per topic", ["topic"], registry=registry
        )
        self.results_produced = Counter(
            _strip_total(RESULTS_PRODUCED), "Result records produced", registry=registry
        )
        self.dlq_records = Counter(
            _strip_total(DLQ_RECORDS), "Dead-letter records produced, per reason code", ["reason"], registry=registry
        )
        self.batch_duration = Histogram(
            BATCH_DURATION, "Wall time of one batch: decode, scan, produce, flush, commit",
            buckets=_LATENCY_BUCKETS, registry=registry,
        )
        self.scan_duration = Histogram(
            SCAN_DURATION, "Wall time of the redshift scan of one batch", buckets=_LATENCY_BUCKETS, registry=registry
        )
        self.end_to_end_latency = Histogram(
            END_TO_END_LATENCY, "From the input message timestamp to its result being flushed",
            buckets=_LATENCY_BUCKETS, registry=registry,
        )
        self.consumer_lag = Gauge(
            CONSUMER_LAG, "Messages behind the end of each assigned input partition",
            ["topic", "partition"], registry=registry,
        )
        self.basis_info = Gauge(BASIS_INFO, "1 for the basis version being served", ["version"], registry=registry)
        self.basis_swaps = Counter(_strip_total(BASIS_SWAPS), "Basis hot swaps applied", registry=registry)
        self.refits = Counter(_strip_total(REFITS), "Refits by outcome", ["outcome"], registry=registry)
        self.refit_duration = Histogram(
            REFIT_DURATION, "Wall time of one refit including shadow evaluation", buckets=_REFIT_BUCKETS,
            registry=registry,
        )
        self.classifications = Counter(
            _strip_total(CLASSIFICATIONS), "Results by decision: source, false or blend", ["label"], registry=registry
        )
        self.delta_chi2_log10 = Histogram(
            DELTA_CHI2_LOG10, "log10 of the result confidence delta-chi2", buckets=_LOG10_DELTA_CHI2_BUCKETS,
            registry=registry,
        )
        self.device_memory = Gauge(
            DEVICE_MEMORY, "Memory in use on the scan device (CUDA allocator; process peak RSS on CPU)",
            registry=registry,
        )
        self.ready = Gauge(READY, "1 when holding a basis, connected and a consumer-group member (maybe idle)",
                           registry=registry)
        self.assigned_partitions = Gauge(
            ASSIGNED_PARTITIONS, "Input partitions this replica owns; 0 while ready means idle (more replicas than "
            "partitions)", registry=registry,
        )
        self.refit_leader = Gauge(
            REFIT_LEADER, "1 while this replica holds the refit lease (runs refits and archive retention)",
            registry=registry,
        )
        self.isolated_records = Counter(
            _strip_total(ISOLATED_RECORDS),
            "Records refused as internal_error because decoding or scanning them raised (the rest of the batch answered)",
            ["stage"], registry=registry,
        )
        self.broker_retries = Counter(
            _strip_total(BROKER_RETRIES), "Retries after a failed broker operation, per operation", ["operation"],
            registry=registry,
        )
        self.loop_heartbeat = Gauge(
            LOOP_HEARTBEAT, "Unix time the consume loop last made progress (what /healthz checks)", registry=registry
        )
        for outcome in REFIT_OUTCOMES:
            self.refits.labels(outcome=outcome)
        for label in CLASSIFICATION_LABELS:
            self.classifications.labels(label=label)
        for stage in ISOLATION_STAGES:
            self.isolated_records.labels(stage=stage)
        for operation in BROKER_OPERATIONS:
            self.broker_retries.labels(operation=operation)

    def set_basis_version(self, version: str) -> None:
        """Make ``version`` the only series of ``zstream_basis_info`` with value 1."""
        self.basis_info.clear()
        self.basis_info.labels(version=version).set(1)

    def sample_device_memory(self, device: torch.device) -> None:
        """Record memory in use: the CUDA allocator on GPUs, the process peak RSS otherwise."""
        if device.type == "cuda":
            self.device_memory.set(torch.cuda.memory_allocated(device))
        else:
            self.device_memory.set(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)

    def value(self, name: str, **labels: str) -> float:
        """Sum of the samples called ``name`` whose labels include ``labels`` (for progress views and tests)."""
        return sum(
            sample.value
            for family in self.registry.collect()
            for sample in family.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        )

    def exposition(self) -> bytes:
        """The Prometheus text exposition of this instance's registry."""
        return generate_latest(self.registry)

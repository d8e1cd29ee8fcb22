"""Basis versions on the compacted basis topic: the shared truth of what every replica serves.

Two kinds of records, both compacted by key:

- ``basis/<version>`` → the basis file bytes (``zstream.io.save_basis`` format);
- ``serving`` → JSON ``{"version", "previous", "reason", "at"}``, the version all
  replicas must serve. Promotion and rollback only rewrite this pointer.

A replica reads the topic from the beginning to learn every version and the
pointer, then keeps following it to hot-swap.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from zstream.errors import UserError
from zstream.io import Basis, content_hash, load_basis, save_basis

SERVING_KEY = b"serving"
_BASIS_KEY_PREFIX = b"basis/"
_REJECTED_KEY_PREFIX = b"rejected/"


def new_version_id(basis: Basis) -> str:
    """A fresh, sortable version id: UTC time plus the start of the content hash."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    return f"v{stamp}-{content_hash(basis.templates, basis.grid).removeprefix('sha256:')[:8]}"


def basis_to_bytes(basis: Basis) -> bytes:
    """The basis file bytes of ``basis`` (same format as ``save_basis`` writes)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "basis.parquet"
        save_basis(basis, path)
        return path.read_bytes()


def basis_from_bytes(data: bytes) -> Basis:
    """Inverse of :func:`basis_to_bytes`; the content hash is verified."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "basis.parquet"
        path.write_bytes(data)
        return load_basis(path)


@dataclass
class BasisLog:
    """What the basis topic says: all versions (raw bytes) and the serving pointer.

    Attributes
    ----------
    versions : dict of str to bytes
        Basis file bytes by version id, in the order first seen.
    serving : dict or None
        The latest ``serving`` pointer record.
    rejections : dict of str to dict
        Refit candidates the gates refused, by version id: parent, reasons, figures.
    """

    versions: dict[str, bytes] = field(default_factory=dict)
    serving: dict | None = None
    rejections: dict[str, dict] = field(default_factory=dict)

    def apply(self, key: bytes | None, value: bytes | None) -> bool:
        """Fold one topic record in; return True when the serving pointer changed."""
        if key == SERVING_KEY and value is not None:
            pointer = orjson.loads(value)
            changed = self.serving is None or pointer["version"] != self.serving["version"]
            self.serving = pointer
            return changed
        if key is not None and key.startswith(_BASIS_KEY_PREFIX) and value is not None:
            self.versions[key[len(_BASIS_KEY_PREFIX):].decode()] = value
        if key is not None and key.startswith(_REJECTED_KEY_PREFIX) and value is not None:
            self.rejections[key[len(_REJECTED_KEY_PREFIX):].decode()] = orjson.loads(value)
        return False

    @property
    def serving_version(self) -> str | None:
        """Version the pointer names, or None when no basis was published yet."""
        return None if self.serving is None else self.serving["version"]

    def basis(self, version: str) -> Basis:
        """Decode one stored version.

        Raises
        ------
        UserError
            The version is not on the topic.
        """
        if version not in self.versions:
            known = ", ".join(self.versions) or "none"
            raise UserError(f"basis version {version!r} is not on the basis topic (known: {known})")
        return basis_from_bytes(self.versions[version])


class BasisTopicReader:
    """Follows the basis topic from its beginning with a group-less consumer (cheap to poll).

    Parameters
    ----------
    consumer : KafkaConsumer
        A consumer without group id; it is assigned partition 0 of ``topic`` here.
    topic : str
    """

    def __init__(self, consumer: KafkaConsumer, topic: str):
        self.consumer = consumer
        self.partition = TopicPartition(topic, 0)
        self.consumer.assign([self.partition])
        self.consumer.seek_to_beginning(self.partition)
        self.log = BasisLog()

    def poll(self, timeout_ms: int = 0) -> bool:
        """Read what has arrived; return True when the serving pointer changed."""
        changed = False
        for records in self.consumer.poll(timeout_ms=timeout_ms).values():
            for record in records:
                changed |= self.log.apply(record.key, record.value)
        return changed

    def catch_up(self, timeout_s: float = 30.0) -> BasisLog:
        """Read up to the current end of the topic.

        Raises
        ------
        UserError
            If the end is not reached within ``timeout_s``.
        """
        end = self.consumer.end_offsets([self.partition])[self.partition]
        deadline = time.monotonic() + timeout_s
        while self.consumer.position(self.partition) < end:
            if time.monotonic() > deadline:
                raise UserError(
                    f"basis topic {self.partition.topic!r}: could not read to offset {end} within {timeout_s:.0f} s"
                )
            self.poll(timeout_ms=200)
        return self.log

    def close(self) -> None:
        """Close the consumer."""
        self.consumer.close()


def publish_basis(producer: KafkaProducer, topic: str, basis: Basis) -> None:
    """Store ``basis`` as a version record on the basis topic (does not change the pointer)."""
    producer.send(topic, key=_BASIS_KEY_PREFIX + basis.version.encode(), value=basis_to_bytes(basis))
    producer.flush()


def publish_rejection(producer: KafkaProducer, topic: str, candidate: Basis, *, reasons: str, figures: dict) -> None:
    """Record a refused refit candidate on the basis topic (the basis itself is not stored), for operators."""
    record = {
        "version": candidate.version,
        "parent_version": candidate.meta.get("parent_version"),
        "reasons": reasons,
        "figures": figures,
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    producer.send(topic, key=_REJECTED_KEY_PREFIX + candidate.version.encode(), value=orjson.dumps(record))
    producer.flush()


def point_serving(producer: KafkaProducer, topic: str, version: str, *, previous: str | None, reason: str) -> None:
    """Make ``version`` the one every replica serves (``reason``: initial, promoted, rollback…)."""
    pointer = {
        "version": version,
        "previous": previous,
        "reason": reason,
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    producer.send(topic, key=SERVING_KEY, value=orjson.dumps(pointer))
    producer.flush()

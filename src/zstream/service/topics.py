"""Creating the service's topics on a broker that does not auto-create them (``--create-topics``)."""

from __future__ import annotations

from collections.abc import Iterable

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError


def create_topics(
    bootstrap_servers: str, names: Iterable[str], partitions: int = 1, compacted: Iterable[str] = (), **client_options
) -> None:
    """Create each topic in ``names`` that does not exist yet.

    Parameters
    ----------
    bootstrap_servers : str
        Broker address list.
    names : iterable of str
        Topics to create.
    partitions : int
        Partition count of new topics (compacted topics always get one).
    compacted : iterable of str
        Topics to create with ``cleanup.policy=compact`` (e.g. the basis topic).
    **client_options
        Extra ``KafkaAdminClient`` options (security settings).
    """
    compacted = set(compacted)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, **client_options)
    try:
        existing = set(admin.list_topics())
        new_topics = [
            NewTopic(
                name,
                num_partitions=1 if name in compacted else partitions,
                replication_factor=1,
                topic_configs={"cleanup.policy": "compact"} if name in compacted else {},
            )
            for name in names
            if name not in existing
        ]
        for topic in new_topics:
            try:
                admin.create_topics([topic])
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()

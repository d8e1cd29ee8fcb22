"""Reconcile an input topic against the result and dead-letter topics: nothing missing, duplicates consistent.

The service promises that every input message ends as results or dead letters
(one per spectrum it holds) and that a replayed message repeats the same outcome
under the same key. This module checks that promise from the outside, using
only what is on the topics: the input offsets, and the input partition/offset
each result (``input_partition``/``input_offset`` fields) and dead letter
(``zstream-source-*`` headers) names. Fault-injection tests and the soak use it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson

from zstream.service.clients import header
from zstream.service.outputs import REASON_HEADER, SPECTRUM_ID_HEADER


@dataclass(frozen=True)
class Outcome:
    """What became of one spectrum of one input message.

    Attributes
    ----------
    partition, offset : int
        Where the input message was on the input topic.
    spectrum_id : str or None
        The record key (None for a dead letter whose id could not be read).
    kind : str
        ``result`` or ``dead_letter``.
    label : str
        The basis version of a result, the reason code of a dead letter.
    """

    partition: int
    offset: int
    spectrum_id: str | None
    kind: str
    label: str


def outcome_of(record, output_topic: str) -> Outcome:
    """The :class:`Outcome` an output-topic or DLQ record reports (kafka-python ``ConsumerRecord``)."""
    if record.topic == output_topic:
        value = orjson.loads(record.value)
        return Outcome(value["input_partition"], value["input_offset"], value["spectrum_id"], "result",
                       value["basis_version"])
    spectrum_id = header(record.headers, SPECTRUM_ID_HEADER)
    return Outcome(
        int(header(record.headers, "zstream-source-partition")),
        int(header(record.headers, "zstream-source-offset")),
        None if spectrum_id is None else spectrum_id.decode("utf-8", "surrogateescape"),
        "dead_letter",
        header(record.headers, REASON_HEADER).decode(),
    )


@dataclass
class Reconciliation:
    """Inputs matched against outcomes.

    Attributes
    ----------
    n_inputs : int
        Input messages seen.
    missing : list of (partition, offset)
        Inputs with no result and no dead letter.
    unknown : list of Outcome
        Outcomes naming an input that is not on the input topic.
    duplicates : dict
        ``(partition, offset, spectrum_id)`` → every outcome delivered for it, where it got more than one
        result or the same dead letter twice (a message holding one id twice rightly gives a result and a
        ``duplicate_id_in_batch`` dead letter: that alone is no duplicate).
    reasons : Counter
        Distinct dead letters per reason code.
    versions : Counter
        Distinct results per basis version.
    """

    n_inputs: int
    missing: list[tuple[int, int]] = field(default_factory=list)
    unknown: list[Outcome] = field(default_factory=list)
    duplicates: dict[tuple[int, int, str | None], list[Outcome]] = field(default_factory=dict)
    reasons: Counter = field(default_factory=Counter)
    versions: Counter = field(default_factory=Counter)

    @property
    def inconsistent(self) -> dict[tuple[int, int, str | None], list[Outcome]]:
        """Duplicates whose repeats disagree: results under two basis versions, or two different reasons."""
        return {
            key: outcomes for key, outcomes in self.duplicates.items()
            if any(len({o.label for o in outcomes if o.kind == kind}) > 1 for kind in ("result", "dead_letter"))
        }

    @property
    def complete(self) -> bool:
        """True when every input has an outcome and every outcome has an input."""
        return not self.missing and not self.unknown

    def summary(self) -> str:
        """One line for logs and assertion messages."""
        return (f"{self.n_inputs} inputs, {len(self.missing)} missing, {len(self.unknown)} unknown, "
                f"{len(self.duplicates)} duplicated ({len(self.inconsistent)} inconsistent), "
                f"results by version {dict(self.versions)}, dead letters by reason {dict(self.reasons)}")


def reconcile(inputs: Iterable, outputs: Iterable, output_topic: str) -> Reconciliation:
    """Match input messages to the results and dead letters read back from the topics.

    Parameters
    ----------
    inputs : iterable of ConsumerRecord
        Every record read from the input topic.
    outputs : iterable of ConsumerRecord
        Every record read from the output and dead-letter topics.
    output_topic : str
        Name of the output topic (records from any other topic count as dead letters).

    Returns
    -------
    Reconciliation
    """
    input_positions = {(record.partition, record.offset) for record in inputs}
    delivered: dict[tuple[int, int, str | None], list[Outcome]] = defaultdict(list)
    for record in outputs:
        outcome = outcome_of(record, output_topic)
        delivered[(outcome.partition, outcome.offset, outcome.spectrum_id)].append(outcome)
    answered = {(partition, offset) for partition, offset, _ in delivered}
    report = Reconciliation(len(input_positions))
    report.missing = sorted(input_positions - answered)
    report.unknown = [outcomes[0] for key, outcomes in delivered.items() if key[:2] not in input_positions]
    report.duplicates = {key: outcomes for key, outcomes in delivered.items() if _repeats(outcomes)}
    for outcomes in delivered.values():
        for outcome in set(outcomes):
            (report.versions if outcome.kind == "result" else report.reasons)[outcome.label] += 1
    return report


def _repeats(outcomes: list[Outcome]) -> bool:
    """More than one result, or one dead-letter reason more than once."""
    kinds = Counter(outcome.label if outcome.kind == "dead_letter" else "result" for outcome in outcomes)
    return max(kinds.values()) > 1

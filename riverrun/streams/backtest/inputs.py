"""What a replay reads: ``ReplayInput`` (two sources and how the live flow names their origin),
built from JSON Lines files (``file_input``) or a range of the Kafka topics (``kafka_input``, with
the control topic's operator commands ordered with the stream)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bytewax.inputs import Source

from riverrun.schemas import DeadLetter
from riverrun.streams.core.items import ControlItem, RawRecord
from riverrun.streams.flow.sources import JsonLinesSource


@dataclass
class ReplayInput:
    """Where a replay reads: the two sources and how the live flow names their origin."""

    events: Source
    labels: Source
    event_topic: str
    label_topic: str
    event_partitions: tuple[int, ...] = (0,)
    label_partitions: tuple[int, ...] = (0,)
    total_events: int | None = None  # for the progress ETA
    describe: dict[str, Any] = field(default_factory=dict)  # the report's "inputs"
    title: str = "replay"
    control: Source | None = None  # operator commands (RawRecord), ordered with the stream
    control_loader: Callable[[RawRecord], ControlItem | DeadLetter] | None = None


def _count_lines(path: Path) -> int:
    n = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            n += chunk.count(b"\n")
    return n


def file_input(events: str | Path, labels: str | Path) -> ReplayInput:
    """JSON Lines files (the topic schemas), one record a line; the line number is the offset."""
    events, labels = Path(events), Path(labels)
    return ReplayInput(
        JsonLinesSource(events, "event"),
        JsonLinesSource(labels, "label"),
        events.name,  # the files, named as the decoder names them
        labels.name,
        total_events=_count_lines(events),
        describe={"events": str(events), "labels": str(labels)},
        title=f"replay of {events.name}",
    )


def kafka_input(
    client_config: dict[str, str],
    event_topic: str,
    label_topic: str,
    start_offset: str | None = None,
    end_offset: str | None = None,
    start_time: datetime | None = None,
    end_time: datetime | None = None,
    batch_size: int = 1000,
    control_topic: str | None = None,
    control_loader: Callable[[RawRecord], ControlItem | DeadLetter] | None = None,
) -> ReplayInput:
    """A range of the events and labels topics (see ``kafka_range``), resolved now: what the
    topics hold when the replay starts, read once.

    With ``control_topic`` and ``control_loader`` (``control.control_loader``: rollback targets
    come from the registry the live flow checkpointed to), the operator commands of that topic
    over the same times are ordered with the stream by their event time, as the live flow orders
    them. With offsets, the control topic is read whole unless ``control=N`` ranges it (a plain
    ``N`` is an offset of the events and labels only)."""
    from riverrun.streams.kafka.range import KafkaRangeSource, parse_offsets, resolve_range

    starts, ends = parse_offsets(start_offset), parse_offsets(end_offset)
    topics = [("events", event_topic), ("labels", label_topic)]
    with_control = control_topic is not None and control_loader is not None
    if with_control:
        topics.append(("control", control_topic))
    ranges = {
        kind: resolve_range(
            client_config,
            topic,
            kind,
            starts.of_kind(kind) if kind == "control" else starts,
            ends.of_kind(kind) if kind == "control" else ends,
            start_time,
            end_time,
        )
        for kind, topic in topics
    }

    def partitions(kind: str) -> tuple[int, ...]:
        # only partitions with records in the range: an empty one would hold the others back
        return tuple(r.partition for r in ranges[kind] if r.size > 0) or (0,)

    return ReplayInput(
        KafkaRangeSource(client_config, "event", ranges["events"], batch_size),
        KafkaRangeSource(client_config, "label", ranges["labels"], batch_size),
        event_topic,
        label_topic,
        partitions("events"),
        partitions("labels"),
        total_events=sum(r.size for r in ranges["events"]),
        control=KafkaRangeSource(client_config, "control", ranges["control"], batch_size, end_marker=True)
        if with_control
        else None,
        control_loader=ending_loader(control_loader) if with_control else None,
        describe={
            "kafka": client_config.get("bootstrap.servers"),
            "topics": {"events": event_topic, "labels": label_topic, "control": control_topic}
            if with_control
            else {"events": event_topic, "labels": label_topic},
            "start_time": start_time.isoformat() if start_time else None,
            "end_time": end_time.isoformat() if end_time else None,
            **{
                kind: [{"partition": r.partition, "start": r.start, "end": r.end} for r in rs]
                for kind, rs in ranges.items()
            },
        },
        title=f"replay of {event_topic} (Kafka)",
    )


#: Event time of a control partition's end marker: later than any record.
END_OF_RANGE_TS = datetime(9999, 12, 31, tzinfo=UTC)


def ending_loader(
    loader: Callable[[RawRecord], ControlItem | DeadLetter],
) -> Callable[[RawRecord], ControlItem | DeadLetter]:
    """``loader``, and a no-op command at ``END_OF_RANGE_TS`` for a control partition's end marker.

    The ordering holds every event back until each label and control partition has passed its
    time; live, an idle control partition stops holding the others back after ``max_wait_ms``,
    but a replay orders exactly (no wall-clock wait), so after the last command the rest of the
    stream would wait in the ordering's buffer until the end of the input (memory growing with
    the range). The marker's time says the partition is done; the command names no model (every
    model step ignores it) and is released last, after every record."""
    from riverrun.streams.kafka.range import EndOfRange

    def load(raw: RawRecord) -> ControlItem | DeadLetter:
        if isinstance(raw.value, EndOfRange):
            return ControlItem("", "checkpoint", None, None, "end of the control range", END_OF_RANGE_TS)
        return loader(raw)

    return load

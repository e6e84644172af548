"""What ``riverrun produce`` publishes (with ``producer.publish_stream``): recorded JSON Lines
files, their invalid lines kept verbatim at their place for the flow to dead-letter, or a
synthetic drifting stream (the one ``riverrun generate`` writes, timed for publishing)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from riverrun.errors import RiverrunError


def sample_stream(n: int, *, seed: int, label_delay: float, **timing) -> tuple[list, list]:
    """``n`` events of the drifting Agrawal stream (sudden drift halfway) and their labels,
    ``label_delay`` seconds later; ``timing``: ``to_records``'s start and interval."""
    from riverrun.streams.backtest.synth import drifting_agrawal, to_records

    data = drifting_agrawal(n, seed=seed)
    return to_records(data, label_delay=timedelta(seconds=label_delay), seed=seed, **timing)


def _decoded(path: Path, decode: Callable) -> list:
    """A JSON Lines file's records, each invalid line as its raw bytes."""
    from riverrun.schemas import DeadLetter
    from riverrun.streams.flow.sources import read_jsonl

    out = []
    for raw in read_jsonl(path):
        record = decode(raw, max_bytes=1 << 30)
        out.append(raw if isinstance(record, DeadLetter) else record)
    return out


@dataclass(frozen=True)
class ProduceInput:
    """Files (``events`` with ``labels``), or ``synthetic`` events from ``start`` (ISO-8601,
    default now) at ``rate`` per second of event time (1 when unthrottled). Options are checked
    when it is made; nothing is read until ``records``."""

    events: Path | None = None
    labels: Path | None = None
    synthetic: int = 10_000
    label_delay: float = 60.0
    rate: float = 0.0
    start: str | None = None
    seed: int = 42

    def __post_init__(self) -> None:
        if self.events and not self.labels:
            raise RiverrunError("--events needs --labels")

    def records(self) -> tuple[list, list]:
        """(events, labels) in event-time order."""
        if self.events:
            from riverrun.schemas import decode_event, decode_label

            # Invalid lines are published verbatim, at their place: the flow dead-letters them.
            return _decoded(self.events, decode_event), _decoded(self.labels, decode_label)
        start = datetime.now(UTC) if self.start is None else datetime.fromisoformat(self.start)
        interval = timedelta(seconds=1.0 / self.rate) if self.rate > 0 else timedelta(seconds=1)
        return sample_stream(
            self.synthetic, seed=self.seed, label_delay=self.label_delay, start=start, interval=interval
        )

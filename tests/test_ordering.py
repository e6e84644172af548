"""The event-time orderer: exact order from any interleaving, bounded wait on an idle input."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from riverrun.streams.core.ordering import EVENT, LABEL, EventTimeOrderer, Sequenced


def _streams(rng: random.Random, n: int):
    events, labels, t = [], [], 0.0
    for i in range(n):
        t += rng.choice([0.0, 0.5, 1.0, 2.0])  # ties included
        events.append(Sequenced(t, EVENT, 0, i, f"e{i}"))
        labels.append(Sequenced(t + rng.choice([0.0, 1.0, 3.0]), LABEL, 0, i, f"l{i}"))
    labels.sort(key=lambda s: s.ts)
    labels = [Sequenced(s.ts, LABEL, 0, k, s.payload) for k, s in enumerate(labels)]
    return events, labels


@given(st.integers(0, 10_000), st.integers(1, 60))
def test_any_interleaving_gives_the_sorted_order(seed, n):
    rng = random.Random(seed)
    events, labels = _streams(rng, n)
    expected = [s.payload for s in sorted(events + labels)]
    o = EventTimeOrderer()
    out, i, j = [], 0, 0
    while i < n or j < n:
        if j >= n or (i < n and rng.random() < 0.5):
            out += o.push(events[i])
            i += 1
        else:
            out += o.push(labels[j])
            j += 1
    out += o.flush()
    assert [s.payload for s in out] == expected
    assert o.late == 0


def test_idle_input_releases_after_max_wait_but_a_busy_one_is_waited_for():
    o = EventTimeOrderer(max_wait_seconds=1.0)
    assert o.push(Sequenced(10.0, EVENT, 0, 0, "e0"), now=100.0) == []
    assert o.deadline() == 100.25  # a check four times per max_wait while items wait
    assert o.on_timeout(100.5) == []
    # The labels input is behind but alive: its label is applied, the event still waits.
    assert [s.payload for s in o.push(Sequenced(5.0, LABEL, 0, 0, "l0"), now=100.9)] == ["l0"]
    assert o.on_timeout(101.5) == []  # labels were seen 0.6 s ago: not idle
    assert [s.payload for s in o.on_timeout(102.0)] == ["e0"]  # idle for 1.1 s: released
    assert o.deadline() is None
    # A label older than what was force-released is late: applied at once, and counted.
    assert [s.payload for s in o.push(Sequenced(9.0, LABEL, 0, 1, "l1"), now=103.0)] == ["l1"]
    assert o.late == 1


def test_partitions_of_one_input_are_merged_in_time_order():
    o = EventTimeOrderer()
    out = o.push(Sequenced(0.0, LABEL, 0, 0, "l-start"))
    out += o.push(Sequenced(1.0, EVENT, 0, 0, "a1"))
    out += o.push(Sequenced(2.0, EVENT, 1, 0, "b2"))
    out += o.push(Sequenced(3.0, EVENT, 0, 1, "a3"))
    out += o.push(Sequenced(9.0, LABEL, 0, 1, "l9"))
    # b2 may not pass a1, nor a3 pass b2, whatever the arrival order.
    assert [s.payload for s in out] == ["l-start", "a1", "b2"]
    out = o.push(Sequenced(4.0, EVENT, 1, 1, "b4"))
    assert [s.payload for s in out] == ["a3"]
    assert [s.payload for s in o.flush()] == ["b4", "l9"]


def test_an_idle_partition_stops_holding_the_others_back():
    o = EventTimeOrderer(max_wait_seconds=1.0)
    o.push(Sequenced(1.0, EVENT, 1, 0, "quiet"), now=0.0)
    o.push(Sequenced(0.5, LABEL, 0, 0, "l0"), now=0.0)
    assert o.push(Sequenced(5.0, EVENT, 0, 0, "busy"), now=0.5) == []
    out = o.push(Sequenced(4.0, LABEL, 0, 1, "l4"), now=0.6)
    assert [s.payload for s in out] == ["quiet"]  # l4 waits: partition 1 may send t <= 4
    # Partition 1 has sent nothing since wall-clock 0.0: idle at 1.2, it no longer holds l4.
    out = o.push(Sequenced(6.0, EVENT, 0, 1, "busy2"), now=1.2)
    assert [s.payload for s in out] == ["l4"]
    out = o.push(Sequenced(7.0, LABEL, 0, 2, "l7"), now=1.2)
    assert [s.payload for s in out] == ["busy", "busy2"]


def test_label_before_event_at_equal_time():
    o = EventTimeOrderer()
    out = o.push(Sequenced(1.0, EVENT, 0, 0, "e")) + o.push(Sequenced(1.0, LABEL, 0, 0, "l"))
    assert [s.payload for s in out] == ["l"]  # the event still waits: another label at 1.0 may come
    assert [s.payload for s in out + o.flush()] == ["l", "e"]


@given(st.integers(0, 10_000), st.integers(1, 80), st.integers(1, 3), st.integers(1, 2))
def test_many_partitions_any_interleaving_gives_the_sorted_order(seed, n, event_parts, label_parts):
    """Each partition is time-ordered; partitions of one input never tie (distinct times)."""
    rng = random.Random(seed)
    times = sorted(rng.sample(range(10 * n + 10), n))
    events = [Sequenced(float(t), EVENT, rng.randrange(event_parts), 0, f"e{t}") for t in times]
    label_times = sorted(rng.sample(range(10 * n + 10), n))
    labels = [Sequenced(float(t), LABEL, rng.randrange(label_parts), 0, f"l{t}") for t in label_times]
    queues: dict[tuple[int, int], list[Sequenced]] = {}
    for item in events + labels:  # per-partition offsets in time order
        q = queues.setdefault((item.kind, item.partition), [])
        q.append(item._replace(offset=len(q)))
    expected = [s.payload for s in sorted(s for q in queues.values() for s in q)]
    o = EventTimeOrderer(partitions=(range(label_parts), range(event_parts)))
    out = []
    while any(queues.values()):
        q = rng.choice([q for q in queues.values() if q])
        out += o.push(q.pop(0))
    out += o.flush()
    assert [s.payload for s in out] == expected
    assert o.late == 0

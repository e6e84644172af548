"""The event-time orderer: exact order from any interleaving, bounded wait on an idle input."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from riverrun.streams.ordering import EVENT, LABEL, EventTimeOrderer, Sequenced


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
    assert o.deadline() == 101.0
    assert o.on_timeout(100.5) == []
    # The labels input is behind but alive: each label moves the deadline.
    assert o.push(Sequenced(5.0, LABEL, 0, 0, "l0"), now=100.9) != []
    assert o.deadline() == 101.9
    assert o.on_timeout(101.5) == []
    assert [s.payload for s in o.on_timeout(102.0)] == ["e0"]
    assert o.deadline() is None
    # A label older than what was force-released is late: processed at once, counted.
    assert [s.payload for s in o.push(Sequenced(9.0, LABEL, 0, 1, "l1"), now=103.0)] == ["l1"]
    assert o.late == 1


def test_label_before_event_at_equal_time():
    o = EventTimeOrderer()
    out = o.push(Sequenced(1.0, EVENT, 0, 0, "e")) + o.push(Sequenced(1.0, LABEL, 0, 0, "l"))
    assert [s.payload for s in out] == ["l"]  # the event still waits: another label at 1.0 may come
    assert [s.payload for s in out + o.flush()] == ["l", "e"]

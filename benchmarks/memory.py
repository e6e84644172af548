"""Memory and snapshot figures of ``benchmarks/compare.py``: pending-label memory per pending
event, RSS over a long replay, and the cost of snapshotting an ``arf`` model step.

Each function returns plain numbers; ``compare.py`` prints them. The RSS run also runs alone
(writes the stream to a temporary directory, ~390 bytes per event, and deletes it after)::

    python -m benchmarks.memory --rss-events 5000000 --rss-budget 3000
"""

from __future__ import annotations

import argparse
import copy
import gc
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from riverrun.learners.rebuild import rebuilt
from riverrun.schemas import Event
from riverrun.streams.core.features import EntityFeatures
from riverrun.streams.core.items import FeaturedEvent, SourcedLabel
from riverrun.streams.core.join import LabelJoin
from riverrun.streams.core.modelstep import ModelStep, StepConfig

ROOT = Path(__file__).resolve().parents[1]


def _traced(build) -> int:
    """Bytes still allocated after ``build()`` (tracemalloc), its result kept alive."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = build()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del kept
    return after - before


def _fresh(x: dict) -> dict:
    """A copy of ``x`` with its own float objects (as a decoded event's), keys shared (as
    orjson's key cache and the feature step's name cache share them)."""
    return {k: v * 1.0 if type(v) is float else v for k, v in x.items()}


def pending_join_bytes(events, n: int) -> float:
    """Bytes per pending event of a ``LabelJoin`` holding ``n`` events with their 10 raw
    features: the id, the deadline tuple, the features dict and its floats."""
    xs = [dict(e.features) for e in events[:n]]
    times = [e.ts.timestamp() for e in events[:n]]

    def build():
        join = LabelJoin(ttl_seconds=86_400.0)
        for i in range(n):
            join.add_event(f"e{i:09d}", times[i], _fresh(xs[i]))
        return join

    return _traced(build) / n


def pending_step_bytes(events, n: int, features: str = "default") -> float:
    """Bytes per pending event of a whole ``ModelStep`` (``lr``, lifecycle off) that served
    ``n`` events and got no label yet: the join's entry (the features served: 22 per event
    with ``default`` features, 10 with ``none``) plus the served prediction the learner keeps
    for scoring. The model's own state is subtracted (a step that served 100 events)."""
    states: dict[str, EntityFeatures] = {}
    xs = []
    for e in events[:n]:
        if features == "default":
            xs.append(states.setdefault(e.entity, EntityFeatures(300.0)).transform(e))
        else:
            xs.append(dict(e.features))

    def build(k: int):
        step = ModelStep(StepConfig(model="lr", recipe="lr"))
        for i in range(k):
            e = events[i]
            event = Event.model_construct(event_id=f"e{i:09d}", entity=e.entity, ts=e.ts, features=e.features)
            step.on_item(i, FeaturedEvent(event, _fresh(xs[i]), 0, i))
        return step

    warm = _traced(lambda: build(100))
    return (_traced(lambda: build(n)) - warm) / (n - 100)


def arf_snapshot(events, labels, n: int) -> dict[str, float]:
    """An ``arf`` model step (River's ``ARFClassifier(seed=42)``, lifecycle off) after ``n``
    events and their labels: ``pickle.dumps`` bytes and ms (what ``ModelLogic.snapshot``
    does), ``copy.deepcopy`` ms (what Bytewax's ``stateful_map`` would do instead), and the
    ``rebuilt`` copy the snapshot serves afterwards."""
    step = ModelStep(StepConfig(model="arf", recipe="arf"))
    seq = 0
    j = 0
    for e in events[:n]:
        t = e.ts
        while j < n and labels[j].ts <= t:
            step.on_item(seq, SourcedLabel(labels[j], 0, j))
            seq += 1
            j += 1
        step.on_item(seq, FeaturedEvent(e, dict(e.features), 0, seq))
        seq += 1
    start = time.perf_counter()
    blob = pickle.dumps(step, protocol=pickle.HIGHEST_PROTOCOL)
    dumps = time.perf_counter() - start
    start = time.perf_counter()
    pickle.loads(blob)
    loads = time.perf_counter() - start
    start = time.perf_counter()
    rebuilt(step)
    rebuild = time.perf_counter() - start
    start = time.perf_counter()
    copy.deepcopy(step)
    deepcopy = time.perf_counter() - start
    return {
        "events": n,
        "learned": step.learner.n_learned,
        "bytes": len(blob),
        "dumps_ms": dumps * 1000,
        "loads_ms": loads * 1000,
        "rebuild_ms": rebuild * 1000,
        "deepcopy_ms": deepcopy * 1000,
    }


def rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


_REPLAY = """
import sys
from riverrun.streams.backtest.replay import replay
replay(sys.argv[1], sys.argv[2], sys.argv[3], models=[("lr", "lr")], features="default", plot=False)
"""


def rss_over_replay(n: int, every: int, budget_seconds: float, log=print) -> dict:
    """RSS of ``riverrun replay`` (features default, ``lr``) over ``n`` events, sampled from
    /proc every 0.2 s in a separate process; events done are read from the size of
    ``predictions.jsonl``. Stops at ``budget_seconds`` (then fewer events are reported).
    Returns samples [(events, rss MB)] about every ``every`` events, and start/end/max; "flat"
    and the min/max after warm-up are over the stream (until the last prediction is written),
    ``report_phase_max_mb`` is the peak while the replay writes its report afterwards. The
    temporary directory (stream and outputs) is deleted at the end."""

    tmp = Path(tempfile.mkdtemp(prefix="bench-rss-"))
    try:
        return _rss_run(tmp, n, every, budget_seconds, log)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # the stream and predictions: ~600 bytes per event


def _rss_run(tmp: Path, n: int, every: int, budget_seconds: float, log) -> dict:
    from benchmarks.benchstream import write_long_stream

    events_file, labels_file = tmp / "events.jsonl", tmp / "labels.jsonl"
    start = time.perf_counter()
    write_long_stream(events_file, labels_file, n)
    log(f"  wrote {n:,} events and labels in {time.perf_counter() - start:.0f} s")
    out = tmp / "out"
    proc = subprocess.Popen(
        [sys.executable, "-c", _REPLAY, str(events_file), str(labels_file), str(out)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    predictions = out / "predictions.jsonl"
    line_bytes: float | None = None
    samples: list[tuple[int, float]] = []
    raw: list[tuple[int, float]] = []
    sizes: list[int] = []  # predictions.jsonl's size at each raw sample
    started = time.monotonic()
    next_mark = 0
    while proc.poll() is None:
        rss = rss_kb(proc.pid)
        size = predictions.stat().st_size if predictions.exists() else 0
        if line_bytes is None and size > 1_000_000:
            with predictions.open("rb") as f:
                head = f.read(1_000_000)
            line_bytes = len(head) / max(1, head.count(b"\n"))
        done = int(size / line_bytes) if line_bytes else 0
        if rss is not None:
            raw.append((done, rss / 1024))
            sizes.append(size)
            if done >= next_mark:
                samples.append((done, rss / 1024))
                next_mark = done + every
        if time.monotonic() - started > budget_seconds:
            proc.terminate()
            proc.wait()
            break
        time.sleep(0.2)
    elapsed = time.monotonic() - started
    finished = proc.returncode == 0
    done = int(predictions.stat().st_size / line_bytes) if line_bytes else 0
    if finished:
        done = n
    values = [r for _, r in raw]
    # the stream phase ends with the last prediction written; then the replay writes its report
    final_size = predictions.stat().st_size if predictions.exists() else 0
    streaming = [(d, r) for (d, r), size in zip(raw, sizes, strict=True) if size < final_size] or raw
    base = [r for d, r in streaming if d >= done * 0.1] or values  # after warm-up (10% of the run)
    after = [r for (_, r), size in zip(raw, sizes, strict=True) if size >= final_size]
    return {
        "events": done,
        "finished": finished,
        "seconds": elapsed,
        "samples": samples,
        "start_mb": next((r for d, r in raw if d > 0), values[0]),  # first output (set up)
        "warm_mb": base[0],
        "end_mb": values[-1],
        "max_mb": max(values),
        "min_after_warm_mb": min(base),
        "max_after_warm_mb": max(base),
        "flat": max(base) <= base[0] * 1.10 and min(base) >= base[0] * 0.90,  # over the stream
        "report_phase_max_mb": max(after, default=None),  # after the last prediction: the report
    }


def report_rss(n: int, budget_seconds: float, samples: int = 20) -> None:
    """Run ``rss_over_replay`` and print its figures (``main`` and ``compare.py --only rss``)."""
    print(f"RSS of riverrun replay (lr, features default) over {n:,} events:", flush=True)
    r = rss_over_replay(n, max(1, n // samples), budget_seconds)
    print("  " + ", ".join(f"{d // 1000:,}k: {mb:.0f} MB" for d, mb in r["samples"]))
    done = "all" if r["finished"] else f"stopped at the {budget_seconds:.0f} s budget after"
    print(
        f"  {done} {r['events']:,} events in {r['seconds']:.0f} s; RSS start {r['start_mb']:.0f} MB, "
        f"after 10% {r['warm_mb']:.0f} MB, end {r['end_mb']:.0f} MB, max {r['max_mb']:.0f} MB; "
        f"stream after 10%: {r['min_after_warm_mb']:.0f}-{r['max_after_warm_mb']:.0f} MB, "
        f"flat within +-10%: {'yes' if r['flat'] else 'NO'}; writing the report after the stream: "
        f"max {r['report_phase_max_mb'] or 0:.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="RSS of riverrun replay over a long stream")
    parser.add_argument("--rss-events", type=int, default=5_000_000)
    parser.add_argument("--rss-budget", type=float, default=3000.0, help="seconds at most for the replay")
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args()
    report_rss(args.rss_events, args.rss_budget, args.samples)


if __name__ == "__main__":
    main()

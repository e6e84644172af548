"""riverrun against the plain River loop and its peers, side by side on the same stream.

    bash benchmarks/peers/setup.sh          # once: Quix Streams, Faust and py-spy venvs
    python -m benchmarks.compare [--events 100000] [--rounds 3] [--only throughput latency ...]

The stream: River's ``Hyperplane(seed=42, n_features=10)``, 1000 entities, events one second
of event time apart, each labelled 30 s of event time later (``benchmarks/benchstream.py``).
Every row learns ``lr`` (``StandardScaler() | LogisticRegression()``) on it:

- plain: ``model.predict_proba_one(x); model.learn_one(x, y)`` over pre-built dicts, labels
  not delayed (River alone, no I/O: the ceiling);
- replay: ``riverrun replay`` in process, JSON Lines files in, predictions.jsonl out,
  features ``default`` (as ``run``);
- live: ``riverrun run`` as a subprocess (recovery on, default 10 s snapshot interval, metrics
  on port 0, lifecycle off unless ``--policy``) reading the pre-published stream from fresh
  topics on the broker, predictions to Kafka;
- quix / faust: the same pipeline on Quix Streams 3.28.1 and faust-streaming 0.15.3, each in
  its own venv (``benchmarks/peers/``; what they do and do not do like riverrun is in
  ``peers/common.py``), on the same broker. Faust is stopped at ``--peer-timeout`` and its rate
  is over the predictions it made by then.

Kafka rows: "total" is events / (last prediction on the topic - process start), startup
included; "steady" is from the first prediction to the last. Prediction times are the
broker's append times (``LogAppendTime`` on the predictions topic). The ratio is the row's
events/s over plain's in the same round (higher is better); rounds are interleaved and the
medians are printed, because this 2-core machine is noisy: read the ratios.

Also: p50/p99 event -> prediction latency of ``riverrun run`` at a fixed publish rate (half its
median steady rate unless ``--latency-rate``): the prediction's Kafka timestamp minus the
event's (our producer's ``CreateTime``), the same to the prediction's ``served_at`` (the flow's
clock when the model served it), and to when a bare consumer of the events topic running
alongside got it (``kafka_floor.py``: the broker and the machine alone); pending-label memory
per pending event (tracemalloc); RSS over a long replay; the snapshot cost of an ``arf`` model
step; and, with ``--only profile``, a py-spy profile of ``riverrun run``.

Results (2 vCPU VM, Apache Kafka 4.4 on ZGC on the same 2 cores, quiet; 2026-12-06; the README's
Performance section has the rest):

    python -m benchmarks.compare --events 60000 --rounds 2 --peer-timeout 30 --only throughput

                      events/s  ratio   ratio range   startup s
    plain River         75,005   1.00
    replay              10,895   0.15   0.14-0.15
    live total           8,414   0.11   0.11-0.12           2.6
    live steady         13,158   0.18   0.17-0.18
    quix total           7,496   0.10   0.10-0.10           3.2
    quix steady         12,484   0.17   0.16-0.18
    faust total          1,385   0.02   0.02-0.02           4.7
    faust steady         1,653   0.02   0.02-0.03    (stopped at 30 s)

    python -m benchmarks.compare --events 130000 --only latency --latency-rate 6600 --latency-seconds 20
    event -> prediction on Kafka: p50 11 ms, p90 14 ms, p99 34 ms (48 ms in a second run);
    event -> served: p99 26 ms (35 ms); event -> a bare consumer: p99 9 ms, max 18 ms (19 ms);
    at 2,200 events/s: p99 15 ms, served 9 ms, bare consumer 9 ms
"""

from __future__ import annotations

import argparse
import collections
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks import benchstream, memory
from benchmarks import kafkabench as kb
from benchmarks.throughput import plain_loop
from benchmarks.throughput import replay_rate as _replay_rate
from riverrun.streams.kafka.producer import VerifiedProducer

ROWS = ("plain", "replay", "live", "quix", "faust")


def replay_rate(events_file: Path, labels_file: Path, n: int, recipe: str) -> float:
    return _replay_rate(events_file, labels_file, n, recipe, "default")


def kafka_run(name: str, events, labels, timeout: float, policy: bool) -> kb.Run:
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    settings, config = kb.fresh_config(tmp, policy=policy)
    kb.publish(settings, events, labels)
    if name == "live":
        pipeline = kb.riverrun_pipeline(config, tmp / "flow.log")
    else:
        pipeline = kb.peer_pipeline(name, settings, tmp / f"{name}.log")
    return kb.run_pipeline(name, pipeline, settings.topics.predictions, len(events), timeout)


def throughput(args, data, events, labels) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-files-"))
    events_file = benchstream.write_jsonl(tmp / "events.jsonl", events)
    labels_file = benchstream.write_jsonl(tmp / "labels.jsonl", labels)
    rows = [r for r in ROWS if r not in args.skip]
    rates: dict[str, list[float]] = collections.defaultdict(list)
    ratios: dict[str, list[float]] = collections.defaultdict(list)
    for r in range(args.rounds):
        plain = plain_loop(data, "lr")
        rates["plain"].append(plain)
        line = [f"round {r + 1}: plain {plain:,.0f}/s"]
        for name in rows[1:]:
            if name == "replay":
                rate = replay_rate(events_file, labels_file, len(events), "lr")
                rates[name].append(rate)
                ratios[name].append(rate / plain)
                line.append(f"replay {rate:,.0f}/s ({rate / plain:.2f}x)")
                continue
            timeout = args.live_timeout if name == "live" else args.peer_timeout
            try:
                run = kafka_run(name, events, labels, timeout, args.policy)
            except Exception as exc:  # a peer that cannot run is reported, not fatal
                line.append(f"{name} FAILED ({str(exc).splitlines()[0]})")
                continue
            for kind, rate in (("total", run.total_rate), ("steady", run.steady_rate)):
                rates[f"{name} {kind}"].append(rate)
                ratios[f"{name} {kind}"].append(rate / plain)
            rates[f"{name} startup s"].append(run.first - run.started)
            rates[f"{name} n"].append(run.n)
            part = "" if run.complete else f", {run.n:,} of {len(events):,} in {timeout:.0f} s"
            line.append(
                f"{name} {run.total_rate:,.0f}/s total, {run.steady_rate:,.0f}/s steady "
                f"({run.steady_rate / plain:.2f}x{part})"
            )
        print("  ".join(line), flush=True)

    print(
        f"\nlr, {len(events):,} events (Hyperplane, 10 features, 1000 entities, labels 30 s later), "
        f"{args.rounds} rounds, medians (min-max of the ratio):"
    )
    print(f"{'':<16}{'events/s':>10}{'ratio':>7}   {'ratio range':<13}{'startup s':>10}")
    print(f"{'plain River':<16}{statistics.median(rates['plain']):>10,.0f}{1.0:>7.2f}")
    for name in rows[1:]:
        for kind in ("",) if name == "replay" else (" total", " steady"):
            key = f"{name}{kind}"
            if not rates.get(key):
                continue
            rs = ratios[key]
            startup = rates.get(f"{name} startup s") if kind == " total" else None
            cell = f"{statistics.median(startup):>10.1f}" if startup else ""
            print(
                f"{key:<16}{statistics.median(rates[key]):>10,.0f}{statistics.median(rs):>7.2f}   "
                f"{min(rs):.2f}-{max(rs):.2f}    {cell}"
            )
        if rates.get(f"{name} n") and min(rates[f"{name} n"]) < len(events):
            print(f"{'':<16}({name}: {min(rates[f'{name} n']):,.0f} predictions at least per run)")
    return {k: statistics.median(v) for k, v in rates.items()}


def latency(args, events, labels, rate: float) -> None:
    """p50/p99 of (prediction's Kafka timestamp - event's) for ``riverrun run`` at ``rate``.

    Timed: the events of ``--latency-seconds`` at the rate, less the first second (the flow
    reaching its pace). One more second is published after them and not timed: the ordering step
    releases an event once every input has passed its event time, so the last events of a stream
    whose labels stop with it wait for the labels input to go idle (``max_wait_seconds``, 1 s):
    the end of a benchmark, not a steady state (a live label stream keeps coming)."""
    warm, second = 200, int(rate)
    n = min(len(events) - second, int(rate * args.latency_seconds))
    total = n + second
    tmp = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    settings, config = kb.fresh_config(tmp, policy=args.policy)
    flow = kb.riverrun_pipeline(config, tmp / "flow.log")
    flow.start()
    floor: kb.Pipeline | None = None
    producer = VerifiedProducer(settings.kafka.client_config())  # connected by the warm-up
    try:
        # warm-up: the flow is up and has predicted before the timed part is published
        cut = events[warm - 1].ts
        kb.publish(settings, events[:warm], [lb for lb in labels if lb.ts <= cut], producer=producer)
        if not kb.wait_for(settings.topics.predictions, warm, 120, flow):
            raise RuntimeError(f"no warm-up predictions:\n{flow.log_tail()}")
        floor, floor_out = kb.start_floor(settings.topics.events, tmp)
        rest = [lb for lb in labels[: total + 1000] if cut < lb.ts <= events[total - 1].ts]
        start = time.monotonic()
        kb.publish(settings, events[warm:total], rest, rate=rate, producer=producer)
        achieved = (total - warm) / (time.monotonic() - start)
        kb.wait_for(settings.topics.predictions, total, 120, flow)
    finally:
        flow.stop()
        if floor is not None:
            floor.stop()
    timed = {e.event_id for e in events[warm + second : n]}
    published = kb.published_events(settings.topics.events, total)
    pairs = kb.latencies(published, settings.topics.predictions, total, only=timed)
    floor_ms = kb.floor_latencies(published, floor_out, only=timed)
    print(
        f"\nlatency of riverrun run at {rate:,.0f} events/s offered ({achieved:,.0f}/s achieved by the "
        f"publisher, {len(pairs):,} events timed: the first and the last second at the rate not):"
    )
    for name, ms in (
        ("event -> prediction on Kafka", [t for t, _ in pairs]),
        ("event -> served", [s for _, s in pairs]),
        ("event -> a bare consumer", floor_ms),
    ):
        if len(ms) < 2:
            print(f"  {name:30} no figures ({len(ms)} timed events; the logs are in {tmp})")
            continue
        ms.sort()
        q = statistics.quantiles(ms, n=100)
        print(
            f"  {name:30} p50 {q[49]:5.1f} ms, p90 {q[89]:5.1f} ms, p99 {q[98]:6.1f} ms, max {ms[-1]:7.1f} ms"
        )


def memory_figures(args, events, labels) -> None:
    n = args.pending
    print(f"\npending-label memory per pending event (tracemalloc, {n:,} pending):")
    print(f"  LabelJoin alone, 10 raw features:             {memory.pending_join_bytes(events, n):,.0f} B")
    for features in ("none", "default"):
        b = memory.pending_step_bytes(events, n, features)
        width = "10" if features == "none" else "22"
        print(f"  ModelStep (join + served prediction), {width} features: {b:,.0f} B  (features {features})")
    snap = memory.arf_snapshot(events, labels, args.arf_events)
    print(
        f"\narf model step after {snap['events']:,} events ({snap['learned']:,} learned): snapshot "
        f"pickle {snap['bytes'] / 1e6:.1f} MB in {snap['dumps_ms']:.0f} ms "
        f"(loads {snap['loads_ms']:.0f} ms); "
        f"the rebuilt copy served after it {snap['rebuild_ms']:.0f} ms; copy.deepcopy would take "
        f"{snap['deepcopy_ms']:.0f} ms"
    )


def rss_figures(args) -> None:
    print()
    memory.report_rss(args.rss_events, args.rss_budget)


def profile(args, events, labels) -> None:
    """py-spy on ``riverrun run`` while it processes the pre-published stream."""
    py_spy = kb.VENVS / "tools" / "bin" / "py-spy"
    if not py_spy.exists():
        print(f"\nprofile: {py_spy} missing (bash benchmarks/peers/setup.sh tools)")
        return
    tmp = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    settings, config = kb.fresh_config(tmp, policy=args.policy)
    kb.publish(settings, events, labels)
    flow = kb.riverrun_pipeline(config, tmp / "flow.log")
    flow.start()
    out = tmp / "profile.txt"
    # wait for the first prediction, so startup (imports, broker checks) is not in the profile
    kb.wait_for(settings.topics.predictions, 1, 120, flow)
    spy = subprocess.Popen(
        [str(py_spy), "record", "--pid", str(flow.proc.pid), "--format", "raw", "-r", "200", "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        kb.wait_for(settings.topics.predictions, len(events), args.live_timeout, flow)
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(60)
        flow.stop()
    print(f"\nprofile of riverrun run over {len(events):,} events (py-spy, 200 Hz; raw stacks in {out}):")
    print_profile(out, args.top)


def print_profile(path: Path, top: int) -> None:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = [_short(f) for f in stack.split(";")]
        own[frames[-1]] += n
        for f in set(frames):
            inclusive[f] += n
    print(f"  {total:,} samples. Own time (the frame on top of the stack):")
    for f, n in own.most_common(top):
        print(f"    {100 * n / total:5.1f}%  {f}")
    print("  Inclusive time (the frame anywhere on the stack), riverrun and library frames:")
    shown = 0
    for f, n in inclusive.most_common():
        if n >= 0.95 * total or "runpy" in f or "<module>" in f:  # the entry points
            continue
        print(f"    {100 * n / total:5.1f}%  {f}")
        shown += 1
        if shown >= top:
            break


def _short(frame: str) -> str:
    """``func (path/to/site-packages/pkg/mod.py:12)`` -> ``func (pkg/mod.py)``: one line per
    function (py-spy's raw stacks name the line)."""
    name, _, where = frame.partition(" (")
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in where:
            where = where.split(marker, 1)[1]
    where = where.rstrip(")").rsplit(":", 1)[0]
    return f"{name} ({where})" if where else name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip", nargs="*", default=[], choices=ROWS[1:], help="rows not to run")
    parser.add_argument(
        "--only",
        nargs="*",
        default=["throughput", "latency", "memory", "rss"],
        choices=["throughput", "latency", "memory", "rss", "profile"],
    )
    parser.add_argument("--policy", action="store_true", help="live with the model lifecycle on")
    parser.add_argument("--live-timeout", type=float, default=300.0)
    parser.add_argument("--peer-timeout", type=float, default=120.0, help="per peer run, startup included")
    parser.add_argument("--latency-rate", type=float, default=0.0, help="events/s (0: half live steady)")
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--pending", type=int, default=10_000, help="pending events for the memory figure")
    parser.add_argument("--arf-events", type=int, default=3000)
    parser.add_argument("--rss-events", type=int, default=1_000_000)
    parser.add_argument("--rss-budget", type=float, default=300.0, help="seconds at most for the RSS run")
    parser.add_argument("--top", type=int, default=15, help="profile lines")
    args = parser.parse_args()

    print(f"stream: {args.events:,} events; broker {kb.servers()}", flush=True)
    data, events, labels = benchstream.make_stream(args.events)
    medians: dict[str, float] = {}
    if "throughput" in args.only:
        medians = throughput(args, data, events, labels)
    if "latency" in args.only:
        rate = args.latency_rate
        if not rate:
            if "live steady" not in medians:
                medians = throughput(argparse.Namespace(**{**vars(args), "rounds": 1}), data, events, labels)
            rate = round(medians["live steady"] / 2, -2)
        latency(args, events, labels, rate)
    if "memory" in args.only:
        memory_figures(args, events, labels)
    if "rss" in args.only:
        rss_figures(args)
    if "profile" in args.only:
        profile(args, events, labels)


if __name__ == "__main__":
    main()

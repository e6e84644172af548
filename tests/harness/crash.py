"""The crash harness: SIGKILL `riverrun run` again and again on a real broker, then check the promises.

The same seeded stream (events keyed by entity, each carrying a per-entity sequence number in its
id, ``<entity>-<seq>``; one label each, ``--label-delay`` seconds of event time later) goes to two
fresh sets of topics. One flow runs it uninterrupted (the reference); the other is SIGKILLed
``--kills`` times at seeded random points of its progress, half of them while a snapshot is being
written (the kill waits until a recovery partition's SQLite WAL grows), and restarted each time
on the same recovery directory. When every event has a prediction, both flows are stopped
gracefully (SIGTERM: a final snapshot) and the model step's last snapshot is read back from each
recovery directory. Checked:

* every ``(entity, seq)`` has a prediction (0 lost);
* every duplicate prediction equals its first copy (same event_id, model, model_version, y_pred,
  proba, ts; only ``served_at`` differs), so consumers can dedupe;
* the final model state of both runs is identical: the whole ``ModelStep`` object graph (models,
  metrics, detectors, lifecycle, join), and the predictions on a fixed holdout.

With ``--processes 2`` the flow is a two-process Bytewax cluster (``riverrun run -i K -a ...``);
each kill hits process 0, process 1 or both (seeded), and a survivor that does not exit by itself
is killed too before the restart.

The command is ``scripts/crash_harness.py`` (its docstring has the measured runs).
"""

from __future__ import annotations

import contextlib
import math
import pickle
import random
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from riverrun.schemas import Event, Label
from riverrun.streams.backtest.synth import drifting_agrawal, to_records
from riverrun.streams.flow import recovery
from riverrun.streams.kafka.producer import publish_stream
from riverrun.streams.settings import Settings
from tests.harness.flows import FlowCluster, wait_running
from tests.harness.kafka import PredictionReader, fresh_settings


def say(message: str) -> None:
    """Progress output (stderr, flushed, timestamped)."""
    print(f"[crash-harness {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- the stream --------------------------------------------------------------------------------


def make_stream(
    n: int, seed: int = 42, n_entities: int = 200, label_delay: float = 30.0
) -> tuple[list[Event], list[Label]]:
    """``n`` drifting Agrawal events and their labels; event ids are ``<entity>-<seq>`` with
    ``seq`` = 0, 1, 2, ... per entity (a gap is a lost event, a repeat a duplicate)."""
    events, labels = to_records(
        drifting_agrawal(n, seed=seed),
        label_delay=timedelta(seconds=label_delay),
        n_entities=n_entities,
        seed=seed,
    )
    seqs: Counter[str] = Counter()
    rename: dict[str, str] = {}
    renamed = []
    for e in events:
        new_id = f"{e.entity}-{seqs[e.entity]:07d}"
        seqs[e.entity] += 1
        rename[e.event_id] = new_id
        renamed.append(e.model_copy(update={"event_id": new_id}))
    return renamed, [lb.model_copy(update={"event_id": rename[lb.event_id]}) for lb in labels]


def write_config(
    servers: str, workdir: Path, name: str, policy: bool, snapshot_interval: float = 1.0
) -> tuple[Settings, Path]:
    """A config with fresh topics in ``workdir/name`` (recovery in ``state``, with ``policy``
    the lifecycle on and checkpoints signed into ``registry``); the topics are created. Exact
    event-time order (no idle-input release), so both runs see the same sequence."""
    return fresh_settings(
        servers,
        workdir / name,
        policy,
        snapshot_interval=snapshot_interval,
        prefix=f"crash-{name}-",
        features="default",
        max_wait_ms=600000,
    )


# -- snapshots ---------------------------------------------------------------------------------


def wal_sizes(state_dir: Path) -> dict[str, int]:
    """Sizes of the recovery partitions' SQLite write-ahead logs (they grow while a snapshot is
    written)."""
    out = {}
    for wal in state_dir.glob("part-*.sqlite3-wal"):
        with contextlib.suppress(FileNotFoundError):
            out[wal.name] = wal.stat().st_size
    return out


def wait_for_snapshot_write(state_dir: Path, timeout: float = 5.0) -> bool:
    """Block until a recovery partition's WAL grows (a snapshot is being written); False on
    timeout."""
    before = wal_sizes(state_dir)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = wal_sizes(state_dir)
        if any(now.get(k, 0) > before.get(k, 0) for k in now):
            return True
        before = now
        time.sleep(0.002)
    return False


def resume_epoch(state_dir: Path) -> int:
    """The epoch a restart of the flow would resume from (0: none yet); see
    ``riverrun.streams.flow.recovery.resume_epoch``."""
    return recovery.resume_epoch(state_dir) or 0


def latest_snapshot(state_dir: Path, step: str = "model") -> dict[str, Any]:
    """The snapshot of each key of stateful step ``step`` that a restart would resume from, in a
    Bytewax recovery directory, unpickled: ``{state_key: state}`` (for the model step,
    ``{model: ModelStep}``).

    Read this only from a stopped flow's directory, which you trust: it holds pickles."""
    snapshots = recovery.resumed_snapshots(state_dir, step, resume_epoch(state_dir))
    return {key: recovery.loads(s) if isinstance(s, bytes) else s for key, s in snapshots.items()}


# -- comparing final states --------------------------------------------------------------------

_SKIP_ATTRS = {"_model"}  # a checkpoint's model cache, rebuilt from its blob (not in snapshots)


def state_diff(a: Any, b: Any, path: str = "step", limit: int = 10) -> list[str]:
    """Where two object graphs differ (empty: identical). Walks dicts, sequences, sets, numpy
    arrays and objects' attributes; floats must be equal exactly (NaN equals NaN)."""
    diffs: list[str] = []
    seen: set[tuple[int, int]] = set()
    keep: list[Any] = []  # temporaries stay alive, so their ids are not reused within ``seen``
    stack: list[tuple[Any, Any, str]] = [(a, b, path)]
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        np = None
    while stack and len(diffs) < limit:
        x, y, p = stack.pop()
        if x is y:
            continue
        if type(x) is not type(y):
            diffs.append(f"{p}: type {type(x).__name__} != {type(y).__name__}")
            continue
        if isinstance(x, float):
            if not (x == y or (math.isnan(x) and math.isnan(y))):
                diffs.append(f"{p}: {x!r} != {y!r}")
            continue
        if isinstance(x, bytes) and x != y and x[:1] == y[:1] == b"\x80":
            # pickles (checkpoint blobs): equal objects may pickle to different bytes (memo
            # order after a rebuild), so compare what they hold
            pair_ = (pickle.loads(x), pickle.loads(y))
            keep.append(pair_)
            stack.append((*pair_, f"{p}<unpickled>"))
            continue
        if isinstance(x, int | str | bytes | bool | type(None) | complex):
            if x != y:
                diffs.append(f"{p}: {str(x)[:80]!r} != {str(y)[:80]!r}")
            continue
        pair = (id(x), id(y))
        if pair in seen:
            continue
        seen.add(pair)
        if np is not None and isinstance(x, np.ndarray):
            if x.shape != y.shape or not np.array_equal(x, y, equal_nan=x.dtype.kind == "f"):
                diffs.append(f"{p}: arrays differ")
            continue
        if np is not None and isinstance(x, np.generic):
            if not (x == y or (np.isnan(x) and np.isnan(y))):
                diffs.append(f"{p}: {x!r} != {y!r}")
            continue
        if isinstance(x, dict):
            if set(x) != set(y):
                diffs.append(f"{p}: keys differ: {sorted(map(str, set(x) ^ set(y)))[:5]}")
                continue
            stack.extend((x[k], y[k], f"{p}[{k!r}]") for k in x)
            continue
        if isinstance(x, list | tuple | deque):
            if len(x) != len(y):
                diffs.append(f"{p}: length {len(x)} != {len(y)}")
                continue
            stack.extend((u, v, f"{p}[{i}]") for i, (u, v) in enumerate(zip(x, y, strict=True)))
            continue
        if isinstance(x, set | frozenset):
            if x != y:
                diffs.append(f"{p}: sets differ")
            continue
        if callable(x) and not hasattr(x, "__dict__"):
            if getattr(x, "__qualname__", x) != getattr(y, "__qualname__", y):
                diffs.append(f"{p}: {x!r} != {y!r}")
            continue
        attrs_x, attrs_y = _attrs(x), _attrs(y)
        if attrs_x is None:
            try:  # opaque (e.g. River's Rust ADWIN): compare the state it pickles
                rx, ry = x.__reduce_ex__(4), y.__reduce_ex__(4)
            except TypeError:
                rx = ry = None
            if rx is not None and rx[0] == ry[0]:
                lx, ly = list(rx[1:]), list(ry[1:])
                keep.append((lx, ly))
                stack.append((lx, ly, f"{p}<reduce>"))
            elif x != y:
                diffs.append(f"{p}: {x!r} != {y!r}")
            continue
        keys = (set(attrs_x) | set(attrs_y)) - _SKIP_ATTRS
        for k in keys:
            if k not in attrs_x or k not in attrs_y:
                diffs.append(f"{p}.{k}: only on one side")
            else:
                stack.append((attrs_x[k], attrs_y[k], f"{p}.{k}"))
    return diffs


def _attrs(obj: Any) -> dict[str, Any] | None:
    """An object's attributes (``__dict__`` and slots), or None for opaque values."""
    out: dict[str, Any] = {}
    if hasattr(obj, "__dict__"):
        out.update(vars(obj))
    for cls in type(obj).__mro__:
        for slot in getattr(cls, "__slots__", ()):
            if slot not in ("__dict__", "__weakref__") and hasattr(obj, slot):
                out[slot] = getattr(obj, slot)
    if not out and not hasattr(obj, "__dict__") and not hasattr(type(obj), "__slots__"):
        return None
    return out


def holdout(n: int = 500, seed: int = 7) -> list[dict]:
    """Fixed feature dicts the final models predict on (another seed than the stream)."""
    events, _ = to_records(drifting_agrawal(n, seed=seed), label_delay=timedelta(seconds=1))
    return [dict(e.features) for e in events]


def holdout_predictions(step: Any, xs: list[dict]) -> list[dict]:
    """The serving model's and every challenger's probabilities on ``xs``."""
    learners = [step.lifecycle.champion, *step.lifecycle.challengers.values()]
    return [learner.model.predict_proba_one(x) for learner in learners for x in xs]


def fingerprint(step: Any) -> dict[str, Any]:
    """What a reader compares at a glance: counts, version, metrics, lifecycle."""
    lc = step.lifecycle
    return {
        "n_learned": step.learner.n_learned,
        "n_predicted": step.learner.n_predicted,
        "version": lc.version,
        "metrics": step.learner.metrics(),
        "n_checkpoints": lc.n_checkpoints,
        "checkpoints": [f.checkpoint.id for f in lc.checkpoints],
        "paused": lc.paused,
        "challengers": sorted(lc.challengers),
    }


# -- one harness run ---------------------------------------------------------------------------


@dataclass
class Outcome:
    """A harness run's figures; ``ok`` when every promise held."""

    events: int
    kills: list[dict] = field(default_factory=list)
    lost: int = 0
    messages: int = 0
    duplicates: int = 0
    mismatched_duplicates: int = 0
    state_diffs: list[str] = field(default_factory=list)
    holdout_max_diff: float = 0.0
    fingerprint: dict = field(default_factory=dict)
    reference_fingerprint: dict = field(default_factory=dict)
    stop_codes: list[int] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return (
            self.lost == 0
            and self.mismatched_duplicates == 0
            and not self.state_diffs
            and self.holdout_max_diff == 0.0
            and all(c == 0 for c in self.stop_codes)
        )

    def summary(self) -> dict[str, Any]:
        during = sum(1 for k in self.kills if k.get("during_snapshot"))
        return {
            "ok": self.ok,
            "events": self.events,
            "kills": len(self.kills),
            "kills_during_snapshot_write": during,
            "lost": self.lost,
            "prediction_messages": self.messages,
            "duplicates": self.duplicates,
            "mismatched_duplicates": self.mismatched_duplicates,
            "final_state_identical": not self.state_diffs and self.holdout_max_diff == 0.0,
            "state_diffs": self.state_diffs,
            "holdout_max_abs_diff": self.holdout_max_diff,
            "final": self.fingerprint,
            "stop_exit_codes": self.stop_codes,
            "seconds": round(self.seconds, 1),
            "kill_log": self.kills,
        }


def input_offsets(state_dir: Path) -> dict[str, int]:
    """The committed input positions in a recovery directory: ``{"<step>/<partition>": next
    offset}`` for the events and labels inputs."""
    out: dict[str, int] = {}
    for step in ("events_in", "labels_in"):
        for key, offset in latest_snapshot(state_dir, step).items():
            out[f"{step}/{key}"] = offset
    return out


def _run_to_end(
    state_dir: Path, flow: FlowCluster, n: int, n_labels: int, timeout: float, reader: PredictionReader
) -> list[int]:
    """Read until every event has a prediction and the flow's committed snapshot has read all
    of both inputs, then stop the flow gracefully (a final snapshot)."""
    if not reader.read_until(lambda p: len(p.first) >= n, timeout, flow):
        raise RuntimeError(f"not every event predicted within {timeout:.0f}s:\n{flow.log_tail()}")
    wait_running(flow, timeout)
    deadline = time.monotonic() + timeout
    while sorted(input_offsets(state_dir).values()) != sorted([n, n_labels]):
        if time.monotonic() > deadline or not flow.alive():
            raise RuntimeError(f"the flow did not read all input:\n{flow.log_tail()}")
        reader.poll(0.2)
    codes = flow.stop()
    reader.poll(1.0)  # what was published during the drain
    return codes


def run_harness(
    servers: str,
    workdir: Path,
    n_events: int = 200_000,
    kills: int = 10,
    seed: int = 1,
    policy: bool = True,
    processes: int = 1,
    snapshot_share: float = 0.5,
    label_delay: float = 30.0,
    timeout: float = 1800.0,
) -> Outcome:
    """The whole harness (see the module docstring); raises on a broken run, returns figures."""
    t0 = time.monotonic()
    rng = random.Random(seed)
    workdir.mkdir(parents=True, exist_ok=True)
    say(f"stream: {n_events} events + labels (seed {seed}), per-entity sequence numbers")
    events, labels = make_stream(n_events, seed=seed, label_delay=label_delay)
    ref_settings, ref_config = write_config(servers, workdir, "reference", policy)
    crash_settings, crash_config = write_config(servers, workdir, "crashed", policy)
    for s in (ref_settings, crash_settings):
        t = time.monotonic()
        publish_stream(s, events, labels)
        say(f"published to {s.topics.events!r}/{s.topics.labels!r} in {time.monotonic() - t:.1f}s")

    # The reference: uninterrupted, in a thread alongside the crashed one.
    ref_flow = FlowCluster(ref_config, workdir / "reference" / "flow.log", processes).start()
    ref_reader = PredictionReader(servers, ref_settings.topics.predictions)
    ref_result: dict[str, Any] = {}

    def reference() -> None:
        try:
            ref_result["codes"] = _run_to_end(
                workdir / "reference" / "state", ref_flow, n_events, len(labels), timeout, ref_reader
            )
        except BaseException as exc:  # reported by the main thread
            ref_result["error"] = exc

    ref_thread = threading.Thread(target=reference, name="reference", daemon=True)
    ref_thread.start()

    flow = FlowCluster(crash_config, workdir / "crashed" / "flow.log", processes).start()
    reader = PredictionReader(servers, crash_settings.topics.predictions)
    state_dir = workdir / "crashed" / "state"
    outcome = Outcome(events=n_events)
    # Kill points: seeded fractions of the stream, spread over its middle.
    points = sorted(rng.uniform(0.05, 0.95) for _ in range(kills))
    for k, fraction in enumerate(points):
        target = int(fraction * n_events)
        if not reader.read_until(lambda p, t=target: len(p.first) >= t, timeout, flow):
            raise RuntimeError(f"no progress to {target} predictions:\n{flow.log_tail()}")
        during = False
        if rng.random() < snapshot_share:
            during = wait_for_snapshot_write(state_dir)
        else:
            time.sleep(rng.uniform(0.0, 1.0))  # somewhere inside an epoch
        which = [0] if processes == 1 else rng.choice([[0], [1], list(range(processes))])
        seen = len(reader.predictions.first)
        info = flow.kill(which)
        info.update(
            n=k + 1,
            at_predictions=seen,
            during_snapshot=during,
            at=round(time.monotonic() - t0, 1),
        )
        outcome.kills.append(info)
        say(
            f"kill {k + 1}/{kills}: SIGKILL process(es) {which} at {seen}/{n_events} predicted"
            + (" while a snapshot was being written" if during else "")
            + (f"; survivors killed {info['survivors_killed']}" if info["survivors_killed"] else "")
        )
        flow.start()
    say("kills done; waiting for every event to be predicted")
    outcome.stop_codes = _run_to_end(state_dir, flow, n_events, len(labels), timeout, reader)
    ref_thread.join(timeout)
    if "error" in ref_result:
        raise RuntimeError(f"reference run failed: {ref_result['error']}")
    outcome.stop_codes += ref_result["codes"]

    # 1. every (entity, seq) predicted
    predicted = reader.predictions.first
    outcome.lost = sum(1 for e in events if e.event_id not in predicted)
    outcome.messages = reader.predictions.n_messages
    outcome.duplicates = reader.predictions.n_duplicates
    outcome.mismatched_duplicates = len(reader.predictions.mismatches)
    # the crashed run's first copies equal the reference's predictions, too
    ref_first = ref_reader.predictions.first
    differing = [i for i, p in predicted.items() if ref_first.get(i) != p]
    if differing:
        outcome.state_diffs.append(
            f"{len(differing)} predictions differ from the reference, e.g. {differing[:3]}"
        )
    # 2. final state
    crashed = latest_snapshot(state_dir)
    ref = latest_snapshot(workdir / "reference" / "state")
    if set(crashed) != set(ref) or not crashed:
        outcome.state_diffs.append(f"model keys differ: {sorted(crashed)} vs {sorted(ref)}")
    for model in sorted(set(crashed) & set(ref)):
        # The two flows read their own topics by design; the step names them in dead letters.
        topics = {k: getattr(crashed[model].config, k, None) for k in ("event_topic", "label_topic")}
        ref[model].config = replace(ref[model].config, **topics)
        outcome.state_diffs += state_diff(crashed[model], ref[model], path=f"{model}")
        xs = holdout()
        got, want = holdout_predictions(crashed[model], xs), holdout_predictions(ref[model], xs)
        outcome.holdout_max_diff = max(
            outcome.holdout_max_diff,
            max(abs(g.get(c, 0.0) - w.get(c, 0.0)) for g, w in zip(got, want, strict=True) for c in {*g, *w}),
        )
        outcome.fingerprint[model] = fingerprint(crashed[model])
        outcome.reference_fingerprint[model] = fingerprint(ref[model])
    reader.close()
    ref_reader.close()
    outcome.seconds = time.monotonic() - t0
    return outcome

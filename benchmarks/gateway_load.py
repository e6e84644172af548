"""Loopback load test of ``riverrun gateway`` on the real broker: latency, throughput, 0 lost.

    KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 REDIS_URL=redis://127.0.0.1:6379/0 \\
        python -m benchmarks.gateway_load [--requests 10000] [--concurrency 32] [--batch 1] \\
            [--producer confluent|faust|both] [--predictions 20000]

For each producer, a gateway subprocess is started on a free loopback port with topics of its
own; an aiohttp client keeps ``--concurrency`` requests in flight until ``--requests`` POST
/events (each one event, or an array of ``--batch``) have been answered (the first 2% are
warm-up, excluded from the latency figures). Then the events topic is read back from the start:
every event whose POST was answered 202 must be there (``lost`` = acknowledged but missing;
``duplicates`` = extra copies). ``--predictions N`` then publishes N predictions to the
predictions topic and times the gateway's Faust agent storing them in Redis. The gateway runs
with token auth (its default): a fresh ingest,read token, sent with every request. Everything (broker,
gateway, client) shares this machine's cores: the figures are an order of magnitude, the ratios
between producers in one run are the comparison. Bounded: a fixed number of requests, each with
a 30 s timeout, and every wait has a deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from confluent_kafka import Consumer, Producer, TopicPartition

from benchmarks import kafkabench as kb
from riverrun.streams.kafka.admin import create_topics
from riverrun.streams.serving.auth import grant_line
from riverrun.streams.settings import load_settings
from tests.harness.ports import free_port

ROOT = Path(__file__).resolve().parents[1]


class GatewayProcess:
    """A gateway subprocess on fresh topics, a fresh Redis key prefix and a token of its own
    (``headers`` authorize a client)."""

    def __init__(self, servers: str, producer: str, workdir: Path):
        tag = f"load-{producer}-{uuid.uuid4().hex[:8]}"
        self.port = free_port()
        kinds = ("events", "labels", "predictions", "model_events", "dead_letter", "control")
        self.topics = {k: f"{tag}-{k.replace('_', '-')}" for k in kinds}
        config = workdir / f"{tag}.toml"
        lines = ["[kafka]", f'bootstrap_servers = "{servers}"', "[topics]"]
        lines += [f'{k} = "{v}"' for k, v in self.topics.items()]
        lines += ["[gateway]", f"port = {self.port}", f'app_id = "{tag}"', f'producer = "{producer}"']
        token, grant = grant_line(["ingest", "read"], "gateway-load")
        self.headers = {"Authorization": f"Bearer {token}"}
        lines += ['predictions_from = "earliest"', f'tokens = "{grant}"']
        lines += ["[online_store]", f'key_prefix = "{tag}"']
        config.write_text("\n".join(lines) + "\n")
        self.prefix = tag
        create_topics(load_settings(config))
        self.log = (workdir / f"{tag}.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "riverrun.streams.cli", "gateway", "-c", str(config)],
            cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.url = f"http://127.0.0.1:{self.port}"

    async def ready(self, session: aiohttp.ClientSession, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"gateway exited: see {self.log.name}")
            try:
                async with session.get(self.url + "/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise SystemExit(f"gateway not healthy within {timeout:.0f}s: see {self.log.name}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()


def event_body(i: int, batch: int) -> tuple[bytes, list[str]]:
    now = datetime.now(UTC).isoformat()
    records = [
        {"event_id": f"ev-{i}-{k}", "entity": f"u{(i * batch + k) % 1000}", "ts": now,
         "features": {f"f{j}": (i * 7 + j) % 100 / 10 for j in range(10)}}
        for k in range(batch)
    ]  # fmt: skip
    ids = [r["event_id"] for r in records]
    return (json.dumps(records[0]) if batch == 1 else json.dumps(records)).encode(), ids


async def load(url: str, requests: int, concurrency: int, batch: int, headers: dict[str, str]) -> dict:
    """POST ``requests`` times with ``concurrency`` in flight (with ``headers``: the token);
    latencies, statuses, acked ids."""
    bodies = [event_body(i, batch) for i in range(requests)]
    latencies: list[float | None] = [None] * requests
    statuses: dict[str, int] = {}
    acked: list[str] = []
    next_index = 0
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector, headers=headers) as session:

        async def worker() -> None:
            nonlocal next_index
            while next_index < requests:
                i = next_index
                next_index += 1
                body, ids = bodies[i]
                started = time.perf_counter()
                try:
                    async with session.post(url + "/events", data=body) as response:
                        await response.read()
                        status = str(response.status)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    status = type(exc).__name__
                latencies[i] = time.perf_counter() - started
                statuses[status] = statuses.get(status, 0) + 1
                if status == "202":
                    acked.extend(ids)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return {"latencies": latencies, "statuses": statuses, "acked": acked, "seconds": seconds}


def read_back(servers: str, topic: str, expected: set[str], timeout: float = 60.0) -> tuple[int, int]:
    """(lost, duplicates) among ``expected`` event ids, reading the whole topic."""
    consumer = Consumer({"bootstrap.servers": servers, "group.id": f"load-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})  # fmt: skip
    consumer.assign([TopicPartition(topic, 0, 0)])
    seen: dict[str, int] = {}
    deadline = time.monotonic() + timeout
    while len(expected - seen.keys()) and time.monotonic() < deadline:
        for msg in consumer.consume(5000, timeout=0.5):
            if msg.error() is None:
                event_id = json.loads(msg.value())["event_id"]
                seen[event_id] = seen.get(event_id, 0) + 1
    consumer.close()
    return len(expected - seen.keys()), sum(n - 1 for n in seen.values())


async def agent_rate(gw: GatewayProcess, servers: str, n: int, session: aiohttp.ClientSession) -> float:
    """Predictions per second the Faust agent stores in Redis (published up front)."""
    producer = Producer({"bootstrap.servers": servers, "linger.ms": 5})
    now = datetime.now(UTC).isoformat()
    for i in range(n):
        value = {"event_id": f"p{i}", "entity": f"u{i % 1000}", "model": "lr", "model_version": 1,
                 "y_pred": True, "proba": {"true": 0.7, "false": 0.3},
                 "ts": now, "served_at": now}  # fmt: skip
        while True:
            try:
                producer.produce(
                    gw.topics["predictions"], json.dumps(value).encode(), f"u{i % 1000}".encode()
                )
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(30) == 0
    started = time.perf_counter()
    deadline = started + max(120.0, n / 200)
    while time.perf_counter() < deadline:
        async with session.get(gw.url + "/healthz") as response:
            stored = (await response.json())["counters"]["predictions_stored"]
        if stored >= n:
            return n / (time.perf_counter() - started)
        await asyncio.sleep(0.05)
    raise SystemExit(f"the agent stored only {stored} of {n} predictions in time")


def pct(sorted_ms: list[float], q: float) -> float:
    return sorted_ms[min(len(sorted_ms) - 1, int(q * len(sorted_ms)))]


async def run_one(args, producer: str, servers: str, workdir: Path) -> dict:
    gw = GatewayProcess(servers, producer, workdir)
    try:
        async with aiohttp.ClientSession(headers=gw.headers) as session:
            await gw.ready(session)
        cpu_before = kb.cpu_seconds(gw.proc.pid)
        result = await load(gw.url, args.requests, args.concurrency, args.batch, gw.headers)
        cpu = kb.cpu_seconds(gw.proc.pid) - cpu_before
        warm = max(1, args.requests // 50)
        ms = sorted(1000 * x for x in result["latencies"][warm:] if x is not None)
        lost, dups = read_back(servers, gw.topics["events"], set(result["acked"]))
        out = {
            "producer": producer,
            "requests": args.requests,
            "events": args.requests * args.batch,
            "p50_ms": statistics.median(ms),
            "p90_ms": pct(ms, 0.90),
            "p99_ms": pct(ms, 0.99),
            "max_ms": ms[-1],
            "requests_per_s": args.requests / result["seconds"],
            "events_per_s": args.requests * args.batch / result["seconds"],
            "errors": sum(n for s, n in result["statuses"].items() if s != "202"),
            "statuses": result["statuses"],
            "acked_events": len(result["acked"]),
            "lost": lost,
            "duplicates": dups,
            "gateway_cpu_us_per_request": 1e6 * cpu / args.requests,
        }
        if args.predictions:
            async with aiohttp.ClientSession(headers=gw.headers) as session:
                out["agent_predictions_per_s"] = await agent_rate(gw, servers, args.predictions, session)
        return out
    finally:
        gw.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--batch", type=int, default=1, help="events per request (a JSON array when > 1)")
    parser.add_argument("--producer", choices=["confluent", "faust", "both"], default="both")
    parser.add_argument("--predictions", type=int, default=20_000, help="agent test size (0: skip)")
    args = parser.parse_args()
    servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not servers:
        raise SystemExit("set KAFKA_BOOTSTRAP_SERVERS (bash infra/services.sh start) and REDIS_URL")
    producers = ["confluent", "faust"] if args.producer == "both" else [args.producer]
    print(f"gateway load: {args.requests} POST /events x {args.batch} event(s), concurrency "
          f"{args.concurrency}, broker {servers}, {os.cpu_count()} cores shared by all")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for producer in producers:
            r = asyncio.run(run_one(args, producer, servers, Path(tmp)))
            print(
                f"  {producer:>9}: p50 {r['p50_ms']:.1f} ms  p90 {r['p90_ms']:.1f} ms  "
                f"p99 {r['p99_ms']:.1f} ms  max {r['max_ms']:.0f} ms  {r['requests_per_s']:,.0f} req/s "
                f"({r['events_per_s']:,.0f} events/s)  errors {r['errors']} {r['statuses']}  "
                f"acknowledged {r['acked_events']}  lost {r['lost']}  duplicates {r['duplicates']}  "
                f"gateway CPU {r['gateway_cpu_us_per_request']:,.0f} us/request"
            )
            if "agent_predictions_per_s" in r:
                print(f"  {'':>9}  agent: {args.predictions} predictions -> Redis at "
                      f"{r['agent_predictions_per_s']:,.0f}/s")  # fmt: skip
            if r["lost"]:
                raise SystemExit(f"{r['lost']} acknowledged events are missing from the topic")


if __name__ == "__main__":
    main()

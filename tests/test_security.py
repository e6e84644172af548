"""Security against real services: Kafka with SASL/SCRAM (plain and over TLS), Redis with an ACL
user, a password and TLS, and secrets that never reach a log, an error or a report.

The services are our own: a second Kafka 4.4 KRaft broker (the cached jars of
``infra/kafka/start.sh``) and a second ``redis-server``, on free ports with their data under
pytest's tmp directory, stopped when the module ends. The shared broker and Redis that other
tests use are never touched. Without Java or the cached Kafka jars the Kafka tests skip (CI has
both: ``infra/services.sh`` fetches them); without ``redis-server`` or ``openssl`` the Redis
tests skip locally and fail under ``CI``.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from riverrun.errors import ConfigError, RegistryUnavailable, RiverrunError
from riverrun.registry import RedisStore, open_registry
from riverrun.streams.kafka.admin import check_broker
from riverrun.streams.settings import load_settings
from tests.harness import ROOT
from tests.harness.flows import Flow
from tests.harness.kafka import REGISTRY_KEY, TopicReader, fresh_settings
from tests.harness.ports import free_port

CACHE = Path(os.environ.get("RIVERRUN_CACHE", Path.home() / ".cache" / "riverrun"))
KAFKA_LIBS = Path(os.environ.get("KAFKA_HOME", CACHE / "kafka-4.4.0")) / "libs"
LOG4J = ROOT / "infra" / "kafka" / "log4j2.properties"
SASL_USER = "riverrun"
# Passwords go into the StorageTool's `[name=...,password=...]` syntax: no ',' or ']'.
SASL_PASSWORD = f"Kf-{uuid.uuid4().hex[:16]}"
BROKER_PASSWORD = f"Br-{uuid.uuid4().hex[:16]}"
REDIS_ADMIN = f"Ra-{uuid.uuid4().hex[:16]}"
REDIS_PASSWORD = f"Rp-{uuid.uuid4().hex[:12]}:@/"  # needs quoting in a URL
REDIS_QUOTED = REDIS_PASSWORD.replace(":", "%3A").replace("@", "%40").replace("/", "%2F")
SECRETS = (SASL_PASSWORD, BROKER_PASSWORD, REDIS_ADMIN, REDIS_PASSWORD, REDIS_QUOTED, REGISTRY_KEY)


def _missing_tool(name: str) -> None:
    """Skip locally, fail in CI: CI must provide every tool these tests need."""
    if os.environ.get("CI"):
        pytest.fail(f"{name} is missing; CI must provide it")
    pytest.skip(f"{name} is missing")


def _run(cmd: list[str], log: Path) -> None:
    with log.open("ab") as out:
        done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, timeout=600, check=False)
    if done.returncode != 0:
        pytest.fail(f"{cmd[0]} failed ({done.returncode}):\n{log.read_text(errors='replace')[-3000:]}")


# -- a second Kafka broker: SASL_PLAINTEXT and SASL_SSL, SCRAM-SHA-256 -------------------------------


def _broker_properties(workdir: Path, ports: dict[str, int], keystore: Path) -> str:
    """A single-node KRaft broker whose only client listeners authenticate with SCRAM-SHA-256;
    the controller listener is loopback-only, as in infra/kafka/start.sh."""
    jaas = "org.apache.kafka.common.security.scram.ScramLoginModule required"
    return f"""
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{ports["controller"]}
listeners=SASL_PLAINTEXT://127.0.0.1:{ports["sasl"]},SASL_SSL://127.0.0.1:{ports["ssl"]},\
CONTROLLER://127.0.0.1:{ports["controller"]}
advertised.listeners=SASL_PLAINTEXT://127.0.0.1:{ports["sasl"]},SASL_SSL://127.0.0.1:{ports["ssl"]}
controller.listener.names=CONTROLLER
inter.broker.listener.name=SASL_PLAINTEXT
listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-256
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-256
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config={jaas} \
username="admin" password="{BROKER_PASSWORD}";
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config={jaas};
ssl.keystore.type=PKCS12
ssl.keystore.location={keystore}
ssl.keystore.password={BROKER_PASSWORD}
ssl.key.password={BROKER_PASSWORD}
log.dirs={workdir / "data"}
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
"""


def _java(*args: str) -> list[str]:
    return ["java", f"-Dlog4j2.configurationFile={LOG4J}", "-cp", f"{KAFKA_LIBS}/*", *args]


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A Kafka 4.4 broker with SCRAM users ``admin`` (inter-broker) and ``riverrun``, created at
    format time; SASL_PLAINTEXT and SASL_SSL listeners (self-signed certificate for 127.0.0.1,
    its PEM in ``ca``). Stopped (SIGTERM, then SIGKILL) when the module ends."""
    if shutil.which("java") is None or shutil.which("keytool") is None:
        pytest.skip("no Java: the SASL broker runs on the JDK (CI has it)")
    if not list(KAFKA_LIBS.glob("kafka_2.13-*.jar")):
        pytest.skip(f"no cached Kafka jars in {KAFKA_LIBS}: run `bash infra/kafka/start.sh` once")
    workdir = tmp_path_factory.mktemp("kafka-sasl")
    ports = {"sasl": free_port(), "ssl": free_port(), "controller": free_port()}
    keystore, ca = workdir / "broker.p12", workdir / "ca.pem"
    log = workdir / "setup.log"
    store = ["-keystore", str(keystore), "-storetype", "PKCS12", "-storepass", BROKER_PASSWORD]
    _run(
        ["keytool", "-genkeypair", "-alias", "broker", "-keyalg", "RSA", "-keysize", "2048",
         "-validity", "2", "-dname", "CN=127.0.0.1", "-ext", "SAN=ip:127.0.0.1,dns:localhost",
         "-keypass", BROKER_PASSWORD, *store],
        log,
    )  # fmt: skip
    _run(["keytool", "-exportcert", "-rfc", "-alias", "broker", "-file", str(ca), *store], log)
    config = workdir / "server.properties"
    config.write_text(_broker_properties(workdir, ports, keystore))
    cluster_id = "-"
    while cluster_id.startswith("-"):  # the tool's argument parser takes "-..." for an option
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    _run(
        _java("kafka.tools.StorageTool", "format", "--config", str(config), "--cluster-id", cluster_id,
              "--add-scram", f"SCRAM-SHA-256=[name=admin,password={BROKER_PASSWORD}]",
              "--add-scram", f"SCRAM-SHA-256=[name={SASL_USER},password={SASL_PASSWORD}]"),
        log,
    )  # fmt: skip
    broker_log = workdir / "kafka.log"
    with broker_log.open("wb") as out:
        command = _java("kafka.Kafka", str(config))
        proc = subprocess.Popen(
            [command[0], "-Xms256m", "-Xmx256m", "-XX:+UseG1GC", "-Djava.awt.headless=true", *command[1:]],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            start_new_session=True,
        )
    broker = {
        "sasl": f"127.0.0.1:{ports['sasl']}",
        "ssl": f"127.0.0.1:{ports['ssl']}",
        "ca": str(ca),
        "log": broker_log,
    }
    try:
        probe = load_settings(kafka=client_settings(broker, "SASL_PLAINTEXT", SASL_PASSWORD))
        deadline = time.monotonic() + 300  # a guard against a hang, not a requirement
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the SASL broker exited ({proc.returncode}):\n{_tail(broker_log)}")
            try:
                check_broker(probe, timeout=1.0)
                break
            except RiverrunError as exc:
                if time.monotonic() > deadline:
                    pytest.fail(f"the SASL broker did not answer: {exc}\n{_tail(broker_log)}")
        yield broker
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _tail(path: Path, n: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:])


def client_settings(broker: dict[str, Any], protocol: str, password: str | None) -> dict[str, Any]:
    """[kafka] settings for ``protocol`` (SASL_PLAINTEXT or SASL_SSL) as user ``riverrun``."""
    kafka: dict[str, Any] = {
        "bootstrap_servers": broker["sasl" if protocol == "SASL_PLAINTEXT" else "ssl"],
        "security_protocol": protocol,
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_username": SASL_USER,
    }
    if protocol == "SASL_SSL":
        kafka["ssl_ca_location"] = broker["ca"]
    if password is not None:
        kafka["sasl_password"] = password
    return kafka


# -- a second Redis: requirepass, an ACL user limited to riverrun:*, and TLS --------------------------


@pytest.fixture(scope="module")
def secure_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """``redis-server`` with the ``default`` user behind a password, an ACL user ``riverrun``
    (keys ``riverrun:*`` only, no dangerous commands), a plain port and a TLS port (self-signed
    certificate for 127.0.0.1; clients need no certificate of their own)."""
    binary, openssl = shutil.which("redis-server"), shutil.which("openssl")
    if binary is None:
        _missing_tool("redis-server")
    if openssl is None:
        _missing_tool("openssl")
    workdir = tmp_path_factory.mktemp("redis-secure")
    cert, key = workdir / "redis.pem", workdir / "redis.key"
    _run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        workdir / "openssl.log",
    )  # fmt: skip
    port, tls_port = free_port(), free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--tls-port", str(tls_port), "--bind", "127.0.0.1",
         "--tls-cert-file", str(cert), "--tls-key-file", str(key), "--tls-ca-cert-file", str(cert),
         "--tls-auth-clients", "no", "--save", "", "--appendonly", "no", "--dir", str(workdir),
         "--requirepass", REDIS_ADMIN,
         "--user", SASL_USER, "on", f">{REDIS_PASSWORD}", "~riverrun:*", "+@all", "-@dangerous"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        probe = redis.Redis(port=port, password=REDIS_ADMIN, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 120
        while True:
            try:
                probe.ping()
                break
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the secured redis-server did not start (exit {proc.poll()})")
                time.sleep(0.05)
        yield {
            "url": f"redis://{SASL_USER}:{REDIS_QUOTED}@127.0.0.1:{port}/0",
            "tls_url": f"rediss://{SASL_USER}:{REDIS_QUOTED}@127.0.0.1:{tls_port}/0?ssl_ca_certs={cert}",
            "tls_no_ca": f"rediss://{SASL_USER}:{REDIS_QUOTED}@127.0.0.1:{tls_port}/0",
            "wrong": f"redis://{SASL_USER}:not-{REDIS_QUOTED}@127.0.0.1:{port}/0",
            "admin_url": f"redis://:{REDIS_ADMIN}@127.0.0.1:{port}/0",
        }
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# -- helpers -------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _own_services_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shared services' variables (KAFKA_BOOTSTRAP_SERVERS beats a config file's
    bootstrap_servers) must not point these tests at the shared broker."""
    for name in list(os.environ):
        if name.startswith("RIVERRUN_") or name in ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL"):
            monkeypatch.delenv(name)


def cli(args: list[str], env: dict[str, str], log: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """``riverrun ARGS`` with only ``env`` for riverrun's variables; stdout and stderr are also
    appended to ``log`` so the secret scan sees them."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("RIVERRUN_", "KAFKA_", "REDIS_"))}
    done = subprocess.run(
        [sys.executable, "-m", "riverrun.streams.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**base, **env},
        timeout=timeout,
        check=False,
    )
    with log.open("a") as out:
        out.write(f"$ riverrun {' '.join(args)}\n{done.stdout}{done.stderr}")
    return done


def _ids(messages: list) -> set[str]:
    return {json.loads(m.value())["event_id"] for m in messages}


def assert_no_secret_in(directory: Path) -> int:
    """Every file under ``directory`` (logs, reports, recovery snapshots) is free of every
    secret, raw or URL-quoted; returns how many files were scanned."""
    files = [p for p in directory.rglob("*") if p.is_file()]
    for path in files:
        data = path.read_bytes()
        for secret in SECRETS:
            assert secret.encode() not in data, f"a secret is in {path}"
    return len(files)


# -- tests ---------------------------------------------------------------------------------------------


@pytest.mark.kafka
@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_flow_over_sasl_predicts_every_event_and_leaks_no_secret(
    sasl_broker: dict[str, Any], secure_redis: dict[str, Any], tmp_path: Path, protocol: str
) -> None:
    """The whole loop as an operator runs it: topics created, a stream produced with
    `riverrun produce`, `riverrun run` predicting and checkpointing into the ACL-protected Redis,
    `riverrun models list` reading them back; the passwords and the registry key come from the
    environment, and none of them appears in any output, log, report or snapshot."""
    kafka = client_settings(sasl_broker, protocol, None)
    file_lines = {k: v for k, v in kafka.items() if k != "bootstrap_servers"}
    settings, config = fresh_settings(
        kafka["bootstrap_servers"],
        tmp_path,
        policy=True,
        kafka=file_lines,
        secrets={"kafka": {"sasl_password": SASL_PASSWORD}},
        features="default",
        max_wait_ms=600_000,
    )
    env = {
        "RIVERRUN_KAFKA__SASL_PASSWORD": SASL_PASSWORD,
        "RIVERRUN_REGISTRY__URL": secure_redis["url"],
        "RIVERRUN_REGISTRY__KEY": REGISTRY_KEY,
    }
    logs = tmp_path / "cli.log"
    stream = tmp_path / "stream"
    n = 2500  # enough labels for the lifecycle's first checkpoint (every 2,000)
    generated = cli(["generate", "--out", str(stream), "-n", str(n), "--label-delay", "30"], {}, logs)
    assert generated.returncode == 0, generated.stderr
    produced = cli(
        ["--log-level", "INFO", "produce", "-c", str(config), "--no-progress",
         "--events", str(stream / "events.jsonl"), "--labels", str(stream / "labels.jsonl")],
        env, logs,
    )  # fmt: skip
    assert produced.returncode == 0, produced.stderr
    assert f"produced {n} events" in produced.stdout
    event_ids = {json.loads(line)["event_id"] for line in (stream / "events.jsonl").open()}

    admin = redis.Redis.from_url(secure_redis["admin_url"])
    stale = admin.keys("riverrun:model:lr:*")  # the other protocol's run checkpointed there too
    if stale:
        admin.delete(*stale)
    registry = open_registry(secure_redis["url"], REGISTRY_KEY.encode())
    flow = Flow(config, tmp_path / "flow.log", env=env).start()
    predictions = TopicReader(
        kafka["bootstrap_servers"], settings.topics.predictions, settings.kafka.client_config()
    )
    try:
        predictions.read_until(lambda m: _ids(m) >= event_ids, 600, flow)
        deadline = time.monotonic() + 300
        while not registry.versions("lr") and time.monotonic() < deadline and flow.alive():
            time.sleep(0.2)  # the checkpoint at 2,000 labels is written by the flow
        assert flow.alive(), flow.log_tail()
    finally:
        stopped = flow.kill(signal.SIGTERM, timeout=300)
        predictions.close()
    assert stopped == 0, flow.log_tail()
    assert _ids(predictions.messages) == event_ids
    versions = registry.versions("lr")
    assert versions, "no checkpoint reached the ACL-protected Redis"
    listed = cli(["models", "list", "lr", "-c", str(config)], env, logs)
    assert listed.returncode == 0, listed.stderr
    assert str(versions[0].version) in listed.stdout
    assert "Traceback" not in (tmp_path / "flow.log").read_text()
    assert assert_no_secret_in(tmp_path) >= 3


@pytest.mark.kafka
def test_wrong_credentials_fail_fast_with_an_actionable_message(
    sasl_broker: dict[str, Any], secure_redis: dict[str, Any], tmp_path: Path
) -> None:
    """`riverrun run` refuses to start, exit 2, one line that says what to fix and no traceback:
    a wrong SASL password, a TLS broker whose CA is not configured, a wrong Redis password for
    the registry. None of the passwords, right or wrong, is printed."""
    kafka = client_settings(sasl_broker, "SASL_PLAINTEXT", None)
    file_lines = {k: v for k, v in kafka.items() if k != "bootstrap_servers"}
    _, config = fresh_settings(
        kafka["bootstrap_servers"],
        tmp_path,
        policy=True,
        kafka=file_lines,
        secrets={"kafka": {"sasl_password": SASL_PASSWORD}},
    )
    ssl_config = tmp_path / "no-ca.toml"
    ssl_config.write_text(
        config.read_text()
        .replace(kafka["bootstrap_servers"], sasl_broker["ssl"])
        .replace('"SASL_PLAINTEXT"', '"SASL_SSL"')
    )
    good = {
        "RIVERRUN_KAFKA__SASL_PASSWORD": SASL_PASSWORD,
        "RIVERRUN_REGISTRY__URL": secure_redis["url"],
        "RIVERRUN_REGISTRY__KEY": REGISTRY_KEY,
    }
    wrong_sasl = f"wrong-{SASL_PASSWORD}"
    cases = {
        "wrong SASL password": (
            config,
            {"RIVERRUN_KAFKA__SASL_PASSWORD": wrong_sasl},
            ["refused the credentials of user 'riverrun'", "RIVERRUN_KAFKA__SASL_PASSWORD"],
        ),
        "TLS without the CA": (ssl_config, {}, ["TLS handshake", "ssl_ca_location"]),
        "wrong Redis password": (
            config,
            {"RIVERRUN_REGISTRY__URL": secure_redis["wrong"]},
            ["Redis at redis://riverrun:***@", "refused the credentials"],
        ),
    }
    logs = tmp_path / "cli.log"
    for case, (path, env, phrases) in cases.items():
        done = cli(["run", "-c", str(path)], {**good, **env}, logs, timeout=300)
        output = done.stdout + done.stderr
        assert done.returncode == 2, (case, output)
        assert "Traceback" not in output, (case, output)
        assert output.startswith("riverrun run: error: "), (case, output)
        for phrase in phrases:
            assert phrase in output, (case, phrase, output)
        assert wrong_sasl not in output and "not-" + REDIS_QUOTED not in output, case
    assert assert_no_secret_in(tmp_path) >= 2


def test_redis_registry_with_acl_user_password_and_tls(secure_redis: dict[str, Any]) -> None:
    """`redis://user:pass@` and `rediss://user:pass@...?ssl_ca_certs=CA` both save and load
    signed checkpoints; a wrong password and an unverifiable TLS certificate are typed
    registry errors whose messages (and the stores' repr) never hold the password."""
    prefix = f"riverrun:t{uuid.uuid4().hex[:8]}"
    for url in (secure_redis["url"], secure_redis["tls_url"]):
        registry = open_registry(url, REGISTRY_KEY.encode(), prefix=prefix, attempts=1, timeout=30)
        meta = registry.save(
            "m", {"w": 1.0}, recipe="lr", parent=None, n_learned=0, metrics={}, event_time=(None, None),
            reason="test",
        )  # fmt: skip
        assert registry.load("m", meta.version) == {"w": 1.0}
        assert not any(s in repr(registry) for s in SECRETS)
    failures = {
        "wrong password": (secure_redis["wrong"], "refused the credentials"),
        "TLS, CA unknown": (secure_redis["tls_no_ca"], "certificate verify failed"),
    }
    for case, (url, phrase) in failures.items():
        store = RedisStore(url, prefix=prefix, attempts=1, timeout=30)
        with pytest.raises(RegistryUnavailable, match=phrase) as err:
            store.list_versions("m")
        assert not any(s in str(err.value) or s in repr(store) for s in SECRETS), case
        assert err.value.__cause__ is None and err.value.__suppress_context__, case
    admin = redis.Redis.from_url(secure_redis["admin_url"])
    admin.delete(*admin.keys(f"{prefix}:*"))


def test_settings_hide_every_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """SASL password, registry key and the password inside the registry URL are masked in the
    settings' repr and str, which is what logs and error reports show."""
    monkeypatch.setenv("RIVERRUN_KAFKA__SASL_PASSWORD", SASL_PASSWORD)
    monkeypatch.setenv("RIVERRUN_REGISTRY__KEY", REGISTRY_KEY)
    monkeypatch.setenv("RIVERRUN_REGISTRY__URL", f"rediss://riverrun:{REDIS_QUOTED}@redis.internal:6380/0")
    extra = {"ssl.key.password": BROKER_PASSWORD, "sasl.oauthbearer.client.secret": REDIS_ADMIN}
    extra["linger.ms"] = "5"
    settings = load_settings(kafka={"extra": extra})
    for text in (repr(settings), str(settings), repr(settings.registry), str(settings.kafka)):
        assert not any(s in text for s in SECRETS)
    assert "'linger.ms': '5'" in repr(settings.kafka)
    assert settings.kafka.client_config()["ssl.key.password"] == BROKER_PASSWORD
    assert "rediss://riverrun:***@redis.internal:6380/0" in repr(settings)
    assert settings.registry.url.endswith(f"{REDIS_QUOTED}@redis.internal:6380/0")  # usable as is
    assert settings.kafka.client_config()["sasl.password"] == SASL_PASSWORD
    with pytest.raises(ConfigError) as err:
        load_settings(kafka={"security_protocol": f"SASL_{SASL_PASSWORD}"})
    assert SASL_PASSWORD not in str(err.value)


def test_replay_with_secrets_in_the_environment_leaks_none(tmp_path: Path) -> None:
    """`riverrun replay -c CONFIG --policy default` reads the same settings as `run` (secrets
    included); its output, report, dead letters and plot hold none of them."""
    config = tmp_path / "riverrun.toml"
    config.write_text(
        '[kafka]\nsecurity_protocol = "SASL_SSL"\nsasl_mechanism = "SCRAM-SHA-256"\n'
        'sasl_username = "riverrun"\n[flow.policy]\ncheckpoint_every = 500\n'
    )
    env = {
        "RIVERRUN_KAFKA__SASL_PASSWORD": SASL_PASSWORD,
        "RIVERRUN_REGISTRY__KEY": REGISTRY_KEY,
        "RIVERRUN_REGISTRY__URL": f"redis://riverrun:{REDIS_QUOTED}@127.0.0.1:1/0",
    }
    logs, stream, out = tmp_path / "cli.log", tmp_path / "stream", tmp_path / "replay"
    assert cli(["generate", "--out", str(stream), "-n", "1500"], {}, logs).returncode == 0
    done = cli(
        ["--log-level", "DEBUG", "replay", "-c", str(config), "--policy", "default", "--no-progress",
         "--events", str(stream / "events.jsonl"), "--labels", str(stream / "labels.jsonl"),
         "--out", str(out)],
        env, logs,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (out / "report.json").is_file() and (out / "predictions.jsonl").is_file()
    assert assert_no_secret_in(tmp_path) >= 5

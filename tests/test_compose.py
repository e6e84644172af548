"""docker-compose.yml is consistent with the code and the rest of infra/: every RIVERRUN_* name is
a real setting and every riverrun service's environment loads, ports agree with the settings and
Prometheus' scrape targets, Prometheus and Grafana mount files that exist where their configs
expect them, and depends_on names real services. No Docker engine needed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from riverrun.streams.settings import Settings, TopicSettings, load_settings
from tests.harness import ROOT

COMPOSE = ROOT / "docker-compose.yml"
PROMETHEUS = ROOT / "infra" / "prometheus" / "prometheus.yml"
DATASOURCES = ROOT / "infra" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
PROVIDER = ROOT / "infra" / "grafana" / "provisioning" / "dashboards" / "riverrun.yml"
CONVENTIONAL = {"KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL"}  # read by settings._conventional_env


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def riverrun_services() -> dict[str, dict[str, Any]]:
    """The services that run our image (built from the Dockerfile)."""
    return {name: s for name, s in services().items() if s.get("build") == "."}


def container_port(service: dict[str, Any], port: int) -> int:
    """The container port published as 127.0.0.1:<port>."""
    mapped = {int(p.split(":")[1]): int(p.split(":")[2]) for p in service.get("ports", [])}
    return mapped[port]


def setting_exists(env_name: str) -> bool:
    """RIVERRUN_A__B -> Settings.a.b, walking nested sections as pydantic-settings does."""
    model: type[BaseModel] = Settings
    parts = env_name.removeprefix("RIVERRUN_").lower().split("__")
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        elif i != len(parts) - 1:
            return False
    return isinstance(model, type) and parts[-1] in model.model_fields


def loaded(service: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings a riverrun service starts with: its environment only (host values unset)."""
    for name in list(os.environ):
        if name.startswith("RIVERRUN_") or name in CONVENTIONAL:
            monkeypatch.delenv(name)
    for name, value in (services()[service].get("environment") or {}).items():
        if value is not None:
            monkeypatch.setenv(name, str(value))
    return load_settings()


def test_the_whole_system_is_there() -> None:
    expected = {"kafka", "redis", "topics", "riverrun", "gateway", "producer", "prometheus", "grafana"}
    assert expected <= set(services())
    assert services()["kafka"]["image"].startswith("apache/kafka:")
    assert services()["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft
    commands = {name: s["command"] for name, s in riverrun_services().items()}
    assert commands["riverrun"][-1] == "run" and commands["gateway"][-1] == "gateway"
    assert commands["producer"][0] == "produce" and commands["topics"] == ["topics", "create"]


def test_every_riverrun_variable_is_a_setting() -> None:
    for name, service in services().items():
        for env in service.get("environment") or {}:
            if env.startswith("RIVERRUN_"):
                assert setting_exists(env), f"{name}: {env} is no field of riverrun's Settings"
    assert setting_exists("RIVERRUN_GATEWAY__PORT") and not setting_exists("RIVERRUN_GATEWAY__PROT")
    assert not setting_exists("RIVERRUN_METRICS")  # a section, not a value


def test_commands_parse_and_the_broker_is_the_advertised_one() -> None:
    from riverrun.streams.cli import build_parser

    broker = services()["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"].removeprefix("PLAINTEXT://")
    for name, service in riverrun_services().items():
        command = service["command"]
        build_parser().parse_args([*command, *(["-c", "x.toml"] if "run" in command else [])])
        assert service["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == broker, name


@pytest.mark.parametrize("service", ["topics", "riverrun", "gateway", "producer"])
def test_riverrun_services_load_their_settings(service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    s = loaded(service, monkeypatch)
    assert s.kafka.bootstrap_servers == "kafka:9092"
    assert s.redis_url.get_secret_value() == "redis://redis:6379/0"
    assert s.topics == TopicSettings(), "topic names must be the same for every service (the defaults)"


def test_flow_metrics_port_is_scraped(monkeypatch: pytest.MonkeyPatch) -> None:
    s = loaded("riverrun", monkeypatch)
    assert s.metrics.enabled and s.metrics.address == "0.0.0.0"
    assert s.metrics.port == type(s.metrics)().port == 9464, "keep the documented default port"
    assert container_port(services()["riverrun"], 9464) == s.metrics.port
    (job,) = [
        j
        for j in yaml.safe_load(PROMETHEUS.read_text())["scrape_configs"]
        if j["job_name"] == "riverrun-flow"
    ]
    assert job["static_configs"][0]["targets"] == [f"riverrun:{s.metrics.port}"]
    assert s.recovery.directory == Path("/state")
    assert "riverrun-state:/state" in services()["riverrun"]["volumes"]


def test_gateway_port(monkeypatch: pytest.MonkeyPatch) -> None:
    s = loaded("gateway", monkeypatch)
    assert s.gateway.address == "0.0.0.0"
    assert s.gateway.port == type(s.gateway)().port
    assert container_port(services()["gateway"], s.gateway.port) == s.gateway.port


def test_prometheus_and_grafana_mounts() -> None:
    mounts: dict[str, dict[str, Path]] = {}
    for name, service in services().items():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith("."):
                path = (ROOT / source).resolve()
                assert path.exists(), f"{name} mounts {source}, which is not in the repo"
                mounts.setdefault(name, {})[target] = path
            else:
                assert source in compose()["volumes"], f"{name}: named volume {source} is not declared"
    prom = mounts["prometheus"]
    assert prom["/etc/prometheus/prometheus.yml"] == PROMETHEUS.resolve()
    assert "--config.file=/etc/prometheus/prometheus.yml" in services()["prometheus"]["command"]
    for rule_file in yaml.safe_load(PROMETHEUS.read_text())["rule_files"]:  # relative to the config
        assert prom[f"/etc/prometheus/{rule_file}"] == (PROMETHEUS.parent / rule_file).resolve()
    graf = mounts["grafana"]
    assert graf["/etc/grafana/provisioning"] == DATASOURCES.parents[1]
    dashboards = yaml.safe_load(PROVIDER.read_text())["providers"][0]["options"]["path"]
    assert (graf[dashboards] / "riverrun.json").is_file()
    (datasource,) = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    assert datasource["url"] == f"http://prometheus:{container_port(services()['prometheus'], 9090)}"


def test_depends_on_real_services() -> None:
    for name, service in services().items():
        deps = service.get("depends_on", {})
        started = {"condition": "service_started"}
        conditions = deps if isinstance(deps, dict) else {target: started for target in deps}
        for target, spec in conditions.items():
            assert target in services() and target != name, f"{name} depends on unknown {target}"
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in services()[target], f"{name} waits for {target}'s healthcheck"
            if spec["condition"] == "service_completed_successfully":
                assert "restart" not in services()[target], f"{target} must run once for {name}"


def test_docker_compose_config() -> None:
    """The compose client's own check, where it exists (it needs no engine)."""
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True).returncode:
        pytest.skip("no `docker compose` client here; the structural tests above still ran")
    result = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr

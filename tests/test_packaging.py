"""The deployment files agree with the code: compose is valid YAML naming our services and
settings, the example config loads, and served predictions are valid Prediction records."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import yaml

from riverrun.schemas import Prediction
from riverrun.streams.core.items import ServedPrediction
from riverrun.streams.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]


def test_example_config_loads_and_matches_the_defaults():
    loaded = load_settings(ROOT / "riverrun.example.toml")
    assert loaded.model_dump() == Settings().model_dump()


def test_compose_file_is_consistent():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"kafka", "redis", "topics", "riverrun", "producer"} <= set(services)
    env = services["riverrun"]["environment"]
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == services["kafka"]["environment"][
        "KAFKA_ADVERTISED_LISTENERS"
    ].removeprefix("PLAINTEXT://")
    for service in ("topics", "riverrun", "producer"):
        assert services[service]["build"] == "."
        command = services[service]["command"]
        # every command is a real subcommand of the CLI
        from riverrun.streams.cli import build_parser

        parser = build_parser()
        parser.parse_args([*command, *(["-c", "x.toml"] if "run" in command else [])])
    # every RIVERRUN_ variable names a real setting
    for key in env:
        if key.startswith("RIVERRUN_"):
            section, _, field = key.removeprefix("RIVERRUN_").lower().partition("__")
            assert field in Settings.model_fields[section].annotation.model_fields


def test_served_prediction_json_is_a_valid_prediction():
    now = datetime(2024, 1, 1, tzinfo=UTC)
    served = ServedPrediction("e1", "u1", "lr", 3, True, {"true": 0.7, "false": 0.3}, now, now)
    parsed = Prediction.model_validate_json(served.to_json())
    assert parsed.model_dump() == {
        "event_id": "e1",
        "entity": "u1",
        "model": "lr",
        "model_version": 3,
        "y_pred": True,
        "proba": {"true": 0.7, "false": 0.3},
        "ts": now,
        "served_at": now,
    }
    assert set(json.loads(served.to_json())) == set(Prediction.model_fields)

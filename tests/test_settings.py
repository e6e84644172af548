"""load_settings: TOML, environment precedence, errors that name the key, secrets kept secret."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
from pydantic import SecretStr

from riverrun.errors import ConfigError
from riverrun.streams.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[1]

TOML = """
workers = 3
redis_url = "redis://cache:6379/2"

[kafka]
bootstrap_servers = "file-broker:9092"
security_protocol = "SASL_SSL"
sasl_mechanism = "SCRAM-SHA-512"
sasl_username = "riverrun"
sasl_password = "hunter2-very-secret"
extra = { "client.id" = "rr-test" }

[topics]
events = "ev-in"
partitions = 6

[flow]
features = "default"
label_ttl_seconds = 60
feature_window_seconds = 30

[[flow.models]]
name = "champion"
recipe = "hat"

[[flow.models]]
name = "challenger"
recipe = "lr"

[recovery]
enabled = false
directory = "/tmp/rr-state"
"""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """The suite may run with KAFKA_BOOTSTRAP_SERVERS & co. set (CI): start from none."""
    for name in list(os.environ):
        if name.startswith("RIVERRUN_") or name in ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL"):
            monkeypatch.delenv(name)


def write(tmp_path: Path, text: str, name: str = "riverrun.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_defaults_without_file():
    s = load_settings()
    assert isinstance(s, Settings)
    assert s.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert s.topics.events == "events" and s.topics.dead_letter == "dead-letter"
    assert s.flow.features == "default"
    assert [(m.name, m.recipe) for m in s.flow.models] == [("lr", "lr")]
    assert s.workers == 1 and s.recovery.enabled


def test_toml_values(tmp_path):
    s = load_settings(write(tmp_path, TOML))
    assert s.workers == 3
    assert s.kafka.bootstrap_servers == "file-broker:9092"
    assert s.kafka.security_protocol == "SASL_SSL"
    assert s.kafka.sasl_username == "riverrun"
    assert s.kafka.sasl_password.get_secret_value() == "hunter2-very-secret"
    assert s.topics.events == "ev-in" and s.topics.labels == "labels"  # unset keys keep defaults
    assert s.topics.partitions == 6
    assert s.flow.label_ttl_seconds == 60.0 and s.flow.feature_window_seconds == 30.0
    assert [(m.name, m.recipe) for m in s.flow.models] == [("champion", "hat"), ("challenger", "lr")]
    assert s.recovery.enabled is False and s.recovery.directory == Path("/tmp/rr-state")
    assert s.redis_url.get_secret_value() == "redis://cache:6379/2"
    conf = s.kafka.client_config()
    assert conf["bootstrap.servers"] == "file-broker:9092"
    assert conf["sasl.password"] == "hunter2-very-secret"
    assert conf["sasl.mechanism"] == "SCRAM-SHA-512"
    assert conf["client.id"] == "rr-test"


def test_example_config_loads():
    s = load_settings(REPO / "riverrun.example.toml")
    assert s.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert [m.recipe for m in s.flow.models] == ["lr"]


def test_example_config_is_the_defaults():
    assert load_settings(REPO / "riverrun.example.toml").model_dump() == Settings().model_dump()


def test_environment_overrides_toml(tmp_path, monkeypatch):
    path = write(tmp_path, TOML)
    monkeypatch.setenv("RIVERRUN_FLOW__FEATURES", "none")
    monkeypatch.setenv("RIVERRUN_FLOW__LABEL_TTL_SECONDS", "5")
    monkeypatch.setenv("RIVERRUN_WORKERS", "8")
    monkeypatch.setenv("RIVERRUN_KAFKA__SASL_PASSWORD", "from-env")
    monkeypatch.setenv("RIVERRUN_FLOW__MODELS", '[{"name": "solo", "recipe": "arf"}]')
    s = load_settings(path)
    assert s.flow.features == "none"
    assert s.flow.label_ttl_seconds == 5.0
    assert s.workers == 8
    assert s.kafka.sasl_password.get_secret_value() == "from-env"
    assert [(m.name, m.recipe) for m in s.flow.models] == [("solo", "arf")]
    # what the environment does not set still comes from the file (deep merge, not replace)
    assert s.flow.feature_window_seconds == 30.0
    assert s.kafka.bootstrap_servers == "file-broker:9092"
    assert s.kafka.sasl_username == "riverrun"
    assert s.topics.events == "ev-in"


def test_kafka_bootstrap_servers_is_honoured(tmp_path, monkeypatch):
    path = write(tmp_path, TOML)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "conventional:9093")
    assert load_settings(path).kafka.bootstrap_servers == "conventional:9093"
    assert load_settings().kafka.bootstrap_servers == "conventional:9093"
    # our own variable wins over the conventional one
    monkeypatch.setenv("RIVERRUN_KAFKA__BOOTSTRAP_SERVERS", "ours:9094")
    assert load_settings(path).kafka.bootstrap_servers == "ours:9094"


def test_redis_url_is_honoured(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://elsewhere:1/0")
    assert load_settings().redis_url.get_secret_value() == "redis://elsewhere:1/0"


def test_explicit_overrides(tmp_path):
    s = load_settings(write(tmp_path, TOML), workers=5, flow={"features": "none"})
    assert s.workers == 5 and s.flow.features == "none"
    assert s.flow.label_ttl_seconds == 60.0  # merged, not replaced


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("bogus = 1\n", "bogus"),
        ("[flow]\nfeaturez = 'none'\n", "flow.featurez"),
        ("[kafka]\nbootstrap = 'x:1'\n", "kafka.bootstrap"),
        ("[nosection]\na = 1\n", "nosection"),
        ("[[flow.models]]\nname = 'a'\nrecipe = 'lr'\nweight = 2\n", "flow.models.0.weight"),
    ],
)
def test_unknown_keys_raise_config_error_naming_the_key(tmp_path, text, key):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert key in message
    assert "unknown" in message and "Extra inputs" not in message
    assert str(path) in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[kafka]\nbootstrap_server = 'x:1'\n",
            "unknown key `bootstrap_server` in [kafka]; did you mean `bootstrap_servers`?",
        ),
        ("[flow]\nfeaturez = 'none'\n", "unknown key `featurez` in [flow]; did you mean `features`?"),
        ("[flow.policy]\ncooldwn = 1\n", "unknown key `cooldwn` in [flow.policy]; did you mean `cooldown`?"),
        (
            "[kafak]\nbootstrap_servers = 'x:1'\n",
            "unknown section `kafak` at the top level; did you mean `kafka`?",
        ),
        (
            "[[flow.models]]\nname = 'a'\nrecipy = 'lr'\n",
            "unknown key `recipy` in [flow.models]; did you mean `recipe`?",
        ),
        ("wrokers = 2\n", "unknown key `wrokers` at the top level; did you mean `workers`?"),
        ("[kafka]\nzzz = 1\n", "unknown key `zzz` in [kafka]; known: bootstrap_servers, security_protocol"),
    ],
)
def test_unknown_key_suggests_the_closest_known_one(tmp_path, text, expected):
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text))
    assert expected in str(info.value)


def test_unknown_key_from_the_environment_suggests_too(monkeypatch):
    monkeypatch.setenv("RIVERRUN_KAFKA__BOOTSTRAP_SERVER", "x:1")
    with pytest.raises(ConfigError, match=r"did you mean `bootstrap_servers`\?"):
        load_settings()


def test_bootstrap_origin_says_when_the_environment_overrides_the_file(tmp_path, monkeypatch):
    path = write(tmp_path, "[kafka]\nbootstrap_servers = 'file:9092'\n")
    origin = load_settings(path).bootstrap_origin()
    assert (origin.servers, origin.source) == ("file:9092", f"[kafka] bootstrap_servers in {path}")
    assert origin.note() is None
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "env:9092")
    origin = load_settings(path).bootstrap_origin()
    assert origin.note() == (
        f"Kafka at env:9092 (KAFKA_BOOTSTRAP_SERVERS in the environment), not file:9092 as {path} says"
    )
    monkeypatch.setenv("RIVERRUN_KAFKA__BOOTSTRAP_SERVERS", "ours:9092")
    assert (
        "RIVERRUN_KAFKA__BOOTSTRAP_SERVERS in the environment"
        in load_settings(path).bootstrap_origin().note()
    )
    monkeypatch.setenv("RIVERRUN_KAFKA__BOOTSTRAP_SERVERS", "file:9092")  # same as the file: quiet
    assert load_settings(path).bootstrap_origin().note() is None
    monkeypatch.delenv("RIVERRUN_KAFKA__BOOTSTRAP_SERVERS")
    # no file: compared with the default
    assert load_settings().bootstrap_origin().note().endswith("not the default 127.0.0.1:9092")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    assert load_settings().bootstrap_origin().note() is None


def test_config_for_gives_each_client_its_own_properties():
    from riverrun.streams.kafka.config import CONSUMER_ONLY, PRODUCER_ONLY, config_for

    s = Settings(kafka={"extra": {"fetch.wait.max.ms": "10", "linger.ms": "2", "client.id": "rr"}})
    conf = s.kafka.client_config()
    assert "fetch.wait.max.ms" not in config_for(conf, "producer") and "linger.ms" in config_for(
        conf, "producer"
    )
    assert "linger.ms" not in config_for(conf, "consumer") and "fetch.wait.max.ms" in config_for(
        conf, "consumer"
    )
    assert config_for(conf, "admin")["client.id"] == "rr"
    assert not CONSUMER_ONLY & PRODUCER_ONLY


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[flow]\nfeatures = 'fancy'\n", "flow.features"),
        ("[flow]\nlabel_ttl_seconds = -1\n", "flow.label_ttl_seconds"),
        ("[flow]\nfeature_window_seconds = 0\n", "flow.feature_window_seconds"),
        ("[flow]\nmodels = []\n", "flow.models"),
        ("workers = 'many'\n", "workers"),
        ("workers = 0\n", "workers"),
        ("[kafka]\nsecurity_protocol = 'TLS'\n", "kafka.security_protocol"),
        ("[topics]\npartitions = 0\n", "topics.partitions"),
        ("[flow]\nmax_payload_bytes = 10\n", "flow.max_payload_bytes"),
        (
            "[[flow.models]]\nname = 'a'\nrecipe = 'lr'\n[[flow.models]]\nname = 'a'\nrecipe = 'hat'\n",
            "flow.models",
        ),
    ],
)
def test_bad_values_raise_config_error_naming_the_key(tmp_path, text, key):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    lines = str(info.value).splitlines()
    assert str(path) in lines[0]
    assert any(line.strip().startswith(f"{key}:") for line in lines[1:]), lines


def test_bad_environment_value_raises_config_error(monkeypatch):
    monkeypatch.setenv("RIVERRUN_FLOW__FEATURES", "fancy")
    with pytest.raises(ConfigError, match=r"flow\.features"):
        load_settings()
    monkeypatch.delenv("RIVERRUN_FLOW__FEATURES")
    monkeypatch.setenv("RIVERRUN_FLOW__FEATUERS", "none")  # a typo in a nested variable
    with pytest.raises(ConfigError, match=r"flow\.featuers"):
        load_settings()


def test_missing_file(tmp_path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_settings(missing)
    assert str(missing) in str(info.value) and "not found" in str(info.value)
    with pytest.raises(ConfigError):
        load_settings(tmp_path)  # a directory is not a file


def test_invalid_toml(tmp_path):
    path = write(tmp_path, "x = [\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(path) in str(info.value) and "TOML" in str(info.value)


@pytest.mark.parametrize("recipe", ["nope", "no_such_module_xyz:f", "builtins:dict"])
def test_bad_recipe(tmp_path, recipe):
    path = write(tmp_path, f"[[flow.models]]\nname = 'a'\nrecipe = '{recipe}'\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert recipe in str(info.value)


def test_bad_recipe_from_environment(monkeypatch):
    monkeypatch.setenv("RIVERRUN_FLOW__MODELS", '[{"name": "a", "recipe": "nope"}]')
    with pytest.raises(ConfigError, match="nope"):
        load_settings()


def test_bad_recipe_error_names_file_and_key(tmp_path):
    path = write(tmp_path, "[[flow.models]]\nname = 'a'\nrecipe = 'nope'\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(path) in str(info.value)
    assert "flow.models.0.recipe" in str(info.value)


def test_recipe_needing_arguments_is_a_config_error(tmp_path):
    path = write(tmp_path, "[[flow.models]]\nname = 'a'\nrecipe = 'math:sqrt'\n")
    with pytest.raises(ConfigError):
        load_settings(path)


def test_sasl_password_is_secret(tmp_path, monkeypatch):
    s = load_settings(write(tmp_path, TOML))
    assert isinstance(s.kafka.sasl_password, SecretStr)
    assert isinstance(s.redis_url, SecretStr)
    for text in (repr(s), str(s), repr(s.kafka), str(s.kafka), repr(s.model_dump())):
        assert "hunter2-very-secret" not in text
        assert "redis://cache" not in text
    assert "**********" in repr(s)
    monkeypatch.setenv("RIVERRUN_KAFKA__SASL_PASSWORD", "env-secret-pw")
    s = load_settings()
    assert "env-secret-pw" not in repr(s) and "env-secret-pw" not in str(s)
    assert s.kafka.client_config()["sasl.password"] == "env-secret-pw"


def test_secret_not_in_config_error(tmp_path):
    path = write(tmp_path, TOML + "\nbogus = 1\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert "hunter2-very-secret" not in str(info.value)


def test_settings_are_frozen():
    s = load_settings()
    with pytest.raises(Exception, match="frozen"):
        s.workers = 2


def test_every_policy_setting_reaches_the_lifecycle_config():
    """The [flow.policy] table and the lifecycle's PolicyConfig have the same fields: none is
    settable in one and silently missing from the other."""
    from dataclasses import fields

    from riverrun.learners.lifecycle import PolicyConfig
    from riverrun.streams.settings import PolicySettings

    assert set(PolicySettings.model_fields) == {f.name for f in fields(PolicyConfig)}
    assert PolicySettings(monitor_batch=7).config().monitor_batch == 7

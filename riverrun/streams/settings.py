"""Settings from a TOML file and the environment (read in this one place).

Precedence: environment over TOML over defaults. Environment variables are ``RIVERRUN_`` plus the
path with ``__`` between levels, e.g. ``RIVERRUN_KAFKA__BOOTSTRAP_SERVERS``; the conventional
``KAFKA_BOOTSTRAP_SERVERS`` and ``REDIS_URL`` are honoured too.

>>> s = Settings()
>>> s.topics.events, s.flow.features, s.flow.models[0].recipe
('events', 'default', 'lr')
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from dataclasses import dataclass, fields
from functools import partial
from pathlib import Path
from typing import Any, Literal, get_args, get_type_hints

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    create_model,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from riverrun.errors import ConfigError
from riverrun.learners.lifecycle import PolicyConfig
from riverrun.learners.recipes import build_model
from riverrun.schemas import DEFAULT_MAX_BYTES
from riverrun.streams.core.join import LABEL_TTL_SECONDS
from riverrun.streams.core.ttl import ENTITY_TTL_SECONDS


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# librdkafka properties whose values are credentials (ssl.key.password, ssl.keystore.password,
# sasl.oauthbearer.client.secret, sasl.oauthbearer.config, ssl.key.pem, sasl.jaas.config, ...).
_SENSITIVE = re.compile(r"password|secret|token|jaas|oauthbearer\.config|key\.pem|private", re.IGNORECASE)


class KafkaSettings(_Section):
    """How to reach Kafka. ``extra`` passes any librdkafka property through."""

    bootstrap_servers: str = "127.0.0.1:9092"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: str | None = None
    extra: dict[str, str] = Field(default_factory=dict)

    def __repr_args__(self):
        """``extra`` values that are credentials (``ssl.key.password``, an OAuth client secret,
        a JAAS line, a PEM key) are masked like ``sasl_password``: settings get logged."""
        for name, value in super().__repr_args__():
            if name == "extra":
                value = {k: "**********" if _SENSITIVE.search(k) else v for k, v in value.items()}
            yield name, value

    def client_config(self) -> dict[str, str]:
        """librdkafka settings of every client, ``extra`` included; a client takes its share
        through ``config_for`` (producers, consumers and admin clients differ)."""
        conf = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            conf["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username:
            conf["sasl.username"] = self.sasl_username
        if self.sasl_password:
            conf["sasl.password"] = self.sasl_password.get_secret_value()
        if self.ssl_ca_location:
            conf["ssl.ca.location"] = self.ssl_ca_location
        conf.update(self.extra)
        return conf


class TopicSettings(_Section):
    """Topic names, and how ``riverrun topics create`` makes them."""

    events: str = "events"
    labels: str = "labels"
    predictions: str = "predictions"
    model_events: str = "model-events"
    dead_letter: str = "dead-letter"
    control: str = "control"
    partitions: int = Field(1, ge=1)
    replication_factor: int = Field(1, ge=1)

    def all(self) -> list[str]:
        return [
            self.events,
            self.labels,
            self.predictions,
            self.model_events,
            self.dead_letter,
            self.control,
        ]


class ModelSettings(_Section):
    """A model the flow trains and serves: its name (the key) and recipe."""

    name: str = "lr"
    recipe: str = "lr"

    @field_validator("recipe")
    @classmethod
    def _recipe_builds(cls, recipe: str) -> str:
        try:
            build_model(recipe)
        except ConfigError as exc:  # a ValueError, so the message names the file and key
            raise ValueError(str(exc)) from exc
        return recipe


# Bounds of the [flow.policy] settings; the fields, types and defaults are PolicyConfig's.
_POLICY_BOUNDS: dict[str, dict[str, float]] = {
    "fresh_patience": {"ge": 1},
    "checkpoint_every": {"ge": 1},
    "keep_checkpoints": {"ge": 1},
    "decision_window": {"ge": 10},
    "alpha": {"gt": 0, "lt": 1},
    "min_decision": {"ge": 1},
    "z": {"ge": 0},
    "min_at_drift": {"ge": 1},
    "suspect_accuracy": {"ge": 0, "lt": 0.5},
    "suspect_window": {"ge": 5},
    "resume_accuracy": {"gt": 0, "le": 1},
    "max_pause": {"ge": 1},
    "probation": {"ge": 0},
    "min_improvement": {"ge": 0},
    "cooldown": {"ge": 0},
    "max_actions": {"ge": 1},
    "action_window": {"ge": 1},
    "reference_size": {"ge": 10},
    "monitor_window": {"ge": 10},
    "monitor_every": {"ge": 1},
    "monitor_batch": {"ge": 1},
    "monitor_check_every": {"ge": 1},
    "psi_warning": {"gt": 0},
    "psi_threshold": {"gt": 0},
    "ks_alpha": {"gt": 0, "lt": 1},
    "chi2_alpha": {"gt": 0, "lt": 1},
}


class _PolicySection(_Section):
    @field_validator("challengers", check_fields=False)
    @classmethod
    def _challengers_build(cls, recipes: tuple[str, ...]) -> tuple[str, ...]:
        for recipe in recipes:
            try:
                build_model(recipe)
            except ConfigError as exc:
                raise ValueError(str(exc)) from exc
        return recipes

    def config(self) -> PolicyConfig:
        return PolicyConfig(**self.model_dump())


def _policy_fields() -> dict[str, Any]:
    """PolicyConfig's fields as pydantic fields: same names, types and defaults, plus bounds."""
    hints = get_type_hints(PolicyConfig)
    if unknown := set(_POLICY_BOUNDS) - {f.name for f in fields(PolicyConfig)}:
        raise TypeError(f"_POLICY_BOUNDS names fields PolicyConfig does not have: {sorted(unknown)}")
    return {
        f.name: (hints[f.name], Field(f.default, **_POLICY_BOUNDS.get(f.name, {})))
        for f in fields(PolicyConfig)
    }


PolicySettings = create_model(
    "PolicySettings",
    __base__=_PolicySection,
    __module__=__name__,
    __doc__="The ``[flow.policy]`` table: ``riverrun.learners.lifecycle.PolicyConfig``'s fields, types "
    "and defaults (documented there), with bounds.",
    **_policy_fields(),
)


class RegistrySettings(_Section):
    """Where checkpoints go: a directory, or a redis:// / rediss:// URL; blobs are HMAC-signed
    with ``key`` (at least 16 bytes; set it with RIVERRUN_REGISTRY__KEY, never in a file)."""

    url: str = "riverrun-registry"
    key: SecretStr | None = None

    def __repr_args__(self):
        """The URL with its password masked: settings get logged and land in error reports,
        and a Redis URL may carry the ACL user's password (``redis://user:pass@host``)."""
        from riverrun.registry.redis_store import redact_url

        for name, value in super().__repr_args__():
            yield name, redact_url(value) if name == "url" and "://" in value else value

    def opener(self, url: str | None = None):
        """A function opening the registry (at ``url``, default ``self.url``), or None without
        a key. A function, so each Bytewax worker opens its own connection."""
        if self.key is None:
            return None
        from riverrun.registry import open_registry

        return partial(open_registry, url or self.url, self.key.get_secret_value().encode())


class FlowSettings(_Section):
    """What the dataflow computes."""

    models: list[ModelSettings] = Field(default_factory=lambda: [ModelSettings()], min_length=1)
    features: Literal["none", "default"] = "default"
    feature_window_seconds: float = Field(300.0, gt=0)
    label_ttl_seconds: float = Field(LABEL_TTL_SECONDS, gt=0)
    max_wait_ms: float = Field(1000.0, ge=0, description="live: longest wait for the other input")
    metrics_window: int = Field(1000, ge=1)
    report_every: int = Field(1000, ge=1)
    max_payload_bytes: int = Field(DEFAULT_MAX_BYTES, ge=64)
    batch_size: int = Field(1000, ge=1)
    segment_by: str | None = Field(
        None,
        description="a feature name (or 'entity'): one instance of each model per value "
        "(lr.DE, lr.FR, ...), spread over workers and processes",
    )
    estimate: bool = Field(
        True,
        description="estimate each classifier's accuracy and log loss while labels are late, from "
        "its served probabilities (riverrun_estimated_accuracy); it only observes",
    )
    entity_ttl_seconds: float = Field(
        ENTITY_TTL_SECONDS,
        ge=0,
        description="event-time seconds an entity may stay quiet before its features start afresh "
        "and its state is dropped (0: never); a day, as [online_store] ttl_seconds",
    )
    policy: PolicySettings = Field(default_factory=PolicySettings)

    @field_validator("models")
    @classmethod
    def _unique_names(cls, models: list[ModelSettings]) -> list[ModelSettings]:
        names = [m.name for m in models]
        if len(set(names)) != len(names):
            raise ValueError(f"model names must be unique, got {names}")
        return models


class RecoverySettings(_Section):
    """Bytewax recovery: state and Kafka offsets snapshotted together every interval."""

    enabled: bool = True
    directory: Path = Path("riverrun-state")
    snapshot_interval_seconds: float = Field(10.0, gt=0)
    backup_interval_seconds: float = Field(0.0, ge=0)
    partitions: int = Field(4, ge=1, description="fixed at creation: at least your most workers")


class MetricsSettings(_Section):
    """The Prometheus endpoint of ``riverrun run``: ``http://address:port/metrics``, one per
    process (process ``i`` of a cluster listens on ``port + i``). Loopback by default: bind
    ``0.0.0.0`` (or a pod IP) only where the network is trusted; the series carry no event data."""

    enabled: bool = True
    address: str = "127.0.0.1"
    port: int = Field(9464, ge=0, le=65535, description="0: any free port (logged)")
    publish_every_seconds: float = Field(1.0, gt=0, description="how fresh model series are")


_KEY_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


#: How long an entity's latest features and predictions stay in the online store after their last
#: write: a day, as long as the flow keeps a quiet entity's features ([flow] entity_ttl_seconds).
ONLINE_STORE_TTL_SECONDS = ENTITY_TTL_SECONDS


class OnlineStoreSettings(_Section):
    """The online store in Redis (``redis_url``): the latest feature vector of every entity,
    written by ``riverrun run`` in pipelined batches from a thread of its own, and the latest
    prediction per entity and model; ``riverrun gateway`` serves both. Keys live under
    ``key_prefix`` and expire ``ttl_seconds`` after their last write."""

    enabled: bool = Field(False, description="riverrun run writes featured events to Redis")
    key_prefix: str = "riverrun:online"
    ttl_seconds: float = Field(ONLINE_STORE_TTL_SECONDS, gt=0)
    batch_size: int = Field(500, ge=1, description="entries per Redis pipeline")
    flush_interval_ms: float = Field(50.0, ge=0, description="longest wait to fill a batch")
    max_pending: int = Field(100_000, ge=1, description="entities waiting; past it the oldest drop")

    @field_validator("key_prefix")
    @classmethod
    def _safe_prefix(cls, prefix: str) -> str:
        if not _KEY_PREFIX.fullmatch(prefix):
            raise ValueError(f"key prefix {prefix!r} is not allowed: use 1-128 of A-Z a-z 0-9 . _ : -")
        return prefix


class GatewaySettings(_Section):
    """``riverrun gateway``: HTTP ingest and serving at ``http://address:port`` (a Faust app;
    ``address`` is its web bind and host). Loopback by default: bind ``0.0.0.0`` only behind a
    proxy or on a trusted network. ``app_id`` is the Faust app id, the consumer group of the
    agent that copies the predictions topic into the online store (``consume_predictions``).
    ``auth = "token"`` (the default): every route but /healthz needs a bearer token whose
    sha256 is in ``tokens`` or ``tokens_file`` (``riverrun gateway token`` makes one)."""

    address: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    app_id: str = "riverrun-gateway"
    producer: Literal["confluent", "faust"] = Field(
        "confluent", description="confluent-kafka (librdkafka) or Faust's own aiokafka producer"
    )
    ack_timeout_seconds: float = Field(10.0, gt=0, description="a POST waits this long for Kafka: 503")
    linger_ms: float = Field(1.0, ge=0, description="producer batching delay (confluent)")
    max_batch: int = Field(1000, ge=1, description="most records in one JSON array POST")
    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    consume_predictions: bool = True
    predictions_from: Literal["earliest", "latest"] = Field(
        "latest", description="where the agent starts without a committed offset"
    )
    auth: Literal["token", "none"] = Field(
        "token",
        description='bearer tokens required (serving/auth.py); "none": anyone, logged loudly',
    )
    tokens: str = Field(
        "", description="grant lines 'sha256:HEX SCOPES [NAME]', ';'-separated (RIVERRUN_GATEWAY__TOKENS)"
    )
    tokens_file: Path | None = Field(None, description="a file of grant lines, one per line")


class Settings(BaseSettings):
    """All of riverrun's settings."""

    model_config = SettingsConfigDict(
        env_prefix="RIVERRUN_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)
    flow: FlowSettings = Field(default_factory=FlowSettings)
    recovery: RecoverySettings = Field(default_factory=RecoverySettings)
    registry: RegistrySettings = Field(default_factory=RegistrySettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    online_store: OnlineStoreSettings = Field(default_factory=OnlineStoreSettings)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    workers: int = Field(1, ge=1)

    _bootstrap_origin: BootstrapOrigin | None = PrivateAttr(None)

    def bootstrap_origin(self) -> BootstrapOrigin:
        """Where ``kafka.bootstrap_servers`` came from (set by ``load_settings``)."""
        if (
            self._bootstrap_origin is not None
            and self._bootstrap_origin.servers == self.kafka.bootstrap_servers
        ):
            return self._bootstrap_origin
        return BootstrapOrigin(self.kafka.bootstrap_servers, "the settings given in code")


_DEFAULT_BOOTSTRAP = KafkaSettings().bootstrap_servers


@dataclass(frozen=True)
class BootstrapOrigin:
    """Where the Kafka address came from: the environment silently beats the file otherwise.

    >>> o = BootstrapOrigin("k:9092", "KAFKA_BOOTSTRAP_SERVERS in the environment", "f:9092", "rr.toml")
    >>> print(o.note())
    Kafka at k:9092 (KAFKA_BOOTSTRAP_SERVERS in the environment), not f:9092 as rr.toml says
    >>> BootstrapOrigin("f:9092", "[kafka] bootstrap_servers in rr.toml", "f:9092", "rr.toml").note() is None
    True
    """

    servers: str
    source: str  # e.g. "KAFKA_BOOTSTRAP_SERVERS in the environment", "[kafka] bootstrap_servers in F"
    file_value: str | None = None  # what the file says (None: it says nothing)
    path: str | None = None  # the file

    @property
    def from_environment(self) -> bool:
        return self.source.endswith("in the environment")

    def note(self) -> str | None:
        """One line when the environment overrides the file (or the default), else None."""
        if not self.from_environment:
            return None
        if self.file_value is not None:
            if self.file_value == self.servers:
                return None
            return f"Kafka at {self.servers} ({self.source}), not {self.file_value} as {self.path} says"
        if self.servers == _DEFAULT_BOOTSTRAP:
            return None
        return f"Kafka at {self.servers} ({self.source}), not the default {_DEFAULT_BOOTSTRAP}"


def _conventional_env() -> dict[str, Any]:
    """The variables other tools use, as overrides below our own RIVERRUN_ ones."""
    out: dict[str, Any] = {}
    if "KAFKA_BOOTSTRAP_SERVERS" in os.environ and "RIVERRUN_KAFKA__BOOTSTRAP_SERVERS" not in os.environ:
        out["kafka"] = {"bootstrap_servers": os.environ["KAFKA_BOOTSTRAP_SERVERS"]}
    if "REDIS_URL" in os.environ and "RIVERRUN_REDIS_URL" not in os.environ:
        out["redis_url"] = os.environ["REDIS_URL"]
    return out


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings from ``path`` (TOML, optional), then the environment, then ``overrides``.

    Errors are ``ConfigError`` naming the file and the wrong key.
    """
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {p} not found (see riverrun.example.toml)")
        try:
            data = tomllib.loads(p.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p} is not valid TOML: {exc}") from exc
    origin = _bootstrap_origin(data, overrides, path)
    data = _merge(data, _conventional_env())
    data = _merge(data, overrides)
    try:
        # Init kwargs beat the environment in pydantic-settings, so pass the file's values
        # through a subclass default instead: environment > file > defaults.
        settings = _with_defaults(data)()
    except ValidationError as exc:
        where = f" in {path}" if path else ""
        lines = [f"  {'.'.join(map(str, e['loc']))}: {_explain(e)}" for e in exc.errors()]
        raise ConfigError(f"invalid settings{where}:\n" + "\n".join(lines)) from exc
    settings._bootstrap_origin = BootstrapOrigin(settings.kafka.bootstrap_servers, *origin)
    return settings


def _bootstrap_origin(
    file_data: dict[str, Any], overrides: dict[str, Any], path: str | Path | None
) -> tuple[str, str | None, str | None]:
    """(source, what the file says, the file) of ``kafka.bootstrap_servers``, in precedence
    order: ``overrides``, RIVERRUN_KAFKA__BOOTSTRAP_SERVERS, KAFKA_BOOTSTRAP_SERVERS, the file."""
    kafka = file_data.get("kafka")
    in_file = kafka.get("bootstrap_servers") if isinstance(kafka, dict) else None
    in_file = in_file if isinstance(in_file, str) else None
    where = str(path) if path is not None else None
    env = {k.upper() for k in os.environ}
    if isinstance(overrides.get("kafka"), dict) and "bootstrap_servers" in overrides["kafka"]:
        source = "given to load_settings"
    elif "RIVERRUN_KAFKA__BOOTSTRAP_SERVERS" in env:
        source = "RIVERRUN_KAFKA__BOOTSTRAP_SERVERS in the environment"
    elif "KAFKA_BOOTSTRAP_SERVERS" in os.environ:
        source = "KAFKA_BOOTSTRAP_SERVERS in the environment"
    elif in_file is not None:
        source = f"[kafka] bootstrap_servers in {where}"
    else:
        source = "the default"
    return source, in_file, where


def _explain(error: Any) -> str:
    """pydantic's message, but an unknown key says which known one it resembles."""
    if error["type"] != "extra_forbidden":
        return error["msg"]
    *parent, key = error["loc"]
    known = _known_keys(parent)
    if not parent:
        kind = "section" if isinstance(error.get("input"), dict) else "key"
        what = f"unknown {kind} `{key}` at the top level"
    else:
        what = f"unknown key `{key}` in [{'.'.join(str(p) for p in parent if not isinstance(p, int))}]"
    close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
    if close:
        return f"{what}; did you mean `{close[0]}`?"
    return f"{what}; known: {', '.join(known)}" if known else what


def _known_keys(loc: list[Any]) -> list[str]:
    """The field names of the settings section at ``loc`` (e.g. ``["flow", "models", 0]``)."""
    model: Any = Settings
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if isinstance(model, type) else None
        if field is None:
            return []
        ann = field.annotation
        candidates = [ann, *get_args(ann)]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if model is None:
            return []
    return list(model.model_fields)


def _with_defaults(data: dict[str, Any]) -> type[Settings]:
    """A Settings subclass whose defaults are ``data``, so environment variables still win."""
    from pydantic_settings import PydanticBaseSettingsSource

    class _FileSource(PydanticBaseSettingsSource):
        def get_field_value(self, field, field_name):  # pragma: no cover - unused
            return None, field_name, False

        def __call__(self) -> dict[str, Any]:
            return data

    class _Loaded(Settings):
        @classmethod
        def settings_customise_sources(
            cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
        ):
            return (env_settings, _FileSource(settings_cls))

    return _Loaded

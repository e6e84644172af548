"""What ``replay_input`` is given, from the plain options of ``riverrun replay``: the input (files,
or a range of the configured Kafka topics, checked for contradicting options), the models, the
policies and the flow settings (an option when given, else the config's ``[flow]``, else the
default). The command line only parses and calls these; the messages name its flags."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from riverrun.errors import RiverrunError
from riverrun.learners.lifecycle import PolicyConfig
from riverrun.schemas import DEFAULT_MAX_BYTES
from riverrun.streams.backtest.inputs import ReplayInput, file_input, kafka_input
from riverrun.streams.core.join import LABEL_TTL_SECONDS
from riverrun.streams.core.ttl import ENTITY_TTL_SECONDS
from riverrun.streams.settings import Settings


def replay_source(
    settings: Settings | None,
    *,
    events: Path | None,
    labels: Path | None,
    from_kafka: bool,
    start_offset: str | None = None,
    end_offset: str | None = None,
    start_time: str | None = None,
    end_time: str | None = None,
    no_control: bool = False,
) -> ReplayInput:
    """Files, or a range of the configured Kafka topics (``settings`` needed then); the broker and
    the topics are checked before anything is read."""
    ranged = (start_offset, end_offset, start_time, end_time)
    if not from_kafka:
        if events is None or labels is None:
            raise RiverrunError("give --events and --labels files, or --from-kafka (topics from -c CONFIG)")
        if any(v is not None for v in ranged):
            raise RiverrunError("--start/--end offsets and times select a Kafka range: add --from-kafka")
        if no_control:
            raise RiverrunError("--no-control is for --from-kafka (files have no control topic)")
        for path in (events, labels):
            if not path.is_file():
                raise RiverrunError(f"{path} not found")
        return file_input(events, labels)
    if events is not None or labels is not None:
        raise RiverrunError("--from-kafka reads the topics of -c CONFIG: drop --events/--labels")
    if (start_offset or end_offset) and (start_time or end_time):
        raise RiverrunError("select the range by offsets or by times, not both")
    from riverrun.streams.kafka.admin import require_topics
    from riverrun.streams.kafka.range import parse_offsets

    parse_offsets(start_offset), parse_offsets(end_offset)  # fail before connecting
    times = []
    for text in (start_time, end_time):
        try:
            times.append(datetime.fromisoformat(text) if text else None)
        except ValueError:
            raise RiverrunError(f"time {text!r} is not ISO-8601 (e.g. 2024-01-01T00:00:00+00:00)") from None
    topics = [settings.topics.events, settings.topics.labels]
    control, loader = None, None
    if not no_control:  # operator commands over the same range, as the live flow read them
        from riverrun.streams.core.control import control_loader

        control = settings.topics.control
        loader = control_loader(settings.registry.opener(), settings.flow.max_payload_bytes)
        topics.append(control)
    require_topics(settings, topics)
    return kafka_input(
        settings.kafka.client_config(),
        settings.topics.events,
        settings.topics.labels,
        start_offset=start_offset,
        end_offset=end_offset,
        start_time=times[0],
        end_time=times[1],
        batch_size=settings.flow.batch_size,
        control_topic=control,
        control_loader=loader,
    )


def replay_models(
    models: list[tuple[str, str]] | None, settings: Settings | None, *, from_kafka: bool
) -> list[tuple[str, str]]:
    """The (name, recipe) pairs given; else, from Kafka, the config's models as the live flow runs
    them; else lr. Every recipe is built once: a bad one fails now, not after reading."""
    from riverrun.learners import build_model

    if not models:
        if settings is not None and from_kafka:
            models = [(m.name, m.recipe) for m in settings.flow.models]
        else:
            models = [("lr", "lr")]
    for _, recipe in models:
        build_model(recipe)
    return models


def replay_policies(
    names: list[str] | None, settings: Settings | None, *, from_kafka: bool
) -> list[tuple[str, PolicyConfig]]:
    """none|default|config (repeatable) -> [(name, PolicyConfig)]. ``default`` is tuned by the
    config's [flow.policy] when there is one; ``config`` is [flow.policy] as the live flow runs it
    (on or off). Without names: none for files, config from Kafka."""
    names = names or (["config"] if from_kafka else ["none"])
    out = []
    for name in dict.fromkeys(names):
        if name == "none":
            out.append((name, PolicyConfig(enabled=False)))
        elif settings is None:
            out.append((name, PolicyConfig()))
        else:
            config = settings.flow.policy.config()
            if name == "default" and not config.enabled:
                config = replace(config, enabled=True)
            out.append((name, config))
    return out


def replay_flow_options(
    settings: Settings | None,
    *,
    features: str | None = None,
    feature_window: float | None = None,
    label_ttl: float | None = None,
    segment_by: str | None = None,
    entity_ttl: float | None = None,
) -> dict[str, Any]:
    """``replay_input``'s flow keywords: each option when given, else the config's [flow] value,
    else replay's default. ``segment_by`` "" means no segments; ``entity_ttl`` 0 means never."""
    flow = settings.flow if settings is not None else None

    def pick(option, setting: str, default):
        if option is not None:
            return option
        return getattr(flow, setting) if flow is not None else default

    return {
        "features": pick(features, "features", "default"),
        "feature_window_seconds": pick(feature_window, "feature_window_seconds", 300.0),
        "label_ttl_seconds": pick(label_ttl, "label_ttl_seconds", LABEL_TTL_SECONDS),
        "metrics_window": pick(None, "metrics_window", 1000),
        "report_every": pick(None, "report_every", 1000),
        "max_payload_bytes": pick(None, "max_payload_bytes", DEFAULT_MAX_BYTES),
        "segment_by": pick(segment_by, "segment_by", None) or None,
        "entity_ttl_seconds": pick(entity_ttl, "entity_ttl_seconds", ENTITY_TTL_SECONDS) or None,
    }

"""Data contracts: the records on riverrun's topics and how bytes become records."""

from riverrun.schemas.decode import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_FUTURE_SECONDS,
    Origin,
    dead_letter,
    decode_control,
    decode_event,
    decode_label,
)
from riverrun.schemas.export import export_json_schemas
from riverrun.schemas.records import Control, DeadLetter, Event, Label, ModelEvent, Prediction

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_FUTURE_SECONDS",
    "Control",
    "DeadLetter",
    "Event",
    "Label",
    "ModelEvent",
    "Origin",
    "Prediction",
    "dead_letter",
    "decode_control",
    "decode_event",
    "decode_label",
    "export_json_schemas",
]

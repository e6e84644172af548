"""Write the JSON Schema of every record, for consumers in any language."""

from __future__ import annotations

import json
from pathlib import Path

from riverrun.schemas.records import RECORDS


def export_json_schemas(directory: str | Path) -> list[Path]:
    """Write ``<name>.schema.json`` for each record into ``directory``; return the paths.

    >>> import tempfile
    >>> [p.name for p in export_json_schemas(tempfile.mkdtemp())][:2]
    ['event.schema.json', 'label.schema.json']
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, model in RECORDS.items():
        schema = model.model_json_schema()
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"riverrun/{name}.schema.json"
        path = out / f"{name}.schema.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        paths.append(path)
    return paths

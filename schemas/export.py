"""JSON Schema files for producers and consumers, generated from the models.

``python -m schemas.export`` rewrites ``schemas/json/``; a test fails when the
committed files differ from what the models generate.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode

from schemas.events import PurchaseEvent, RefundEvent
from schemas.transition import DeadLetter, SegmentTransition

__all__ = ["INPUTS", "JSON_DIR", "SCHEMA_MODELS", "generate", "render", "write"]

JSON_DIR = Path(__file__).parent / "json"
SCHEMA_MODELS: dict[str, type[BaseModel]] = {
    "purchase-event": PurchaseEvent,
    "refund-event": RefundEvent,
    "segment-transition": SegmentTransition,
    "dead-letter": DeadLetter,
}

INPUTS = frozenset({"purchase-event", "refund-event"})


def generate() -> dict[str, dict[str, Any]]:
    """Schema name -> JSON Schema (draft 2020-12) of the model as serialised on the wire."""
    out = {}
    for name, model in SCHEMA_MODELS.items():
        # inputs are described as producers may send them, outputs as we emit them
        mode: JsonSchemaMode = "validation" if name in INPUTS else "serialization"
        schema = model.model_json_schema(mode=mode)
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"https://rfm-stream.dev/schemas/{name}.json"
        out[name] = schema
    return out


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def write(directory: Path = JSON_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, schema in generate().items():
        path = directory / f"{name}.json"
        path.write_text(render(schema), encoding="utf-8")
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in write():
        print(p)

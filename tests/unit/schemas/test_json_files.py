"""The committed JSON Schema files are exactly what the models generate."""

from __future__ import annotations

from schemas.export import JSON_DIR, generate, render


def test_committed_json_schemas_are_current() -> None:
    generated = generate()
    on_disk = {p.stem for p in JSON_DIR.glob("*.json")}
    assert on_disk == set(generated), "run: python -m schemas.export"
    for name, schema in generated.items():
        committed = (JSON_DIR / f"{name}.json").read_text(encoding="utf-8")
        assert committed == render(schema), (
            f"schemas/json/{name}.json is stale: python -m schemas.export"
        )

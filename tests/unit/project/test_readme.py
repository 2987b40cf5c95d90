"""The README stays true: its two commands exist, and its settings table is complete."""

from __future__ import annotations

import re
from pathlib import Path

from schemas.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_first_two_commands_are_demo_and_tests_and_ci_runs_the_same() -> None:
    block = re.search(r"```bash\n(.*?)```", README, re.S)
    assert block is not None
    commands = [line.split("#")[0].strip() for line in block.group(1).strip().splitlines()]
    assert commands == ["./scripts/demo", "./scripts/test"]
    for c in commands:
        assert (ROOT / c).is_file()
    assert "bash scripts/test" in (ROOT / ".ci/run").read_text()


def test_every_setting_is_documented() -> None:
    for name in Settings.model_fields:
        assert f"`RFM_{name.upper()}`" in README, f"RFM_{name.upper()} missing from README"
    documented = set(re.findall(r"^\| `RFM_([A-Z_]+)`", README, re.M))
    assert documented == {n.upper() for n in Settings.model_fields}

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


def test_the_documented_acl_is_the_one_the_tests_run_the_worker_under() -> None:
    from tests.support.secure_redis import CLUSTER_EXTRA_ACL, WORKER_ACL

    section = README.split("## Security", 1)[1].split("\n## ", 1)[0]
    assert f"user rfm-worker on >PASSWORD {WORKER_ACL}\n" in section
    assert f"add `{CLUSTER_EXTRA_ACL}`" in section

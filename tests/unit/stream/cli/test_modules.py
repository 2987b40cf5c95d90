"""One module per command group: each says what it exports, and registers its own commands."""

from __future__ import annotations

import argparse
import importlib
import inspect

import pytest

from stream.cli.main import COMMANDS, build_parser

COMMAND_MODULES = [
    "backfill",
    "demo",
    "diff",
    "members",
    "namespaces",
    "rules",
    "views",
    "winback",
    "worker",
]


@pytest.mark.parametrize("name", COMMAND_MODULES)
def test_all_lists_the_public_functions(name: str) -> None:
    module = importlib.import_module(f"stream.cli.{name}")
    public = {
        n
        for n, obj in vars(module).items()
        if not n.startswith("_") and inspect.isfunction(obj) and obj.__module__ == module.__name__
    }
    assert sorted(module.__all__) == sorted(public)


def test_main_wires_every_command_in_help_order() -> None:
    assert {add.__module__.rpartition(".")[2] for add in COMMANDS} == set(COMMAND_MODULES)
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert list(sub.choices) == [
        "worker",
        "demo",
        "backfill",
        "promote",
        "drop",
        "diff",
        "rules",
        "inspect",
        "segments",
        "report",
        "winback",
        "members",
        "recalibrate",
        "schemas",
    ]

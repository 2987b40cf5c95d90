"""Every setting as a ``--kebab-case`` CLI option, generated from :class:`Settings`.

So the two can't drift; options default to the ``RFM_*`` environment.
"""

from __future__ import annotations

import argparse
from typing import Any

from schemas.settings import Settings, load_settings

__all__ = ["add_settings_options", "settings_from"]


def add_settings_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("settings (each defaults to its RFM_* variable)")
    for name, info in Settings.model_fields.items():
        flag = "--" + name.replace("_", "-")
        env = f"RFM_{name.upper()}"
        help_text = f"{info.description or name} [{env}]"
        if info.annotation is bool:
            group.add_argument(
                flag,
                dest=name,
                default=None,
                action=argparse.BooleanOptionalAction,
                help=help_text,
            )
        else:
            group.add_argument(flag, dest=name, default=None, metavar=name.upper(), help=help_text)


def settings_from(args: argparse.Namespace, **defaults: Any) -> Settings:
    given = {k: getattr(args, k, None) for k in Settings.model_fields}
    for k, v in defaults.items():
        if given.get(k) is None:
            given[k] = v
    return load_settings(**given)

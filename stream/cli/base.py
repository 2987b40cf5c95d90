"""What the command modules share: the subparsers they register on, and logging set-up."""

from __future__ import annotations

import argparse
import logging
from typing import TypeAlias

__all__ = ["Subcommands", "setup_logging"]

# argparse has no public name for what ``add_subparsers`` returns; every command module's
# ``add_*`` function takes it, so the parser (stream.cli.main) never learns their options.
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def setup_logging(level: str) -> None:
    """One log format for the commands that log (worker, backfill); set up only once a
    command is past its start-up checks, so a refusal stays one line on stderr."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

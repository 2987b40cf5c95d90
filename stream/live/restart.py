"""How a worker restarts in place (same pid, same arguments): after a promote moved its
namespace, re-running the whole start (claims, positions from the new namespace's offsets)
is simpler and safer than re-pointing every piece of a running worker."""

from __future__ import annotations

import logging
import os
import sys
from typing import NoReturn

__all__ = ["restart_in_place"]


def restart_in_place() -> NoReturn:
    """Flush the log, then replace this process with ``python -m stream.cli`` and the
    same arguments."""
    for handler in logging.getLogger().handlers:
        handler.flush()
    os.execv(sys.executable, [sys.executable, "-m", "stream.cli", *sys.argv[1:]])

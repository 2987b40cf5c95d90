"""Start-up check: the rules' rolling windows need no purchase days the customers lack.

Customers keep per-day purchase totals only as long as the rules' longest window
(:mod:`segments.windows`), and the namespace records that length
(:func:`state.layout.ensure_days_kept`). A worker starting with a longer window on a
namespace that has customers would read their windowed spend as if nothing had been
bought before the days kept: every customer to the bottom tier with ``rules_change``.
So it is refused with one line (exit 2) naming the procedure, unless
``RFM_ACCEPT_SHORT_WINDOWS``.
"""

from __future__ import annotations

from schemas.settings import Settings
from segments.engine import Engine
from state.layout import ensure_days_kept, populated, window_of
from state.store import RedisStore

__all__ = ["check_days_kept"]


async def check_days_kept(
    settings: Settings, store: RedisStore, engine: Engine, partitions: int
) -> None:
    """Raises :class:`state.layout.WindowsNotKept`; records the window otherwise."""
    await ensure_days_kept(
        store,
        window_of(engine.schemes),
        await populated(store, partitions),
        settings.accept_short_windows,
    )

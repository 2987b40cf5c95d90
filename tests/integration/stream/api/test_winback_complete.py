"""Win-back revenue is complete: a return kept open in the customer's state counts every
purchase of its 90-day window, however many transitions of other schemes have pushed it
(and its entry) out of the bounded history (processor rig, real Redis, no broker)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import orjson
import pytest

from schemas.rules import load_rules
from segments.winback import lapsed_of
from stream.api.lookup import Lookup
from stream.api.winback import winback
from tests.support.harness import RULES, purchase
from tests.support.processor_rig import Rig, make_rig
from tests.unit.segments.winback_story import at, ms

pytestmark = pytest.mark.integration

RULES_FILE = RULES / "rfm8_ladder.toml"

# (day, amount): d0 1500 → develop; d90 → churning (entry, 2026-04-01); d110 100 → back
# (high_value; ladder two); then every purchase is a ladder step (three, four, five) that
# pushes the return and its entry out of the default 5-transition history.
STORY = [
    (0, "1500"),
    (110, "100"),
    (115, "10"),
    (120, "10"),
    (125, "10"),
    (130, "10"),
    (150, "20"),
    (199, "30"),
]
LATE = (201, "70")
"""91 days after the return: outside its window, never revenue (day 199 is inside)."""


@pytest.fixture
async def rig(redis_url: str) -> AsyncIterator[Rig]:
    r = await make_rig(redis_url, ms(0), decay_timer="false", rules=str(RULES_FILE))
    r.processor.lapsed = lapsed_of(load_rules(RULES_FILE))
    yield r
    await r.close()


async def _buy(rig: Rig, n: int, day: int, amount: str) -> None:
    rig.clock.set(ms(day))
    await rig.processor.run_due(0, ms(day) - 1)
    await rig.feed([orjson.dumps(purchase("A", n, at(day), amount))])


async def test_revenue_after_a_return_pushed_out_of_history_counts_in_full(rig: Rig) -> None:
    assert rig.settings.history_size == 5  # the default: the bound the README measured
    for n, (day, amount) in enumerate(STORY):
        await _buy(rig, n, day, amount)
    state = (await rig.store.load(0, ["A"], rig.processor.position)).states["A"]
    # the lapse's entry has left the history (the old attribution's walk fails) …
    assert not any(h[0] == "rfm8" and h[2] == "churning" for h in state.history)
    assert [r[0] for r in state.returns] == ["rfm8"]  # … but the return is kept open

    await _buy(rig, len(STORY), *LATE)
    lookup = Lookup(
        rig.settings, rig.store, lambda: rig.processor.engine, lambda: 1, rig.clock.now_ms
    )
    body = await winback(lookup, scheme="rfm8", period="month")
    april = next(c for c in body["cohorts"] if c["cohort"] == "2026-04")
    assert (april["entered"], april["returned"]["90"]) == (1, 1)
    # 100 + 4 × 10 + 20 + 30: every purchase of the window (main's history walk: 130)
    assert Decimal(april["revenue"]) == Decimal("190")
    state = (await rig.store.load(0, ["A"], rig.processor.position)).states["A"]
    assert state.returns == []  # the window closed: the record is gone

"""Wire encoding of what the stream emits: transitions (JSON) and dead letters (JSON).

Built as plain dicts with orjson on the hot path; tests validate the output against
the committed JSON Schemas so the dicts can't drift from the pydantic contracts.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

from schemas.money import from_units
from schemas.times import DAY_MS, from_ms
from segments.engine import Engine
from segments.ids import transition_id
from segments.model import Columns, TransitionDraft
from segments.scheme import Scheme
from segments.value import ValuePolicy
from segments.value import figures as value_figures
from stream.apply.dead_letter_json import build_letter
from stream.apply.modes import Mode

__all__ = ["TransitionEncoder", "encode_dead_letter", "iso"]


def iso(ms: int) -> str:
    """ISO-8601 UTC to the millisecond, as ``datetime.isoformat`` writes it.

    Every transition carries two or three of these; formatting a datetime each time was
    3 % of the live worker's CPU. The date part is cached by day: a transition's purchase
    times span its customer's whole history (a per-second cache missed on 70 % of a
    replay's), while days are few; the time of day is integer arithmetic.
    """
    day, rest = divmod(ms, DAY_MS)
    seconds, milli = divmod(rest, 1000)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    return f"{_iso_day(day)}T{hours:02d}:{minutes:02d}:{seconds:02d}.{milli:03d}+00:00"


@functools.lru_cache(maxsize=65536)
def _iso_day(day: int) -> str:
    return from_ms(day * DAY_MS).date().isoformat()


class _IsoMemo(dict[int, str]):
    """``iso`` for one batch, remembered: a customer's transitions (one per scheme)
    share their times, and a batch shares its ``emitted_at``; formatting a datetime
    was ~a third of the encoder's cost."""

    def __missing__(self, ms: int) -> str:
        text = self[ms] = iso(ms)
        return text


class _MoneyMemo(dict[int, str]):
    """``str(from_units(units))`` for one batch, remembered: a customer's transitions
    (one per scheme) carry the same net spend, and the exact decimal formatting costs
    more than the lookup (~15 % of a transition's encoding)."""

    def __missing__(self, units: int) -> str:
        text = self[units] = str(from_units(units))
        return text


class _Labels(dict[str, str]):
    """One scheme's segment -> label (:meth:`~segments.scheme.Scheme.label`), filled on
    first use: two method calls per transition become two dict lookups."""

    def __init__(self, scheme: Scheme) -> None:
        super().__init__()
        self._scheme = scheme

    def __missing__(self, key: str) -> str:
        label = self[key] = self._scheme.label(key)
        return label


class TransitionEncoder:
    """Drafts -> transition JSON, adding labels, id, mode and the rules version."""

    def __init__(
        self, engine: Engine, currency: str, mode: Mode, value: ValuePolicy | None = None
    ) -> None:
        self._schemes = {s.name: s for s in engine.schemes}
        self._labels = {s.name: _Labels(s) for s in engine.schemes}
        self._currency = currency
        self._mode = mode
        self._rules_version = engine.rules_version
        self._cut_version = {
            s.name: engine.cut_version for s in engine.schemes if getattr(s, "calibrated", False)
        }
        self._model = engine.model
        self._value = value or ValuePolicy()
        self._valued = {s.name for s in engine.schemes if getattr(s, "value_figures", False)}

    def to_dict(
        self,
        d: TransitionDraft,
        emitted_ms: int,
        value: dict[str, object] | None = None,
        times: dict[int, str] | None = None,
        money: dict[int, str] | None = None,
    ) -> dict[str, Any]:
        """The transition's JSON object; ``times`` and ``money``: the ``iso`` and amount
        memos shared by a batch."""
        t = _IsoMemo() if times is None else times
        amount = _MoneyMemo() if money is None else money
        labels = self._labels[d.scheme]
        bought = d.first_ms is not None  # has purchase history (even if all refunded)
        snapshot = {
            "recency_days": round((d.effective_ms - d.last_ms) / DAY_MS, 6) if bought else 0.0,
            "frequency": d.frequency,
            "monetary": amount[d.monetary],
            "currency": self._currency,
            "first_purchase_at": t[d.first_ms] if d.first_ms is not None else None,
            "last_purchase_at": t[d.last_ms] if bought else None,
            "scores": d.scores,
        }
        if value is not None:
            snapshot["value"] = value
        return {
            "transition_id": transition_id(
                d.customer_id, d.scheme, d.from_segment, d.to_segment, d.effective_ms
            ),
            "customer_id": d.customer_id,
            "scheme": d.scheme,
            "from_segment": d.from_segment,
            "from_label": labels[d.from_segment],
            "to_segment": d.to_segment,
            "to_label": labels[d.to_segment],
            "cause": d.cause,
            "effective_at": t[d.effective_ms],
            "emitted_at": t[emitted_ms],
            "mode": self._mode,
            "rules_version": self._rules_version,
            "cut_version": self._cut_version.get(d.scheme),
            "event_id": d.event_id,
            "snapshot": snapshot,
        }

    def values(self, drafts: Sequence[TransitionDraft]) -> list[dict[str, object] | None]:
        """The value figures of each draft of a ``value_figures`` scheme (None for the
        others, and for all while the namespace has no model of its base yet)."""
        out: list[dict[str, object] | None] = [None] * len(drafts)
        if self._model is None or not self._valued:
            return out
        at = [i for i, d in enumerate(drafts) if d.scheme in self._valued]
        if not at:
            return out
        picked = [drafts[i] for i in at]
        cols = Columns(
            last_ms=np.array([d.last_ms for d in picked], dtype=np.int64),
            frequency=np.array([d.frequency for d in picked], dtype=np.int64),
            monetary=np.array([d.monetary for d in picked], dtype=np.int64),
            first_ms=np.array(
                [d.last_ms if d.first_ms is None else d.first_ms for d in picked], dtype=np.int64
            ),
        )
        asof = np.array([d.effective_ms for d in picked], dtype=np.int64)
        for i, v in zip(at, value_figures(self._model, self._value, cols, asof), strict=True):
            out[i] = v
        return out

    def encode_many(self, drafts: Sequence[TransitionDraft], emitted_ms: int) -> list[bytes]:
        values = self.values(drafts)
        times, money = _IsoMemo(), _MoneyMemo()
        dumps, to_dict = orjson.dumps, self.to_dict
        return [
            dumps(to_dict(d, emitted_ms, v, times, money))
            for d, v in zip(drafts, values, strict=True)
        ]

    def encode(self, d: TransitionDraft, emitted_ms: int) -> bytes:
        return self.encode_many([d], emitted_ms)[0]


def encode_dead_letter(
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    error_class: str,
    error_message: str,
    failed_ms: int,
) -> bytes:
    """The dead letter's JSON; never larger than
    :data:`stream.apply.dead_letter_json.LETTER_MAX_BYTES` (an oversized key or value is
    carried as a prefix with its length and digest)."""
    return build_letter(
        topic=topic,
        partition=partition,
        offset=offset,
        key=key,
        value=value,
        error_class=error_class,
        error_message=error_message,
        failed_at=iso(failed_ms),
    )

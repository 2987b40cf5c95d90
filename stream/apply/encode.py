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
from schemas.times import from_ms
from segments.engine import Engine
from segments.ids import transition_id
from segments.model import Columns, TransitionDraft
from segments.value import ValuePolicy
from segments.value import figures as value_figures
from stream.apply.dead_letter_json import build_letter
from stream.apply.modes import Mode

__all__ = ["TransitionEncoder", "encode_dead_letter", "iso"]

_DAY_MS = 86_400_000


def iso(ms: int) -> str:
    """ISO-8601 UTC to the millisecond, as ``datetime.isoformat`` writes it.

    Every transition carries two of these; formatting a datetime each time was 3 % of
    the live worker's CPU. A transition's times cluster in few seconds, so the seconds
    part is cached.
    """
    return f"{_iso_seconds(ms // 1000)}.{ms % 1000:03d}+00:00"


@functools.lru_cache(maxsize=8192)
def _iso_seconds(seconds: int) -> str:
    return from_ms(seconds * 1000).isoformat(timespec="seconds").removesuffix("+00:00")


class _IsoMemo(dict[int, str]):
    """``iso`` for one batch, remembered: a customer's transitions (one per scheme)
    share their times, and a batch shares its ``emitted_at``; formatting a datetime
    was ~a third of the encoder's cost."""

    def __missing__(self, ms: int) -> str:
        text = self[ms] = iso(ms)
        return text


class TransitionEncoder:
    """Drafts -> transition JSON, adding labels, id, mode and the rules version."""

    def __init__(
        self, engine: Engine, currency: str, mode: Mode, value: ValuePolicy | None = None
    ) -> None:
        self._schemes = {s.name: s for s in engine.schemes}
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
    ) -> dict[str, Any]:
        """The transition's JSON object; ``times``: an ``iso`` memo shared by a batch."""
        t = _IsoMemo() if times is None else times
        scheme = self._schemes[d.scheme]
        bought = d.first_ms is not None  # has purchase history (even if all refunded)
        snapshot = {
            "recency_days": round((d.effective_ms - d.last_ms) / _DAY_MS, 6) if bought else 0.0,
            "frequency": d.frequency,
            "monetary": str(from_units(d.monetary)),
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
            "from_label": scheme.label(d.from_segment),
            "to_segment": d.to_segment,
            "to_label": scheme.label(d.to_segment),
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
        times = _IsoMemo()
        dumps, to_dict = orjson.dumps, self.to_dict
        return [
            dumps(to_dict(d, emitted_ms, v, times)) for d, v in zip(drafts, values, strict=True)
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

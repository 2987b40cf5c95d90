"""The worker's ``/metrics`` text: its counters and gauges in Prometheus's exposition format.

Kept apart from the HTTP server (:mod:`stream.api.server`), which serves whatever text
the worker's ``metrics`` callable returns: what the worker exposes, under which names and
help texts, is read in one place. The runtime (:mod:`stream.live.runtime`) renders it
here from the processor's :class:`~stream.apply.stats.Stats` and gauges the timer
refreshes; rendering them reads no Redis, so they stay available while Redis is down
(that is when they matter).
"""

from __future__ import annotations

from collections.abc import Mapping

from stream.apply.processor import Processor
from stream.apply.stats import Family, Histogram

__all__ = ["render_metrics"]


PARTITION_GAUGES = {
    "rfm_consumer_lag": "Records in the partition not yet applied (high watermark - next).",
    "rfm_schedule_size": "Customers in the partition's due-time schedule.",
    "rfm_due_not_fired": "Customers whose due time plus RFM_DECAY_GRACE has passed but whose "
    "timer step hasn't run.",
    "rfm_outbox_length": "Transitions committed but not yet published (the partition's outbox).",
    "rfm_consumption_paused": "1 while the partition is not consumed: its outbox is over "
    "RFM_OUTBOX_MAX (back-pressure; resumes at half of it).",
    "rfm_publish_failing": "1 while publishing the partition's transitions fails (retried).",
}


def render_metrics(
    processor: Processor,
    redis_up: bool,
    published: int,
    extra: dict[str, float] | None = None,
    partitions: dict[str, dict[int, float]] | None = None,
    families: Mapping[str, Family] | None = None,
) -> str:
    """Prometheus exposition text of the worker's counters and gauges.

    ``partitions``: per-partition gauges (:data:`PARTITION_GAUGES`) as last refreshed by
    the worker's timer; ``extra``: other gauges by name; ``families``: name -> (type,
    help, labelled samples) of metrics the runtime renders itself (Redis refusals, fences,
    dead-letter publishing).
    """
    s = processor.stats
    lines: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            lines.append(f"{name}{labels} {value}")

    def histogram(name: str, help_text: str, h: Histogram) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} histogram")
        cumulative = 0
        for bound, n in zip(h.bounds, h.counts, strict=True):
            cumulative += n
            le = "+Inf" if bound == float("inf") else f"{bound:g}"
            lines.append(f'{name}_bucket{{le="{le}"}} {cumulative}')
        lines.append(f"{name}_sum {h.total}")
        lines.append(f"{name}_count {cumulative}")

    metric("rfm_events_total", "counter", "Events applied to state.", [("", s.events)])
    metric(
        "rfm_redelivered_skipped_total",
        "counter",
        "Messages at or below the committed offset (redelivered), skipped.",
        [("", s.duplicates_skipped)],
    )
    metric(
        "rfm_duplicate_events_total",
        "counter",
        "Events whose event_id was already applied (resends), ignored.",
        [("", s.duplicate_events)],
    )
    metric(
        "rfm_forwarded_total",
        "counter",
        "Events found off their customer's partition, forwarded.",
        [("", s.forwarded)],
    )
    metric(
        "rfm_dead_letters_total",
        "counter",
        "Messages sent to the dead-letter topic, by reason.",
        [(f'{{reason="{k}"}}', v) for k, v in sorted(s.dead_letters.items())] or [("", 0)],
    )
    metric("rfm_transitions_total", "counter", "Transitions committed.", [("", s.transitions)])
    metric("rfm_decays_total", "counter", "Time-driven transitions.", [("", s.decays)])
    metric("rfm_published_total", "counter", "Transitions published.", [("", published)])
    metric(
        "rfm_fenced_batches_total",
        "counter",
        "Batches rejected because the partition moved.",
        [("", s.fenced_batches)],
    )
    metric("rfm_commit_conflicts_total", "counter", "Retried commits.", [("", s.conflicts)])
    metric(
        "rfm_redis_up",
        "gauge",
        "1 while Redis answers; 0 while the worker waits for it (not consuming).",
        [("", 1 if redis_up else 0)],
    )
    metric(
        "rfm_owned_partitions",
        "gauge",
        "Purchases partitions this worker owns.",
        [("", len(processor.owned()))],
    )
    metric(
        "rfm_transitions_by_total",
        "counter",
        "Transitions committed, by scheme, from and to.",
        [(f'{{scheme="{sc}",from="{f}",to="{t}"}}', n) for (sc, f, t), n in sorted(s.flows.items())]
        or [("", 0)],
    )
    histogram(
        "rfm_batch_seconds",
        "Time to apply one partition's batch (validate to commit).",
        s.batch_seconds,
    )
    histogram(
        "rfm_decay_delay_seconds",
        "Time-driven transitions the timer fired: wall time from the due time (effective_at) "
        "to the commit that queues it for publishing (emitted_at); RFM_DECAY_GRACE plus up "
        "to one timer interval when on time.",
        s.decay_delay_seconds,
    )
    metric(
        "rfm_decay_grace_seconds",
        "gauge",
        "RFM_DECAY_GRACE: how long after its due time a time-driven transition fires.",
        [("", processor.settings.decay_grace / 1000)],
    )
    for name, help_text in PARTITION_GAUGES.items():
        values = (partitions or {}).get(name, {})
        metric(
            name,
            "gauge",
            help_text,
            [(f'{{partition="{p}"}}', v) for p, v in sorted(values.items())],
        )
    for name, value in (extra or {}).items():
        metric(name, "gauge", name, [("", value)])
    for name, (kind, help_text, samples) in (families or {}).items():
        metric(name, kind, help_text, samples)
    return "\n".join(lines) + "\n"

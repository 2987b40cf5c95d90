"""Engine cost per scheme set: the four RFM schemes vs every shipped scheme (issue #20).

    python -m bench --only schemes
    python -m bench.bench_schemes [--events 60000] [--customers 6000] [--repeats 3] [--profile]

The pure engine (``segments.engine``, no I/O) folds the same seeded workload
(``bench.workload``) in batches of ``RFM_BATCH_MAX`` events, doing per batch what the
processor does around it: the quantile-summary deltas of every population the schemes
rank (``Figures.summarised``) and the value figures of the drafts of
``value_figures`` schemes (``TransitionEncoder.values``). Both engines run at one
cut-point version computed from the workload itself (every quantile axis ranked, the
base's BG/NBD model fitted), so no scheme is idle for lack of cut points. The two sets
alternate, best of ``--repeats`` each; the ratio is of the same run.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import gc
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import orjson

from bench import workload
from bench.profiling import format_profile
from bench.report import cpu_model, met
from schemas.rules import RulesFile, load_rules
from schemas.settings import Settings, load_settings
from segments.cut_points import CutPoints
from segments.engine import Engine
from segments.model import CustomerState, Event
from segments.quantiles import Populations
from segments.rules import build_engine, value_policy_of
from segments.value import fit_base
from stream.apply.encode import TransitionEncoder
from stream.apply.validate import Validator

__all__ = ["SECTION", "SchemesResult", "bench", "main", "section"]

SECTION = "## Engine cost per scheme set"

GOAL = 0.7
"""Every shipped scheme at no less than this share of the RFM schemes' throughput."""

FOLD_FORCED = "(none: the fold forced)"
"""The row of the RFM schemes alone on the fold path, which every scheme takes."""


@dataclass(frozen=True, slots=True)
class SetRun:
    """One scheme set's best pass."""

    name: str
    schemes: tuple[str, ...]
    seconds: list[float]
    transitions: int
    valued: int
    """Transitions that carried value figures."""

    @property
    def best(self) -> float:
        return min(self.seconds)


@dataclass(frozen=True, slots=True)
class Shape:
    """Both scheme sets on one way of cutting the workload into batches."""

    name: str
    batches: int
    rfm: SetRun
    every: SetRun

    @property
    def ratio(self) -> float:
        """Throughput of every scheme as a share of the RFM schemes' (same run)."""
        return self.rfm.best / self.every.best if self.every.best else 0.0


@dataclass(frozen=True, slots=True)
class Added:
    """The four RFM schemes plus one other, on the live batches: what that scheme costs."""

    scheme: str
    fold: bool
    """Whether the set takes the fold (``Engine.foldable``): a time-driven axis moves it there."""
    seconds: list[float]
    transitions: int

    @property
    def best(self) -> float:
        return min(self.seconds)


@dataclass(frozen=True, slots=True)
class SchemesResult:
    events: int
    customers: int
    batch: int
    shapes: list[Shape]
    profile: str
    """cProfile of every scheme on the ``live`` shape."""
    state_bytes: dict[str, float]
    """Mean encoded state (Redis hash fields) per customer at the end, per scheme set."""
    added: list[Added]
    """Each scheme that isn't one of the four RFM ones, added to them alone (live batches)."""


def _events(settings: Settings, n: int, customers: int, seed: int) -> list[Event]:
    validator = Validator(settings)
    wall = int(workload.END.timestamp() * 1000) + 1
    return [validator.event(orjson.dumps(d), wall) for d in workload.generate(n, customers, seed)]


def _batches(events: Sequence[Event], size: int, shape: str) -> list[Sequence[Event]]:
    """``replay``: ``size`` consecutive events a batch (a backfill, or a worker catching
    up: a heavy buyer has many events in one batch). ``live``: also closed before a
    customer's second event, as a real-time fetch of a large base almost always is (a
    customer seldom buys twice within the seconds one fetch spans)."""
    if shape == "replay":
        return [events[i : i + size] for i in range(0, len(events), size)]
    out: list[Sequence[Event]] = []
    batch: list[Event] = []
    seen: set[str] = set()
    for e in events:
        if len(batch) == size or e.customer_id in seen:
            out.append(batch)
            batch, seen = [], set()
        batch.append(e)
        seen.add(e.customer_id)
    return [*out, batch] if batch else out


def _fold(
    engine: Engine, batches: Sequence[Sequence[Event]], encoder: TransitionEncoder | None
) -> tuple[dict[str, CustomerState], dict[str, dict[int, int]], int, int]:
    """Apply every batch as the processor would; returns the states, the merged summary
    deltas, the transitions and the valued ones."""
    pops = Populations(engine.schemes, engine.rules_version)
    states: dict[str, CustomerState] = {}
    summaries: dict[str, dict[int, int]] = {}
    transitions = valued = 0
    for batch in batches:
        touched = [
            states.setdefault(c, CustomerState(c))
            for c in dict.fromkeys(e.customer_id for e in batch)
        ]
        before = pops.snapshot(touched) if pops else None
        outcome = engine.apply_events(states, batch)
        if before is not None:
            for name, d in pops.deltas(before, pops.snapshot(touched)).items():
                into = summaries.setdefault(name, {})
                for b, k in d.items():
                    into[b] = into.get(b, 0) + k
        engine.next_due(touched)  # the commit's schedule entries
        transitions += len(outcome.transitions)
        if encoder is not None:
            valued += sum(v is not None for v in encoder.values(outcome.transitions))
    return states, summaries, transitions, valued


def _cut_points(
    settings: Settings, rules: RulesFile, batches: Sequence[Sequence[Event]]
) -> CutPoints:
    """One cut-point version from the workload itself: every quantile axis ranked, the
    model fitted, as a worker has them after its first refresh."""
    engine = build_engine(settings, rules)
    states, summaries, _, _ = _fold(engine, batches, None)
    end = max(e.occurred_ms for b in batches for e in b)
    cuts = Populations(engine.schemes, engine.rules_version).cut_points(
        engine.schemes, summaries, end, 1, len(states)
    )
    return dataclasses.replace(cuts, model=fit_base(list(states.values()), end))


def _engine(
    settings: Settings, rules: RulesFile, cuts: CutPoints
) -> tuple[Engine, TransitionEncoder]:
    engine = build_engine(settings, rules, cuts)
    return engine, TransitionEncoder(engine, settings.currency, "live", value_policy_of(settings))


def bench(
    events_n: int, customers: int, repeats: int, profile: bool = True, seed: int = 7
) -> SchemesResult:
    from state.codec import encode_state  # bench only: the size of what Redis would hold

    settings = load_settings()
    events = _events(settings, events_n, customers, seed)
    sets = {"rfm": load_rules("rfm"), "every": load_rules("all")}
    cuts = _cut_points(settings, sets["every"], _batches(events, settings.batch_max, "replay"))
    engines = {k: _engine(settings, r, cuts) for k, r in sets.items()}
    shapes: list[Shape] = []
    sizes: dict[str, float] = {}
    text = ""
    for shape in ("live", "replay"):
        batches = _batches(events, settings.batch_max, shape)
        seconds: dict[str, list[float]] = {k: [] for k in sets}
        counts: dict[str, tuple[int, int]] = {}
        for _ in range(repeats):
            for name, (engine, encoder) in engines.items():
                gc.collect()
                t0 = time.perf_counter()
                states, _, transitions, valued = _fold(engine, batches, encoder)
                seconds[name].append(time.perf_counter() - t0)
                counts[name] = (transitions, valued)
                encoded = [sum(map(len, encode_state(s))) for s in states.values()]
                sizes[name] = sum(encoded) / max(len(encoded), 1)
        runs = {
            k: SetRun(k, tuple(s.name for s in engines[k][0].schemes), seconds[k], *counts[k])
            for k in sets
        }
        shapes.append(Shape(shape, len(batches), runs["rfm"], runs["every"]))
        if profile and shape == "live":
            prof = cProfile.Profile()
            engine, encoder = engines["every"]
            prof.enable()
            _fold(engine, batches, encoder)
            prof.disable()
            text = format_profile(prof, top=15)
    added = _added(settings, sets, cuts, _batches(events, settings.batch_max, "live"), repeats)
    return SchemesResult(events_n, customers, settings.batch_max, shapes, text, sizes, added)


def _added(
    settings: Settings,
    sets: dict[str, RulesFile],
    cuts: CutPoints,
    batches: Sequence[Sequence[Event]],
    repeats: int,
) -> list[Added]:
    """The RFM set plus each other scheme alone: which of them the every-scheme cost is
    made of, and whether it is the scheme or the fold path it moves the set onto."""
    rfm, every = sets["rfm"].schemes, sets["every"].schemes
    others = [n for n in every if n not in rfm]
    engines = {n: _engine(settings, RulesFile(schemes={**rfm, n: every[n]}), cuts) for n in others}
    forced = _engine(settings, sets["rfm"], cuts)
    if forced[0].can_fold:  # the path's own cost: the RFM schemes alone, on the fold
        forced[0].foldable = True
        engines[FOLD_FORCED] = forced
        others = [FOLD_FORCED, *others]
    seconds: dict[str, list[float]] = {n: [] for n in others}
    transitions: dict[str, int] = {}
    for r in range(repeats):
        for n in others if r % 2 == 0 else others[::-1]:
            engine, encoder = engines[n]
            gc.collect()
            t0 = time.perf_counter()
            _, _, transitions[n], _ = _fold(engine, batches, encoder)
            seconds[n].append(time.perf_counter() - t0)
    return [Added(n, engines[n][0].foldable, seconds[n], transitions[n]) for n in others]


def section(r: SchemesResult, command: str, load: list[tuple[float, float, float]]) -> str:
    """The BENCHMARKS.md section: both sets per batch shape, the ratio, the profile."""
    rows = []
    for shape in r.shapes:
        for run in (shape.rfm, shape.every):
            rows.append(
                f"| {shape.name} ({shape.batches:,} batches) | {run.name}: {len(run.schemes)} "
                f"schemes | {run.best:.2f} | {r.events / run.best if run.best else 0:,.0f} | "
                f"{run.transitions:,} | {run.valued:,} | "
                f"{', '.join(f'{x:.2f}' for x in run.seconds)} |"
            )
    live = next(x for x in r.shapes if x.name == "live")
    ratios = "; ".join(f"{x.name} {x.ratio:.2f}×" for x in r.shapes)
    every = ", ".join(r.shapes[0].every.schemes)
    sizes = ", ".join(f"{k} {v:.0f} B" for k, v in r.state_bytes.items())
    when = datetime.now(UTC).strftime("%Y-%m-%d")
    loads = " → ".join(f"{x[0]:.2f}" for x in load)
    return (
        f"""{SECTION}

Command (run from the repo root, {when}; `--smoke` runs every figure at tiny sizes):

```
{command}
```

Machine: {os.cpu_count()} cores ({cpu_model()}), shared and noisy: only the ratio of the
same run means anything. Python {platform.python_version()}, numpy {np.__version__}; no
broker, no Redis (the engine alone). 1-minute load average before → after: {loads}.
"""
        + f"""
The pure engine (`segments.engine`, no I/O) folds one seeded workload (`bench.workload`:
{r.events:,} events of {r.customers:,} customers over 1.5 years, refunds included) in
batches of at most {r.batch:,} events, doing per batch what the processor does around it:
the quantile-summary deltas (`Figures.summarised`), the due times of the commit
(`Engine.next_due`) and the value figures of `value_figures` schemes
(`TransitionEncoder.values`). Both sets run at one cut-point version made from the
workload itself (every quantile axis ranked, the base's BG/NBD model fitted). **live**
batches close before a customer's second event (a real-time fetch of a large base);
**replay** batches are {r.batch:,} consecutive events (a backfill, or a worker catching
up: heavy buyers have many events in one batch). The sets alternate; best of
{len(live.rfm.seconds)}.

| batches | scheme set | best s | events/s | transitions | with value figures | passes s |
|---|---|---:|---:|---:|---:|---|
{chr(10).join(rows)}

Every shipped scheme ({every}) at the RFM schemes' throughput: {ratios}. Goal ≥ {GOAL}×
on live batches: {met(live.ratio >= GOAL)}. Encoded state per customer at the end
(`state.codec`, text the Redis hash holds): {sizes}.

{_added_text(r, live)}

What bounds it. Every shipped scheme takes `segments.fold` (`Engine.foldable`): each
customer's timeline walked once in plain Python (`segments.fold_walk`: recency edges,
purchase days leaving each rolling window, cadence cuts and held refunds as one sorted
list of instants per history; P(alive) crossings asked for in one vectorised call per
round of the walks), every evaluation point of the batch classified in one numpy call
per scheme (window totals from each point's own purchase days, lifecycle's margin
settled per customer in time order). The rounds, one vectorised pass per event and per
due time of the busiest customer, stay as the reference (tests/unit/segments/
test_fold_every.py proves the fold equal to them); the four RFM schemes keep them, as
the faster path for a set whose only time-driven axes are recency and the pyramid's
window. What is left is work the RFM schemes don't have: about twice the transitions
(each a draft and a history entry), the value figures of every `value_figures` draft
(BG/NBD expectations with their hypergeometric series, `segments.bgnbd_predict`, and an
exact CLV sum per distinct history), the quantile-summary deltas of more populations
(`segments.sketch`, `segments.buckets`), the P(alive) crossings, and the walk's Python
per customer. The profile below is made of those.

Profile of every scheme on the live batches (cProfile, one more pass):

```
{r.profile}
```
"""
    )


def _added_text(r: SchemesResult, live: Shape) -> str:
    """What the goal asks of the schemes beyond the RFM ones, against what each costs."""
    if not r.added:
        return ""
    rfm, every = live.rfm, live.every
    one = rfm.best / len(rfm.schemes)
    rows = "\n".join(
        f"| {a.scheme} | {'fold' if a.fold else 'rounds'} | {a.best:.2f} | "
        f"{a.best - rfm.best:+.2f} | {(a.best - rfm.best) / one:.2f}× | {a.transitions:,} | "
        f"{', '.join(f'{x:.2f}' for x in a.seconds)} |"
        for a in r.added
    )
    allowed = rfm.best / GOAL - rfm.best
    k = max(sum(a.scheme != FOLD_FORCED for a in r.added), 1)
    return f"""Each other scheme added alone to the four RFM schemes (live batches, the same run;
best of {len(r.added[0].seconds)}, alternating). "path": a set with a time-driven axis other
than recency and the pyramid's window takes the fold (`Engine.foldable`).

| RFM schemes + | path | best s | added s | added / one RFM scheme | transitions | passes s |
|---|---|---:|---:|---:|---:|---|
{rows}

Per scheme, the four RFM schemes cost {one:.2f} s each and every shipped scheme together
{every.best / len(every.schemes):.2f} s each. The goal lets every scheme take at most
{rfm.best / GOAL:.2f} s: {allowed:.2f} s for the {k} others together, {allowed / k / one:.2f}× one
RFM scheme's cost each; together they add {every.best - rfm.best:.2f} s, \
{(every.best - rfm.best) / k / one:.2f}× each."""


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_schemes", description=__doc__)
    ap.add_argument("--events", type=int, default=60_000)
    ap.add_argument("--customers", type=int, default=6_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--profile", action="store_true", help="print a profile of every scheme")
    args = ap.parse_args(argv)
    r = bench(args.events, args.customers, args.repeats, args.profile)
    for shape in r.shapes:
        for run in (shape.rfm, shape.every):
            print(
                f"{shape.name} ({shape.batches} batches) {run.name}: {len(run.schemes)} schemes, "
                f"best {run.best:.2f} s ({r.events / run.best:,.0f} events/s), "
                f"{run.transitions:,} transitions, {run.valued:,} with value figures; "
                f"passes {[round(x, 2) for x in run.seconds]}"
            )
        print(f"{shape.name}: every/rfm throughput {shape.ratio:.2f} (goal ≥ {GOAL})")
    print(f"state bytes per customer: {r.state_bytes}")
    print(_added_text(r, next(x for x in r.shapes if x.name == "live")))
    if r.profile:
        print(r.profile)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())

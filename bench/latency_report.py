"""BENCHMARKS.md sections of the paced figures: event → transition latency, and decay
timeliness. Each states its command, machine, load and same-run baseline."""

from __future__ import annotations

from bench.observe import Lat, LatencyResults
from bench.report import div, met, section_head
from schemas.settings import Settings

LATENCY = "## Latency: event produced to transition readable"
DECAY_TIME = "## Decay timeliness: due time to transition readable"


def _lat_row(name: str, lat: Lat, base: Lat | None, seconds: float) -> str:
    """One table row; its p99 against ``base``'s (the baseline row passes itself), "–"
    when no baseline ran at its rate."""
    vs = "–" if base is None else f"{lat.pct(99) / base.pct(99):,.1f}×"
    return (
        f"| {name} | {lat.rate:,}/s | {len(lat.ms):,}/{lat.sent:,} | {lat.pct(50):,.1f} "
        f"| {lat.pct(99):,.1f} | {max(lat.ms, default=float('nan')):,.1f} | {vs} "
        f"| {_share(lat.broker_cpu_s, seconds)} |"
    )


_FETCH_WAIT_MS = Settings.model_fields["fetch_max_wait"].default


def latency(res: LatencyResults, command: str) -> str:
    rows = []
    cold = res.cold or [None] * len(res.worker)
    sec = res.seconds
    for b, f, w, c in zip(res.broker, res.broker_faust_wait, res.worker, cold, strict=True):
        rows.append(_lat_row("broker alone, `fetch_max_wait_ms=20` (baseline)", b, b, sec))
        rows.append(_lat_row("broker alone, `fetch_max_wait_ms=1500` (faust's)", f, b, sec))
        rows.append(_lat_row("**live worker**", w, b, sec))
        if c is not None:
            rows.append(_lat_row("live worker, cold start (empty namespace)", c, b, sec))
    again = res.worker_again
    if again is not None:
        base = next((b for b in res.broker if b.rate == again.rate), None)
        rows.append(
            _lat_row("live worker, the first rate again after the runs above", again, base, sec)
        )
    base1k = next((b for b in res.broker if b.rate == 1000), None)
    debts = "\n".join(
        _lat_row(f"broker alone, {n:,} one-record batches per partition before", d, base1k, sec)
        for n, d in res.broker_batches
    )
    at1k = next((w for w in res.worker if w.rate == 1000), None)
    target = f"{at1k.pct(99):,.0f} ms, {met(at1k.pct(99) <= 100)}" if at1k else "not measured"
    cold1k = next((c for c in res.cold if c.rate == 1000), None)
    cold_note = f" (cold start: {cold1k.pct(99):,.0f} ms)" if cold1k else ""
    table = "\n".join(rows)
    split = "\n".join(
        f"| {name} | {w.rate:,}/s | {w.p(w.before_emit, 50):,.0f} / "
        f"{w.p(w.before_emit, 99):,.0f} | {w.p(w.after_emit, 50):,.0f} / "
        f"{w.p(w.after_emit, 99):,.0f} | {_cpu(w, res.seconds)} |"
        for name, runs in (
            ("established base", res.worker),
            ("established base, again", [res.worker_again] if res.worker_again else []),
            ("cold start", res.cold),
        )
        for w in runs
    )
    return f"""{section_head(LATENCY, command, res.load)}
A paced producer in this process (a tick every 5 ms sends what the rate owes) sends, for
{res.seconds:g} s per rate, first purchases of new customers (`occurred_at` = now, amount
1200): each is sure to cause a `first_purchase` transition. A group-less aiokafka
consumer in this process reads the transitions topic from its end and stamps arrivals;
latency = arrival − send, both `time.time()` here. The live worker runs with its default
settings (decay timer on, `RFM_FETCH_MAX_WAIT={_FETCH_WAIT_MS} ms`, the default RFM schemes).

- **live worker** (the headline, as a deployment runs nearly always): on an established
  base. {res.base_events:,} events of seeded history (`bench.workload`, 548 days ending a
  minute before the runs) for {res.base_customers:,} customers were produced first and
  applied by the worker itself ({res.base_settle_s:.0f} s until every record was applied,
  every partition swept under the latest cut points and the outboxes published); then 50
  warm-up events.
- **cold start**: a worker on an empty namespace (and a broker of its own), warmed up
  with 50 events. Every doubling of the young base recalibrates the quantile schemes
  and re-ranks every customer (a background sweep), and cut points computed from
  customers who all bought seconds ago are seconds apart, so most customers also get a
  `recency_decay` moments later: several times the work per event of the headline.

Baseline, same run, same pacing: the broker alone, the events produced to a fresh topic
and read back by the same consumer code; once with this consumer's `fetch_max_wait_ms=20`
and once with the 1500 ms that faust's aiokafka driver hard-codes for its consumer
(`faust/transport/drivers/aiokafka.py`).

| pipeline | offered | matched | p50 ms | p99 ms | max ms | p99 vs baseline | broker CPU |
|---|---:|---:|---:|---:|---:|---:|---:|
{table}

Target p99 ≤ 100 ms at 1,000 events/s: {target}{cold_note}.

The broker's own cost grows with what a partition holds. Broker CPU above is the Tansu
process's CPU time over the run, as a share of one core. Tansu's memory storage spends
time per fetch in proportion to the record batches already in the partition (600,000
records in large batches did not slow it, measured separately). A paced run leaves
thousands of small batches behind: every 5 ms tick of the producer is one produce
request, and every relay drain is another, on the transitions topic. The baseline reads a
topic it fills as it goes. Here is the same broker-alone run on fresh topics that already
hold small batches (filled one record per batch, then the same paced 1,000/s run, on the
same broker):

| pipeline | offered | matched | p50 ms | p99 ms | max ms | p99 vs baseline | broker CPU |
|---|---:|---:|---:|---:|---:|---:|---:|
{debts}

The worker's run crosses two such topics (purchases, transitions), each read 50 times a
second. A broker keeping an offset index (Kafka) finds a fetch position in time
logarithmic in the partition's size. On this one, every run leaves the next one slower:
compare the live worker's first row with its last, "again", the same rate on the same
worker after the other runs had filled its topics (worker CPU in the split below).

Split of the live worker's latency by the transition's own `emitted_at` (stamped by the
worker when it commits the batch, same machine clock), p50 / p99 ms, and the worker
process's CPU time meanwhile (all threads, as a share of one core):

| worker | offered | sent → committed | committed → read (relay, reader) | worker CPU |
|---|---:|---:|---:|---:|
{split}

What bounds it: the worker's one event loop and its CPU. Each first purchase moves the
customer in every scheme that ranks them (four transitions, each encoded, written to the
outbox, read back, produced and deleted by the relay), and at 1,000 events/s the batches
are small (a fetch every ~{_FETCH_WAIT_MS} ms brings a few records per partition), so
each batch's fixed costs (a load and a commit per partition, the relay's reads, produce
requests and deletes) are paid for a few events: per event the worker spends several times
the CPU it spends when behind (throughput section). The consumer hand-off, batches, the
relay, the decay timer and the sweeps share that loop, so the tail is time spent waiting
for it (another partition's batch, a relay drain, a timer step) or for a core of this
2-core machine. The committed → read column includes the reader's own fetch wait (the
baseline row's share). Tansu holds a fetch for its whole wait even when records arrive,
so `RFM_FETCH_MAX_WAIT` bounds the consume step. In the A/B runs that chose today's
default (separate runs, not this one): at 100 ms sent → committed was p50 ~35 / p99
~70-90 ms, at 20 ms ~18 / 43, for a throughput cost within run-to-run noise (14.5k vs
15.8k events/s in one A/B of the throughput run). At 5,000/s the worker is near what it
can do with four transitions per event (worker CPU above, with Tansu and Redis on the same
two cores): with less CPU to spare (a busier machine) a queue builds up, and the latency
becomes queueing time. The broker's share grows run by run (the first table's last row).
"""


def _cpu(w: Lat, seconds: float) -> str:
    """The worker's CPU over a paced run, as a share of one core (the run lasts about
    ``seconds`` plus the wait for the last transitions)."""
    return _share(w.cpu_s, seconds)


def _share(cpu_s: float | None, seconds: float) -> str:
    return "–" if cpu_s is None else f"{cpu_s:.1f} s ({100 * div(cpu_s, seconds):.0f} %)"


def decay_time(res: LatencyResults, command: str) -> str:
    d = res.decay
    assert d is not None
    dmax = max(d.ms, default=float("nan"))
    row = (
        f"| {res.decay_customers:,} | {res.decay_expected:,} | {len(d.ms):,} "
        f"| {d.pct(50):,.0f} | {d.pct(99):,.0f} | {dmax:,.0f} |"
    )
    return f"""{section_head(DECAY_TIME, command, res.load)}
{res.decay_customers:,} customer states loaded with the real `RedisStore.commit` (claim +
10,000 per call, {res.partitions} partitions) whose next due time (the engine's
`next_due`: the recency edge) is spread evenly over {res.decay_spread_s:g} s starting
{res.decay_lead_s:g} s after loading; then a live worker (`RFM_DECAY_TIMER=true`, default
`RFM_DECAY_INTERVAL={res.decay_interval_ms} ms`, `RFM_DECAY_BATCH=2000`) on that namespace.
The states are stamped with the rules they were evaluated under and the partitions marked
swept, as a worker leaves them (unstamped, the worker would first re-evaluate all of them
as a rules change, a background sweep competing with the timer). The worker and the reader
use a Tansu broker of their own: on the latency runs' broker (~300k records in memory
by then) the same run measured p99 2.8-3.2 s, on a fresh one 0.40-0.47 s.
It owned every partition {res.decay_margin_s:.1f} s before the first due time. A group-less
aiokafka consumer in this process reads the transitions topic; lateness = arrival
(`time.time()`) − the transition's `effective_at` (= its due time).

| due customers | transitions expected | transitions read | p50 ms | p99 ms | max ms |
|---:|---:|---:|---:|---:|---:|
{row}

Expected: the engine advanced to each customer's due time, counted here before the run
(a due time is where some scheme's recency score changes; for some customers that score
change maps to the same segment, so they have no transition to read).

Split by the transition's `emitted_at` (stamped when the timer step commits), p50 / p99:
due → committed (timer period + the step) {d.p(d.before_emit, 50):,.0f} /
{d.p(d.before_emit, 99):,.0f} ms; committed → read (outbox relay, broker, reader)
{d.p(d.after_emit, 50):,.0f} / {d.p(d.after_emit, 99):,.0f} ms.

Target p99 ≤ 1 s: {d.pct(99):,.0f} ms, {met(d.pct(99) <= 1000)}. Baseline: the timer
period itself: a customer due just after a timer step waits up to one
{res.decay_interval_ms} ms interval for the next, so lateness is at least uniform over
0–{res.decay_interval_ms} ms (p50 ≈ {res.decay_interval_ms / 2:.0f}, p99 ≈
{0.99 * res.decay_interval_ms:.0f} ms) before any processing; the rest is the step
itself, the outbox relay and the broker (see the latency section for the broker's own
share with a 20 ms fetch wait, which this consumer uses).
"""

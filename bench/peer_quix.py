"""The quixstreams peer of issue #21: the RFM job as a team would write it on quixstreams.

    python -m bench.peer_quix --broker HOST:PORT --topic purchases --output transitions \
        --group g --total 200000 [--rules tests/rules/rfm8.toml] [--state-dir DIR]

An idiomatic quixstreams ``Application`` (what a competent team writes in an afternoon):
its own consumer group, ``auto_offset_reset="earliest"``, RocksDB state as it ships (one
store per partition, backed by a changelog topic that quixstreams creates), the default
processing guarantee (**at-least-once**, checkpoint every 5 s) and the default JSON
deserializer. Per customer (the message key) it keeps, in its state:

- ``rfm``: R as the last purchase time (epoch ms), F as the orders not fully refunded,
  M as the net spend in cents (refunds subtract), and the current segment;
- ``order:<order_id>``: what that order still holds (cents), so that a refund knows when
  it takes a whole order back (F drops by one) — the engine's definition of F.

Each event is classified on the 2×2×2 grid of the rules file (``tests/rules/rfm8.toml``:
recency 90d measured against the event's own time, F cut 2, M cut 1000 -> 8 segments;
R is high while ``asof - last < 90d``, F and M at or above their cut) and a transition
message (customer, scheme, from, to, at, event) goes to the output topic when the
segment changes (the first event of a customer moves it from ``null``).

What it does not do that rfm-stream does (an afternoon's app, stated so the comparison is
honest): no de-duplication of replayed events (at-least-once may count one twice after a
crash), a refund of an order it has not seen is dropped (rfm-stream holds it), no
validation beyond JSON decoding, no decay of R between events, one scheme only.

Timing, for ``bench.bench_peers``: the app counts processed records with quixstreams'
``on_message_processed`` hook; at the first it prints ``{"first": <time.monotonic()>}``
(CLOCK_MONOTONIC, the same clock in every process of the machine), and when it has seen
``--total`` records it prints one JSON line with its own counts and stops itself
(``Application.stop()``: quixstreams then commits the checkpoint at once, not at the next
5 s). The runner (:func:`run_quix`) then polls the broker and ends the clock when the
group's committed offsets cover every record: the same "state and offsets committed" point at which
``bench_live`` stops the worker's clock (Redis's committed offsets). The group join is
before the first record, so it is excluded, as for the worker.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

__all__ = [
    "Grid",
    "QuixRfmApp",
    "QuixRun",
    "RfmJob",
    "main",
    "peer_python",
    "quix_version",
    "run_quix",
    "topic_size",
]

ROOT = Path(__file__).resolve().parent.parent
QUIX_PIN = "quixstreams==3.28.1"
PEER_VENV = ROOT / ".venv-peers"


def peer_python() -> Path:
    """The Python the quixstreams app runs on: a venv of its own (``.venv-peers``, made on
    first use). quixstreams pins pydantic below the version the project is tested with
    (``<2.14``); installed beside the project it would change the software it is compared
    with (and the JSON Schemas the project exports)."""
    py = PEER_VENV / "bin" / "python"
    if not py.exists() or subprocess.run([py, "-c", "import quixstreams"]).returncode != 0:
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run([py, "-m", "pip", "install", "-q", QUIX_PIN], check=True)
    return py


def quix_version() -> str:
    """quixstreams' version in the peers' venv."""
    code = "import importlib.metadata as m; print(m.version('quixstreams'))"
    done = subprocess.run([peer_python(), "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()


RULES = ROOT / "tests" / "rules" / "rfm8.toml"
DAY_MS = 86_400_000


# ---------------------------------------------------------------------- the job
@dataclass(frozen=True)
class Grid:
    """The 2×2×2 grid: one cut per axis and the segment of each (R, F, M) cell."""

    name: str
    recency_ms: int
    frequency_cut: int
    monetary_cut_cents: int
    cells: dict[str, str]  # "212" -> "develop"

    @classmethod
    def from_rules(cls, path: Path, scheme: str = "rfm8") -> Grid:
        """Read the cuts from the same rules file rfm-stream's worker is given, so both
        classify on one grid (a duration cut is ``<n>d``, a money cut is in yuan)."""
        spec = tomllib.loads(path.read_text())["schemes"][scheme]
        r = str(spec["axes"]["r"]["cuts"][0])
        if not r.endswith("d"):
            raise ValueError(f"{path}: recency cut {r!r} is not in days")
        cells = {c: key for key, seg in spec["segments"].items() for c in seg["cells"]}
        return cls(
            scheme,
            int(r[:-1]) * DAY_MS,
            int(spec["axes"]["f"]["cuts"][0]),
            int(Decimal(str(spec["axes"]["m"]["cuts"][0])) * 100),
            cells,
        )

    def segment(self, asof_ms: int, last_ms: int, frequency: int, monetary_cents: int) -> str:
        r = "2" if asof_ms - last_ms < self.recency_ms else "1"
        f = "2" if frequency >= self.frequency_cut else "1"
        m = "2" if monetary_cents >= self.monetary_cut_cents else "1"
        return self.cells[r + f + m]


class RfmJob:
    """The stateful step: fold one event into its customer's state, return the
    transition to publish or None. Called by quixstreams with the key's ``State``."""

    def __init__(self, grid: Grid) -> None:
        self.grid = grid

    def __call__(self, event: dict[str, Any], state: Any) -> dict[str, Any] | None:
        at_ms = int(datetime.fromisoformat(event["occurred_at"]).timestamp() * 1000)
        cents = int(Decimal(event["amount"]) * 100)
        rfm = state.get("rfm") or {"last_ms": 0, "f": 0, "m": 0, "segment": None}
        order_key = f"order:{event.get('refund_of') or event['order_id']}"
        held = state.get(order_key)
        if event.get("kind") == "refund":
            if held is None:  # refund of an order this app never saw: dropped
                return None
            taken = min(cents, held)
            state.set(order_key, held - taken)
            rfm["m"] -= taken
            if held > 0 and held - taken <= 0:
                rfm["f"] -= 1
        else:
            if not held:
                rfm["f"] += 1
            state.set(order_key, (held or 0) + cents)
            rfm["m"] += cents
            rfm["last_ms"] = max(rfm["last_ms"], at_ms)
        segment = self.grid.segment(at_ms, rfm["last_ms"], rfm["f"], rfm["m"])
        before = rfm["segment"]
        rfm["segment"] = segment
        state.set("rfm", rfm)
        if segment == before:
            return None
        return {
            "customer_id": event["customer_id"],
            "scheme": self.grid.name,
            "from": before,
            "to": segment,
            "at": event["occurred_at"],
            "event_id": event["event_id"],
        }


class QuixRfmApp:
    """The Application and its one dataframe (purchases -> state -> transitions), with
    quixstreams' ``on_message_processed`` hook counting records: it announces the first,
    and after ``total`` stops the app (its checkpoint is then committed at once) and
    prints its own counts."""

    def __init__(self, args: argparse.Namespace) -> None:
        from quixstreams import Application  # only in the peers' venv (peer_python)

        self.total: int = args.total
        self.seen = 0
        self.t0 = 0.0
        self.cpu0 = 0.0
        self.app = Application(
            broker_address=args.broker,
            consumer_group=args.group,
            auto_offset_reset="earliest",
            state_dir=args.state_dir,
            on_message_processed=self._processed,
            # librdkafka's 45 s session makes Tansu hold the first join about half of it
            # (excluded from the timing, but slow); 6 s with a heartbeat every 2 s joins in
            # ~6 s and survives a busy machine (3 s with the default 3 s heartbeat did not)
            consumer_extra_config={
                "session.timeout.ms": args.session_timeout_ms,
                "heartbeat.interval.ms": args.session_timeout_ms // 3,
            },
            loglevel="WARNING",
        )
        purchases = self.app.topic(args.topic, value_deserializer="json")
        transitions = self.app.topic(args.output, value_serializer="json")
        sdf = self.app.dataframe(purchases)
        sdf = sdf.apply(RfmJob(Grid.from_rules(args.rules)), stateful=True)
        sdf = sdf.filter(lambda t: t is not None)
        sdf.to_topic(transitions)

    def run(self) -> None:
        self.app.run()

    def _processed(self, topic: str, partition: int, offset: int) -> None:
        if self.seen == 0:
            self.t0, self.cpu0 = time.monotonic(), time.process_time()
            print(orjson.dumps({"first": self.t0}).decode(), flush=True)
        self.seen += 1
        if self.seen == self.total:
            line = {
                "events": self.seen,
                "seconds": time.monotonic() - self.t0,
                "cpu_s": time.process_time() - self.cpu0,
            }
            print(orjson.dumps(line).decode(), flush=True)
            self.app.stop()


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.peer_quix", description=__doc__)
    ap.add_argument("--broker", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--total", type=int, required=True, help="records to process, then stop")
    ap.add_argument("--rules", type=Path, default=RULES)
    ap.add_argument("--state-dir", default=None, help="default: a new temp dir")
    ap.add_argument("--session-timeout-ms", type=int, default=6000)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rfm-bench-quix-") as tmp:
        args.state_dir = args.state_dir or tmp
        QuixRfmApp(args).run()
    return 0


# ---------------------------------------------------------------------- the runner
@dataclass
class QuixRun:
    events: int
    seconds: float  # first processed record -> the group's offsets committed on the broker
    cpu_s: float  # the app's own process time over its processing (its JSON line)
    join_s: float  # process start -> first record (group join, topic checks, state open)
    transitions: int = 0


async def run_quix(
    bootstrap: str,
    topic: str,
    output: str,
    last: dict[int, int],
    logdir: Path,
    tag: str,
    rules: Path = RULES,
) -> QuixRun:
    """The quixstreams app as a subprocess over the whole topic, in its own group."""
    from aiokafka import TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    total = sum(o + 1 for o in last.values())
    group = f"bench-quix-{tag}"
    log = logdir / f"quix-{tag}.log"
    argv = [str(peer_python()), "-m", "bench.peer_quix", "--broker", bootstrap, "--topic", topic]
    argv += ["--output", output, "--group", group, "--total", str(total), "--rules", str(rules)]
    t_start = time.monotonic()
    proc = _spawn(argv, log)
    tps = [TopicPartition(topic, p) for p in sorted(last)]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        first: float | None = None
        own: dict[str, Any] | None = None
        deadline = time.monotonic() + 900
        while True:
            lines = _json_lines(log)
            first = next((d["first"] for d in lines if "first" in d), None)
            own = next((d for d in lines if "events" in d), None)
            # the broker is asked only once the app has seen the last record (and stops
            # itself, committing at once): no extra load on it while the app runs
            if first is not None and own is not None:
                # the partitions named: Tansu drops the connection on "all of the group's"
                offsets = await admin.list_consumer_group_offsets(group, partitions=tps)
                done = {tp.partition: m.offset for tp, m in offsets.items() if tp.topic == topic}
                if all(done.get(p, -1) >= o + 1 for p, o in last.items()):
                    t_end = time.monotonic()
                    break
            if proc.poll() is not None and proc.returncode != 0:
                raise RuntimeError(f"quix app exited ({proc.returncode}):\n{_tail(log)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"quix app did not finish in 900 s:\n{_tail(log)}")
            await asyncio.sleep(0.02)
        assert first is not None and own is not None
        run = QuixRun(int(own["events"]), t_end - first, float(own["cpu_s"]), first - t_start)
        run.transitions = await topic_size(bootstrap, output)
        return run
    finally:
        await admin.close()
        if proc.poll() is None:
            try:
                proc.wait(30)  # it stops itself after the last record
            except subprocess.TimeoutExpired:
                proc.terminate()
                proc.wait(10)


def _spawn(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(log, "wb") as fh:  # the child keeps its own copy of the fd
        return subprocess.Popen(
            argv, env=env, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT
        )


async def topic_size(bootstrap: str, topic: str) -> int:
    """Records in ``topic``, counted by reading it to the end: Tansu's end offsets (ListOffsets)
    can fall a few records short of what a consumer reads (seen on the transitions topic)."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    n = 0
    try:
        while records := await consumer.getmany(timeout_ms=1000, max_records=10_000):
            n += sum(len(batch) for batch in records.values())
    finally:
        await consumer.stop()
    return n


def _json_lines(log: Path) -> list[dict[str, Any]]:
    out = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                out.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue
    return out


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


if __name__ == "__main__":
    sys.exit(main())

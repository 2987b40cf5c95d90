"""The no-op faust agent: the ceiling the live worker is measured against.

    RFM_* settings in the environment; BENCH_NOOP_TOTAL=<records>; python -m bench.noop_agent

The same faust app configuration as ``stream.live.faust_app.create_app`` (broker, session timeout,
``take_events(batch_max, within=batch_within)``, raw bytes, earliest offsets, one agent
over the purchases topic) with an agent that only counts. So the live worker's
events/s divided by this one's is what our processing costs on top of faust itself.

With ``BENCH_NOOP_DELIVERY=batched`` it has no agent: the records come through the
worker's own delivery path (:mod:`stream.live.delivery`, a fetch at a time) and are acked
and counted. That is the ceiling of the worker's path, as the agent is faust's.

It prints one JSON line when it has seen ``BENCH_NOOP_TOTAL`` records: the events
counted after its first batch, the seconds from that first batch to the last record
(the group join excluded, like the live worker's timing), and its process CPU seconds
over the same span. Then it keeps idling until it is terminated.
"""

from __future__ import annotations

import os
import sys
import time

import faust
import orjson

from schemas.settings import load_settings
from stream.live.delivery import Backlog, ack, install
from stream.live.faust_app import raw_app


def main() -> None:
    settings = load_settings()
    total = int(os.environ["BENCH_NOOP_TOTAL"])
    # faust's own fetch wait (no cap_fetch_wait): the topic is full before it starts
    app, topic = raw_app(settings, f"rfm-bench-noop-{settings.group_id}")
    batch_s = settings.batch_within / 1000
    seen = {"n": 0, "first_n": 0, "t0": 0.0, "cpu0": 0.0, "done": 0}

    def count(n: int) -> None:
        if seen["n"] == 0:
            seen["t0"], seen["cpu0"] = time.perf_counter(), time.process_time()
            seen["first_n"] = n
        seen["n"] += n
        if seen["n"] >= total and not seen["done"]:
            seen["done"] = 1
            line = {
                "events": seen["n"] - seen["first_n"],
                "seconds": time.perf_counter() - seen["t0"],
                "cpu_s": time.process_time() - seen["cpu0"],
            }
            print(orjson.dumps(line).decode(), flush=True)

    if os.environ.get("BENCH_NOOP_DELIVERY") == "batched":
        # the worker's own delivery path (stream.live.delivery), with nothing done per batch
        backlog = Backlog(4 * settings.batch_max)
        app.topics.add(topic)
        install(app.consumer, topic.get_topic_name(), backlog)

        @app.task
        async def take() -> None:
            while True:
                msgs = await backlog.take(settings.batch_max)
                ack(app.consumer, topic.get_topic_name(), msgs)
                count(len(msgs))

    else:

        async def consume(stream: faust.StreamT) -> None:
            async for events in stream.take_events(settings.batch_max, within=batch_s):
                count(len(events))

        app.agent(topic, name="purchases", concurrency=1)(consume)
    worker = faust.Worker(app, loglevel="warning", quiet=True)
    worker.execute_from_commandline()


if __name__ == "__main__":
    sys.exit(main())

"""The running figures (what each segment is worth, win-back) are answered only for a
namespace that kept them from its first commit (:func:`state.layout.check_figures_kept`).

They are kept by deltas in each commit: a namespace with customers from before them (any
namespace of an earlier release) would take a moving customer's old spend from a segment
that never held it (sums negative, then a 500 from the Pareto view) and credit returns to
cohorts that counted no entries (reviewer's findings 1 and 3). Such a namespace answers
503 naming the procedure; `rfm-stream segments` still prints the counts, with one line
saying why the values are missing; the figures of a namespace made by a worker answer.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from stream.api.lookup import Lookup
from stream.api.server import HttpServer
from tests.support.harness import ROOT, purchase
from tests.support.processor_rig import make_rig

pytestmark = pytest.mark.integration

NOW = datetime(2026, 6, 1, tzinfo=UTC)


async def test_a_namespace_from_before_the_figures_is_refused_them(redis_url: str) -> None:
    rig = await make_rig(redis_url, int(NOW.timestamp() * 1000))
    try:
        at = NOW - timedelta(days=30)
        await rig.feed([orjson.dumps(purchase(f"c{i}", i, at, "1200")) for i in range(4)])
        lookup = Lookup(
            rig.settings, rig.store, lambda: rig.processor.engine, lambda: 1, rig.clock.now_ms
        )
        server = HttpServer(0, str, dict, lookup)
        async with TestClient(TestServer(server.app())) as http:
            assert (await http.get("/segments/value")).status == 200  # made by a worker
            client = await rig.store.connect()
            await client.hdel(rig.store.keys.layout(), "figures")  # as an earlier release
            for path in ("/segments/value", "/winback"):
                r = await http.get(path)
                assert r.status == 503, path
                message = (await r.json())["error"]
                assert "predates them" in message and "backfill" in message, message
            assert (await http.get("/segments")).status == 200  # the counts still answer

        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        args = [sys.executable, "-m", "stream.cli", "segments", "--redis-url", redis_url]
        args += ["--namespace", rig.settings.namespace, "--rules", rig.settings.rules or ""]
        run = {"capture_output": True, "text": True, "cwd": ROOT, "env": env, "timeout": 60}
        done = await asyncio.to_thread(subprocess.run, args, **run)
        assert done.returncode == 0, done.stderr
        assert "predates them" in done.stderr and "rfm8" in done.stdout
        refused = await asyncio.to_thread(subprocess.run, [*args, "--json", "--value"], **run)
        assert refused.returncode == 2, refused.stderr
        last = refused.stderr.strip().splitlines()[-1]  # before it: no broker here to ask
        assert last.startswith("rfm-stream: ") and "predates them" in last, refused.stderr
        assert "Traceback" not in refused.stderr
    finally:
        await rig.close()

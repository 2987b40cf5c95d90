"""Static checks of the ``cluster`` profile of ``docker-compose.yml`` (no Docker here).

``docker compose --profile cluster up --scale worker=3`` with the README's
``RFM_REDIS_URL`` must give three cluster-mode Redis masters joined into one cluster by
a one-shot service, and a worker service that scales: no fixed name, a host port each,
its Redis URL (interpolated as compose does) naming exactly those masters. Without the
profile nothing changes: the default services carry no profile.
"""

from __future__ import annotations

import re
import shlex
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from schemas.settings import load_settings
from state.connection import CLUSTER_SCHEMES
from stream.demo.embedded import REDIS_TUNING
from tests.unit.project.test_compose import (
    COMPOSE,
    ROOT,
    SHELL,
    _command,
    _env,
    _published,
    _published_ranges,
)

PROFILE = "cluster"
README = (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]


def _nodes(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        n: s
        for n, s in services.items()
        if PROFILE in (s.get("profiles") or []) and "--cluster-enabled" in _command(s)
    }


def _flag(cmd: list[str], name: str) -> str:
    return cmd[cmd.index(name) + 1]


def _readme_cluster_url() -> str:
    """The RFM_REDIS_URL of the README's ``--profile cluster`` command."""
    found = re.search(
        r"RFM_REDIS_URL=\"?([^\s\"]+)\"?\s*\\\n"
        r"\s*docker compose --profile cluster up[^\n]*--scale worker=3",
        README,
    )
    assert found, "README shows no `RFM_REDIS_URL=… docker compose --profile cluster up`"
    return found.group(1)


def test_without_the_profile_nothing_changes(services: dict[str, dict[str, Any]]) -> None:
    for name in ("kafka", "redis", "worker"):
        assert not services[name].get("profiles"), f"{name} must run without a profile"
    url = _env(services["worker"])["RFM_REDIS_URL"]
    assert url == f"redis://:{SHELL['REDIS_PASSWORD']}@redis:6379/0"


def test_three_cluster_mode_masters_each_with_its_own_data(
    services: dict[str, dict[str, Any]],
) -> None:
    nodes = _nodes(services)
    assert len(nodes) == 3, sorted(nodes)
    volumes = set()
    for name, node in nodes.items():
        cmd = _command(node)
        assert str(node["image"]).split(":") == ["redis", "7"]
        assert cmd[0] == "redis-server"
        assert _flag(cmd, "--cluster-enabled") == "yes"
        assert "--cluster-config-file" in cmd
        assert _flag(cmd, "--appendonly") == "yes"
        assert cmd[cmd.index("--hash-max-listpack-value") :][:2] == REDIS_TUNING
        # clients are redirected to the announced name, which outlives container IPs
        assert _flag(cmd, "--cluster-announce-hostname") == name
        assert _flag(cmd, "--cluster-preferred-endpoint-type") == "hostname"
        assert "healthcheck" in node and node.get("restart") == "unless-stopped"
        assert not _published(node), f"{name}: cluster nodes are internal"
        (data,) = [v for v in node["volumes"] if str(v).endswith(":/data")]
        volumes.add(str(data).split(":")[0])
    assert len(volumes) == 3, "each master needs its own data volume"
    declared = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["volumes"]
    assert volumes <= set(declared)


def test_a_one_shot_service_joins_the_masters_once_they_are_healthy(
    services: dict[str, dict[str, Any]],
) -> None:
    nodes = _nodes(services)
    (init_name,) = [
        n
        for n, s in services.items()
        if PROFILE in (s.get("profiles") or []) and "--cluster create" in " ".join(_command(s))
    ]
    init = services[init_name]
    assert init.get("restart") == "no"
    for name in nodes:
        assert init["depends_on"][name]["condition"] == "service_healthy"
    script = " ".join(_command(init))
    create = script[script.index("--cluster create") :]
    words = shlex.split(create.replace("$$", "$"))
    assert _flag(words, "--cluster-replicas") == "0" and "--cluster-yes" in words
    # one address per master, on the port it listens on (names resolved to IPs first)
    for name, node in nodes.items():
        port = _flag(_command(node), "--port")
        assert f"$(getent hosts {name} | cut -d' ' -f1):{port}" in create.replace("$$", "$")
    assert "cluster_state:ok" in script, "a second `up` must not try to create it again"


def test_the_worker_scales(services: dict[str, dict[str, Any]]) -> None:
    worker = services["worker"]
    assert "container_name" not in worker and "hostname" not in worker
    for port, hosts in _published_ranges(worker).items():
        assert len(hosts) >= 3, f"container port {port}: one host port per replica"


def test_the_readme_url_points_the_workers_at_exactly_the_masters(
    services: dict[str, dict[str, Any]],
) -> None:
    written = _readme_cluster_url()
    assert written in COMPOSE.read_text(encoding="utf-8")  # same in both
    assert written.startswith("redis+cluster://:$REDIS_PASSWORD@"), "log in with .env's password"
    url = written.replace("$REDIS_PASSWORD", SHELL["REDIS_PASSWORD"])
    env = _env(services["worker"], {"RFM_REDIS_URL": url})
    settings = load_settings(**{k.removeprefix("RFM_").lower(): v for k, v in env.items()})
    assert settings.redis_url.get_secret_value() == url
    parts = urlsplit(url)
    assert parts.scheme in CLUSTER_SCHEMES
    hosts = parts.netloc.rpartition("@")[2]
    seeds = {h.rpartition(":")[0]: h.rpartition(":")[2] for h in hosts.split(",")}
    nodes = _nodes(services)
    assert set(seeds) == set(nodes)
    for name, node in nodes.items():
        assert seeds[name] == _flag(_command(node), "--port")

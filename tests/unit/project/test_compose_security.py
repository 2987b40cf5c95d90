"""Closed by default, as the compose file and the Dockerfile ship (issue #17, invariant 12):
every port published on this host's loopback only, Redis behind a password from a
never-committed ``.env``, the API's bind address and token, and exact dependency versions
in the image. Static checks (no Docker here), with the helpers of test_compose."""

from __future__ import annotations

import re
import shlex
import tomllib
from typing import Any

import pytest

from schemas.settings import load_settings
from tests.unit.project.test_compose import (
    PYPROJECT,
    ROOT,
    SHELL,
    Unset,
    _command,
    _dockerfile,
    _env,
    _published_ranges,
    _worker_env,
    services,
)

__all__ = ["services"]  # the module-scoped fixture, shared with test_compose


def test_every_published_port_is_bound_to_loopback(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for item in service.get("ports") or []:
            host_ip = item.get("host_ip") if isinstance(item, dict) else str(item).split(":")[0]
            assert host_ip == "127.0.0.1", f"{name} publishes {item} beyond this host"


def test_worker_api_listens_in_its_container_and_is_published_on_loopback_only(
    services: dict[str, dict[str, Any]],
) -> None:
    """The container binds its own interface (0.0.0.0: loopback inside a container can't
    be reached), and the host publishes that port on 127.0.0.1 and nowhere else."""
    env = _worker_env(services)
    assert env["RFM_HTTP_HOST"] == "0.0.0.0"
    assert load_settings(http_host=env["RFM_HTTP_HOST"]).http_host == "0.0.0.0"
    port = int(env["RFM_HTTP_PORT"])
    assert port in _published_ranges(services["worker"]), "the API's port is not published"
    for item in services["worker"]["ports"]:
        if isinstance(item, dict):
            host_ip, target = item.get("host_ip"), int(item["target"])
        else:
            host_ip, target = str(item).split(":")[0], int(str(item).split(":")[-1])
        if target == port:
            assert host_ip == "127.0.0.1", item


def test_worker_api_token_comes_from_env_and_none_is_committed(
    services: dict[str, dict[str, Any]],
) -> None:
    raw = services["worker"]["environment"]["RFM_HTTP_TOKEN"]
    assert raw == "${RFM_HTTP_TOKEN:-}", "the token must come from .env, not the file"
    assert load_settings(http_token=_worker_env(services)["RFM_HTTP_TOKEN"]).http_token is None
    token = "t0k3n-0123456789abcdef"
    given = _env(services["worker"], {"RFM_HTTP_TOKEN": token})["RFM_HTTP_TOKEN"]
    got = load_settings(http_token=given).http_token
    assert got is not None and got.get_secret_value() == token


def test_dockerfile_sets_the_http_host_a_container_needs() -> None:
    env: dict[str, str] = {}
    for kw, args in _dockerfile():
        if kw == "ENV":
            env.update(dict(w.split("=", 1) for w in shlex.split(args)))
    assert env.get("RFM_HTTP_HOST") == "0.0.0.0", env
    assert load_settings().http_host == "127.0.0.1", "outside a container: loopback"
    assert not any("TOKEN" in k or "PASSWORD" in k for k in env), "no secret in the image"


def test_redis_wants_the_password_from_env_and_none_is_committed(
    services: dict[str, dict[str, Any]],
) -> None:
    redises = {n: s for n, s in services.items() if str(s.get("image", "")).startswith("redis")}
    servers = {n: s for n, s in redises.items() if "redis-server" in _command(s)}
    assert {"redis", "redis-node-1", "redis-node-2", "redis-node-3"} <= set(servers)
    for name, service in servers.items():
        cmd = _command(service)
        assert cmd[cmd.index("--requirepass") + 1] == SHELL["REDIS_PASSWORD"], name
        if "--cluster-enabled" in cmd:  # replicas of a master log in to it too
            assert cmd[cmd.index("--masterauth") + 1] == SHELL["REDIS_PASSWORD"], name
        # without .env, compose refuses to start rather than run an open Redis
        with pytest.raises(Unset):
            _command(service, {"REDIS_PASSWORD": ""})
        health = " ".join(service["healthcheck"]["test"])
        assert "REDISCLI_AUTH" in health, name
    with pytest.raises(Unset):
        _env(services["worker"], {"REDIS_PASSWORD": ""})
    # the only password values in the file are interpolations of .env's
    for name, service in servers.items():
        raw = [str(w) for w in service["command"]]
        for flag in ("--requirepass", "--masterauth"):
            if flag in raw:
                assert raw[raw.index(flag) + 1].startswith("${REDIS_PASSWORD:?"), name
    for name, service in redises.items():
        for key, value in (service.get("environment") or {}).items():
            assert str(value).startswith("${REDIS_PASSWORD:?"), f"{name}: {key}"


def test_env_file_is_ignored_and_its_example_holds_no_password() -> None:
    assert ".env" in (ROOT / ".gitignore").read_text(encoding="utf-8").split()
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    values = dict(
        line.split("=", 1) for line in example.splitlines() if line and not line.startswith("#")
    )
    assert values == {"REDIS_PASSWORD": "", "RFM_HTTP_TOKEN": ""}


def test_the_image_installs_exact_versions_of_every_runtime_dependency() -> None:
    pyproject = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    pins = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep and version, f"not an exact pin: {line}"
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    for dep in pyproject["project"]["dependencies"]:
        name = re.split(r"[<>=!~\[; ]", dep, maxsplit=1)[0]
        assert re.sub(r"[-_.]+", "-", name).lower() in pins, f"{name} is not pinned"

"""Static checks of ``docker-compose.yml`` and ``Dockerfile`` (no Docker needed).

There is no Docker engine where the tests run, so these read the files and check that
the pieces agree with each other and with the code: KRaft Kafka whose advertised
listeners the worker can reach, Redis with AOF, and a worker whose ``RFM_*``
environment is exactly what :class:`schemas.settings.Settings` accepts.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from schemas.settings import Settings, load_settings
from stream.cli.main import build_parser
from stream.demo.embedded import REDIS_TUNING

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
PYPROJECT = ROOT / "pyproject.toml"

# The host ports the README documents.
KAFKA_HOST_PORT = 9094
REDIS_HOST_PORT = 6379
REDIS_DEFAULT_PORT = 6379

# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    doc = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(doc, dict), "docker-compose.yml is not a mapping"
    assert isinstance(doc.get("services"), dict), "docker-compose.yml has no services"
    return doc["services"]


_VAR = re.compile(r"\$\{(\w+)(?:(:?[-?])([^${}]*))?\}")
SHELL = {"REDIS_PASSWORD": "pw0123456789"}
"""What a user's ``.env`` sets (``.env.example``): the Redis password and nothing else."""


class Unset(LookupError):
    """``${VAR:?message}`` with VAR unset or empty: compose refuses to start."""


def _interpolate(value: str, shell: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}`` as of a shell
    environment ``shell``, innermost first (compose allows nesting them)."""

    def one(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2) or "", m.group(3) or ""
        if shell.get(name):
            return shell[name]
        if op.endswith("?"):
            raise Unset(f"{name}: {arg}")
        return arg if op.endswith("-") else ""

    while True:
        done = _VAR.sub(one, value)
        if done == value:
            return done
        value = done


def _env(service: dict[str, Any], shell: dict[str, str] | None = None) -> dict[str, str]:
    """A service's environment as a dict, from either compose syntax (list or map),
    interpolated as compose would with ``shell`` (default: what ``.env`` sets)."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        pairs = (item.split("=", 1) for item in raw)
        out = {k: v for k, v in pairs}
    else:
        out = {k: "" if v is None else str(v) for k, v in raw.items()}
    return {k: _interpolate(v, {**SHELL, **(shell or {})}) for k, v in out.items()}


def _command(service: dict[str, Any], shell: dict[str, str] | None = None) -> list[str]:
    raw = service.get("command") or []
    words = shlex.split(raw) if isinstance(raw, str) else [str(x) for x in raw]
    return [_interpolate(w, {**SHELL, **(shell or {})}) for w in words]


def _published_ranges(service: dict[str, Any]) -> dict[int, range]:
    """Container port -> host ports it may be published on (``8080-8089:8080``: ten)."""
    out: dict[int, range] = {}
    for item in service.get("ports") or []:
        if isinstance(item, dict):
            if "published" in item:
                lo, _, hi = str(item["published"]).partition("-")
                out[int(item["target"])] = range(int(lo), int(hi or lo) + 1)
            continue
        parts = str(item).split("/", 1)[0].split(":")
        if len(parts) >= 2:  # [ip:]host[-host]:container
            lo, _, hi = parts[-2].partition("-")
            out[int(parts[-1])] = range(int(lo), int(hi or lo) + 1)
    return out


def _published(service: dict[str, Any]) -> dict[int, int]:
    """Container port -> the (first) published host port, from short or long syntax."""
    return {port: hosts[0] for port, hosts in _published_ranges(service).items()}


def _listeners(value: str) -> dict[str, tuple[str, int]]:
    """``NAME://host:port,...`` -> {NAME: (host, port)}; an empty host stays empty."""
    out: dict[str, tuple[str, int]] = {}
    for item in value.split(","):
        name, _, address = item.strip().partition("://")
        host, _, port = address.rpartition(":")
        out[name] = (host, int(port))
    return out


def _kafka_env(services: dict[str, dict[str, Any]]) -> dict[str, str]:
    return _env(services["kafka"])


def _worker_env(services: dict[str, dict[str, Any]]) -> dict[str, str]:
    return _env(services["worker"])


def _redis_port(services: dict[str, dict[str, Any]]) -> int:
    cmd = _command(services["redis"])
    if "--port" in cmd:
        return int(cmd[cmd.index("--port") + 1])
    return REDIS_DEFAULT_PORT


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    if pending:
        logical.append(pending)
    out = []
    for entry in logical:
        keyword, _, args = entry.partition(" ")
        out.append((keyword.upper(), args.strip()))
    return out


def _exec_form(args: str) -> list[str]:
    return json.loads(args) if args.startswith("[") else shlex.split(args)


# --------------------------------------------------------------------------- services


def test_the_three_services_exist_and_no_zookeeper(services: dict[str, dict[str, Any]]) -> None:
    assert {"kafka", "redis", "worker"} <= set(services)
    for name, svc in services.items():
        assert "zookeeper" not in name.lower()
        assert "zookeeper" not in str(svc.get("image", "")).lower()


def test_kafka_runs_kraft_as_one_combined_node(services: dict[str, dict[str, Any]]) -> None:
    kafka = services["kafka"]
    env = _kafka_env(services)
    assert str(kafka["image"]).startswith("apache/kafka")
    assert {r.strip() for r in env["KAFKA_PROCESS_ROLES"].split(",")} == {"broker", "controller"}
    assert not any("ZOOKEEPER" in k for k in env)
    # the apache/kafka image refuses to start KRaft without a CLUSTER_ID, which must be
    # a base64url-encoded 16-byte UUID
    cluster_id = env["CLUSTER_ID"]
    assert len(cluster_id) == 22
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16

    # the single voter is this node, reached at this service's controller listener
    listeners = _listeners(env["KAFKA_LISTENERS"])
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert controller in listeners
    voter_id, _, voter_address = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].partition("@")
    assert voter_id == env["KAFKA_NODE_ID"]
    voter_host, _, voter_port = voter_address.rpartition(":")
    assert voter_host in {"kafka", kafka.get("hostname")}
    assert int(voter_port) == listeners[controller][1]


def test_kafka_listeners_are_consistent(services: dict[str, dict[str, Any]]) -> None:
    env = _kafka_env(services)
    listeners = _listeners(env["KAFKA_LISTENERS"])
    advertised = _listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    protocols = dict(
        item.split(":", 1) for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    assert set(listeners) <= set(protocols)
    # each advertised listener is one the broker binds, on the same port
    for name, (_, port) in advertised.items():
        assert name in listeners, name
        assert listeners[name][1] == port, name
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] not in advertised
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in advertised
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"].lower() == "true"
    assert "healthcheck" in services["kafka"]


def test_kafka_host_listener_is_published_on_its_advertised_port(
    services: dict[str, dict[str, Any]],
) -> None:
    env = _kafka_env(services)
    advertised = _listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    published = _published(services["kafka"])
    host_side = [port for host, port in advertised.values() if host in {"localhost", "127.0.0.1"}]
    assert host_side == [KAFKA_HOST_PORT]
    # a client on the host reconnects to the advertised address, so the published
    # host port must be the advertised port itself
    assert published.get(KAFKA_HOST_PORT) == KAFKA_HOST_PORT
    controller_port = _listeners(env["KAFKA_LISTENERS"])[env["KAFKA_CONTROLLER_LISTENER_NAMES"]][1]
    assert controller_port not in published


def test_redis_keeps_an_append_only_file(services: dict[str, dict[str, Any]]) -> None:
    redis = services["redis"]
    assert str(redis["image"]).split(":")[0] == "redis"
    assert str(redis["image"]).split(":")[1].startswith("7")
    cmd = _command(redis)
    assert cmd[cmd.index("--appendonly") + 1] == "yes"
    assert cmd[cmd.index("--appendfsync") + 1] == "everysec"
    # tuned like every redis-server the project starts (compact customer hashes)
    assert cmd[cmd.index("--hash-max-listpack-value") :][:2] == REDIS_TUNING
    assert any(str(v).endswith(":/data") for v in redis.get("volumes") or [])
    assert "healthcheck" in redis


def test_redis_is_published_on_the_documented_port(services: dict[str, dict[str, Any]]) -> None:
    assert _published(services["redis"]).get(_redis_port(services)) == REDIS_HOST_PORT


# --------------------------------------------------------------------------- worker


def test_worker_is_built_here_and_waits_for_healthy_dependencies(
    services: dict[str, dict[str, Any]],
) -> None:
    worker = services["worker"]
    build = worker["build"]
    context = build if isinstance(build, str) else build.get("context", ".")
    assert (ROOT / context / "Dockerfile").resolve() == DOCKERFILE
    assert _command(worker) == ["worker"]
    assert worker.get("restart") == "unless-stopped"
    depends = worker["depends_on"]
    assert isinstance(depends, dict), "depends_on must wait on health, not just on start"
    for name in ("kafka", "redis"):
        assert depends[name]["condition"] == "service_healthy"
        assert "healthcheck" in services[name]


def test_worker_environment_names_only_settings_fields(
    services: dict[str, dict[str, Any]],
) -> None:
    env = _worker_env(services)
    required = {
        "RFM_KAFKA_BOOTSTRAP",
        "RFM_REDIS_URL",
        "RFM_NAMESPACE",
        "RFM_PURCHASES_TOPIC",
        "RFM_TRANSITIONS_TOPIC",
        "RFM_DLQ_TOPIC",
        "RFM_PARTITIONS",
        "RFM_RECENCY",
        "RFM_FREQUENCY_CUT",
        "RFM_MONETARY_CUT",
        "RFM_CURRENCY",
        "RFM_LOG_LEVEL",
    }
    assert required <= set(env)
    for key in env:
        assert key.startswith("RFM_"), key
        assert key.removeprefix("RFM_").lower() in Settings.model_fields, key


def test_worker_environment_loads_as_settings(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in list(os.environ):
        if key.upper().startswith("RFM_"):
            monkeypatch.delenv(key)
    env = _worker_env(services)
    settings = load_settings(**{k.removeprefix("RFM_").lower(): v for k, v in env.items()})
    assert settings.kafka_bootstrap == env["RFM_KAFKA_BOOTSTRAP"]
    assert settings.redis_url.get_secret_value() == env["RFM_REDIS_URL"]
    assert settings.recency == 90 * 24 * 3600 * 1000


def test_worker_bootstrap_is_an_advertised_kafka_listener(
    services: dict[str, dict[str, Any]],
) -> None:
    advertised = set(_listeners(_kafka_env(services)["KAFKA_ADVERTISED_LISTENERS"]).values())
    servers = _worker_env(services)["RFM_KAFKA_BOOTSTRAP"].split(",")
    assert servers
    for server in servers:
        host, _, port = server.strip().rpartition(":")
        # inside the compose network the broker is reached by its service name
        assert host in {"kafka", services["kafka"].get("hostname")}, server
        assert (host, int(port)) in advertised, server


def test_worker_redis_url_points_at_the_redis_service(
    services: dict[str, dict[str, Any]],
) -> None:
    url = urlsplit(_worker_env(services)["RFM_REDIS_URL"])
    assert url.scheme == "redis"
    assert url.hostname == "redis"
    assert url.password == SHELL["REDIS_PASSWORD"], "the worker must log in with .env's password"
    assert url.hostname in services
    assert (url.port or REDIS_DEFAULT_PORT) == _redis_port(services)


@pytest.mark.parametrize("field", ["purchases_topic", "transitions_topic", "dlq_topic"])
def test_worker_topics_are_the_settings_defaults(
    services: dict[str, dict[str, Any]], field: str
) -> None:
    env = _worker_env(services)
    assert env[f"RFM_{field.upper()}"] == Settings.model_fields[field].default


# --------------------------------------------------------------------------- Dockerfile


def test_dockerfile_installs_the_project_and_runs_the_cli_unprivileged() -> None:
    assert DOCKERFILE.is_file()
    steps = _dockerfile()
    froms = [args for kw, args in steps if kw == "FROM"]
    # a patch release on a named Debian release: a rebuild doesn't move to another Python
    assert len(froms) == 1 and re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+", froms[0]), froms

    copied = " ".join(args for kw, args in steps if kw == "COPY").split()
    pyproject = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    packages = [
        p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    ]
    for needed in ["pyproject.toml", pyproject["project"]["readme"], *packages]:
        assert needed in copied or f"{needed}/" in copied, needed
    assert any("pip install --constraint constraints.txt ." in a for kw, a in steps if kw == "RUN")

    users = [args for kw, args in steps if kw == "USER"]
    assert users, "the image must not run as root"
    assert users[-1].split(":")[0] not in {"root", "0"}

    (entrypoint,) = [_exec_form(args) for kw, args in steps if kw == "ENTRYPOINT"]
    assert entrypoint == ["rfm-stream"]
    assert "rfm-stream" in pyproject["project"]["scripts"]
    (cmd,) = [_exec_form(args) for kw, args in steps if kw == "CMD"]
    assert cmd == ["worker"]
    # the default command is a real subcommand of the console script
    assert build_parser().parse_args(cmd).command == "worker"

"""The worker's HTTP server: the lookup API, ``/metrics``, ``/health``, OpenAPI.

``/metrics`` is rendered by :mod:`stream.api.metrics` from what the worker holds in
memory, so it stays available while Redis is down. The API routes
(:mod:`stream.api.lookup`) read Redis and answer 503 while it is down. Every error is
JSON: ``{"error": ..., "parameter": ...}``.

Closed by default (issue #17): it binds loopback unless ``RFM_HTTP_HOST`` says otherwise,
and with ``RFM_HTTP_TOKEN`` set every route but :data:`~stream.api.openapi.OPEN_ROUTES`
requires ``Authorization: Bearer <token>`` — a route added later is protected unless it is
opened on purpose. A matrix request that would read more than ``RFM_HTTP_MAX_DAYS``
day-hashes per partition is refused (400) before it reads anything: the reads share Redis
with the worker's hot path.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from mode import Service
from pydantic import SecretStr

from schemas.errors import StoreUnavailable
from segments.winback import Lapsed
from state.layout import FiguresNotKept
from stream.api.lookup import BadParameter, Lookup
from stream.api.members import Gone, Members, NotFound
from stream.api.openapi import OPEN_ROUTES, document
from stream.api.winback import lapsed_segments, winback

__all__ = ["HttpBindError", "HttpServer"]

log = logging.getLogger(__name__)

_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")
"""Headers of an aiohttp error that its JSON replacement keeps (what it says beyond its body)."""


class HttpServer(Service):
    """aiohttp on ``host``:``port`` (port 0: disabled), started and stopped with the worker.

    ``token``: the bearer token the data routes require (None: open); ``max_days``: the
    most day-hashes per partition one matrix request may read (None: no limit);
    ``on_bind_error``: told the one line when the address can't be bound (the worker ends
    the process with it), before :class:`HttpBindError` is raised.
    """

    def __init__(
        self,
        port: int,
        metrics: Callable[[], str],
        health: Callable[[], dict[str, Any]],
        lookup: Lookup | None = None,
        *,
        host: str = "127.0.0.1",
        token: SecretStr | None = None,
        max_days: int | None = None,
        on_bind_error: Callable[[str], None] | None = None,
        members: Members | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.port = port
        self.host = host
        self._metrics = metrics
        self._health = health
        self.lookup = lookup
        self.members = members
        """Segment-member snapshots (default: over the lookup's namespace)."""
        self._token = token.get_secret_value().encode() if token is not None else None
        self.max_days = max_days
        self._on_bind_error = on_bind_error
        self._runner: web.AppRunner | None = None
        self._lapsed: Lapsed | None = None
        self.bound: list[tuple[str, int]] = []
        """The addresses the server listens on, once started (what a test checks)."""

    def app(self) -> web.Application:
        app = web.Application(middlewares=[_json_errors, self._authorize])
        app.router.add_get("/metrics", self._get_metrics)
        app.router.add_get("/health", self._get_health)
        app.router.add_get("/openapi.json", self._get_openapi)
        app.router.add_get("/customers/{customer_id}", self._get_customer)
        app.router.add_get("/segments", self._get_segments)
        app.router.add_get("/segments/value", self._get_segment_values)
        app.router.add_get("/transitions/matrix", self._get_matrix)
        app.router.add_get("/winback", self._get_winback)
        app.router.add_post("/segments/{scheme}/{segment}/members", self._post_members)
        app.router.add_get("/segments/{scheme}/{segment}/members", self._get_members)
        return app

    async def on_start(self) -> None:
        if not self.port:
            return
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError as exc:
            # a configuration the worker can't run with (address not on this machine,
            # port taken): one line naming it, not a crashed service's traceback
            await self._runner.cleanup()
            self._runner = None
            reason = (
                f"http: cannot listen on {self.host}:{self.port} "
                f"(RFM_HTTP_HOST, RFM_HTTP_PORT): {exc.strerror or exc}"
            )
            if self._on_bind_error is not None:
                self._on_bind_error(reason)
            raise HttpBindError(reason) from None
        self.bound = [(a[0], a[1]) for a in self._runner.addresses]
        log.info(
            "http on %s:%d (API%s, /metrics, /health, /openapi.json)",
            self.host,
            self.port,
            " with bearer token" if self._token is not None else ", no token",
        )

    async def on_stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _get_metrics(self, _: web.Request) -> web.Response:
        return web.Response(text=self._metrics(), content_type="text/plain", charset="utf-8")

    async def _get_health(self, _: web.Request) -> web.Response:
        body = self._health()
        return web.json_response(body, status=200 if body["ok"] else 503)

    async def _get_openapi(self, _: web.Request) -> web.Response:
        schemes = None if self.lookup is None else [s.name for s in self.lookup.engine.schemes]
        doc = document(schemes, token=self._token is not None, max_days=self.max_days)
        return web.json_response(doc)

    def _api(self) -> Lookup:
        if self.lookup is None:
            raise web.HTTPServiceUnavailable(reason="the lookup API is not enabled here")
        return self.lookup

    async def _get_customer(self, request: web.Request) -> web.Response:
        found = await self._api().customer(request.match_info["customer_id"])
        if found is None:
            return _error(404, f"no customer {request.match_info['customer_id']!r}")
        return web.json_response(found)

    async def _get_segments(self, _: web.Request) -> web.Response:
        return web.json_response(await self._api().segments())

    async def _get_segment_values(self, request: web.Request) -> web.Response:
        q = request.query
        unknown = sorted(set(q) - {"scheme"})
        if unknown:
            raise BadParameter(unknown[0], "unknown parameter; use scheme")
        return web.json_response(await self._api().segment_values(q.get("scheme")))

    async def _get_matrix(self, request: web.Request) -> web.Response:
        q = request.query
        unknown = sorted(set(q) - {"scheme", "since", "until"})
        if unknown:
            raise BadParameter(unknown[0], "unknown parameter; use scheme, since, until")
        return web.json_response(
            await self._api().matrix(
                q.get("scheme"), q.get("since"), q.get("until"), max_days=self.max_days
            )
        )

    async def _get_winback(self, request: web.Request) -> web.Response:
        q = request.query
        unknown = sorted(set(q) - {"scheme", "period", "since"})
        if unknown:
            raise BadParameter(unknown[0], "unknown parameter; use scheme, period, since")
        lookup = self._api()
        if self._lapsed is None:  # the rules file is read once: lapsed marks are not hot
            self._lapsed = lapsed_segments(lookup)
        return web.json_response(
            await winback(lookup, q.get("scheme"), q.get("period"), q.get("since"), self._lapsed)
        )

    def _members(self) -> Members:
        if self.members is None:
            from stream.apply.clock import WallClock

            api = self._api()
            self.members = Members(api.settings, api.store, lambda: api.engine, WallClock().now_ms)
        return self.members

    async def _post_members(self, request: web.Request) -> web.Response:
        """Take (or reuse a fresh) snapshot of the segment's members: 201 / 200."""
        q = request.query
        unknown = sorted(set(q) - {"sort"})
        if unknown:
            raise BadParameter(unknown[0], "unknown parameter; use sort")
        m = request.match_info
        body, made = await self._members().snapshot(
            m["scheme"], m["segment"], q.get("sort", "value")
        )
        return web.json_response(body, status=201 if made else 200)

    async def _get_members(self, request: web.Request) -> web.Response:
        q = request.query
        unknown = sorted(set(q) - {"cursor", "limit"})
        if unknown:
            raise BadParameter(unknown[0], "unknown parameter; use cursor, limit")
        m = request.match_info
        page = await self._members().page(
            m["scheme"], m["segment"], q.get("cursor"), q.get("limit")
        )
        return web.json_response(page)

    @web.middleware
    async def _authorize(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        """With a token set, every path but :data:`OPEN_ROUTES` needs it (RFC 6750).

        ``/health`` and ``/metrics`` stay open because probes and Prometheus scrapers rarely
        carry a token and they hold no customer data (counts, lags, states of the worker);
        ``/openapi.json`` describes the routes and holds no data either. Unknown paths are
        behind the token too: without it, nothing says which routes exist. The comparison
        is :func:`hmac.compare_digest` so its time doesn't tell how much of a guess matched.
        """
        if self._token is None or request.path in OPEN_ROUTES:
            return await handler(request)
        scheme, _, given = request.headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise _unauthorized("this route needs Authorization: Bearer <RFM_HTTP_TOKEN>", None)
        if not hmac.compare_digest(given.strip().encode(), self._token):
            raise _unauthorized("the bearer token is wrong", "invalid_token")
        return await handler(request)


class HttpBindError(OSError):
    """The API can't listen where the settings say; the message is the one line shown."""


def _unauthorized(message: str, error: str | None) -> web.HTTPUnauthorized:
    """A 401 whose ``WWW-Authenticate`` names the scheme (RFC 9110 11.6.1, RFC 6750 3)."""
    challenge = 'Bearer realm="rfm-stream"' + (f', error="{error}"' if error else "")
    return web.HTTPUnauthorized(reason=message, headers={"WWW-Authenticate": challenge})


def _error(status: int, message: str, parameter: str | None = None) -> web.Response:
    body: dict[str, str] = {"error": message}
    if parameter is not None:
        body["parameter"] = parameter
    return web.json_response(body, status=status)


@web.middleware
async def _json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every error as JSON with a one-line message (and the parameter at fault)."""
    try:
        return await handler(request)
    except BadParameter as exc:
        return _error(400, str(exc), exc.name)
    except NotFound as exc:
        return _error(404, str(exc))
    except Gone as exc:
        return _error(410, str(exc), "cursor")
    except (StoreUnavailable, FiguresNotKept) as exc:
        return _error(503, str(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = exc.reason if exc.status != 404 else f"no route {request.path}"
        response = _error(exc.status, message)
        # what the error says beyond its body, e.g. the Allow of a 405 (RFC 9110 15.5.6)
        for name in _KEPT_HEADERS:
            if name in exc.headers:
                response.headers[name] = exc.headers[name]
        return response

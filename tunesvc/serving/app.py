"""The HTTP face of a server: the KServe v2 routes, /metrics, and what each failure
answers (a JSON {"error": ...} with its status; Retry-After on 503)."""

from __future__ import annotations

import time
from importlib import metadata
from dataclasses import dataclass, field

from aiohttp import web

from tunesvc.serving.errors import ServeError
from tunesvc.serving.metrics import ServerMetrics
from tunesvc.serving.pool import ModelPool
from tunesvc.serving.protocol import HEADER_LENGTH, encode_infer, model_metadata, parse_infer

SERVER_NAME = "tunesvc"
REASONS = {400: "bad_request", 404: "unknown_model", 413: "too_large", 500: "model_error",
           503: "unavailable"}


@dataclass
class ServerState:
    pools: dict[str, ModelPool]
    metrics: ServerMetrics = field(default_factory=ServerMetrics)
    max_request_bytes: int = 64 << 20
    draining: bool = False
    in_flight: int = 0

    def pool(self, name: str) -> ModelPool:
        if name not in self.pools:
            raise ServeError(404, f"unknown model {name!r}; served: {', '.join(self.pools)}")
        return self.pools[name]


def build_app(state: ServerState) -> web.Application:
    app = web.Application(client_max_size=state.max_request_bytes)
    handlers = _Handlers(state)
    for prefix in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        app.router.add_get(prefix, handlers.metadata)
        app.router.add_get(prefix + "/ready", handlers.model_ready)
        app.router.add_post(prefix + "/infer", handlers.infer)
    app.router.add_get("/v2", handlers.server_metadata)
    app.router.add_get("/v2/health/live", handlers.live)
    app.router.add_get("/v2/health/ready", handlers.ready)
    app.router.add_get("/metrics", handlers.metrics)
    return app


def error_response(exc: ServeError) -> web.Response:
    headers = {"Retry-After": str(exc.retry_after_sec)} if exc.retry_after_sec else None
    return web.json_response({"error": exc.message}, status=exc.status, headers=headers)


class _Handlers:
    def __init__(self, state: ServerState) -> None:
        self.state = state

    async def server_metadata(self, _: web.Request) -> web.Response:
        return web.json_response({"name": SERVER_NAME, "version": metadata.version("tunesvc"),
                                  "extensions": ["binary_tensor_data"]})

    async def live(self, _: web.Request) -> web.Response:
        return web.json_response({"live": True})

    async def ready(self, _: web.Request) -> web.Response:
        ready = not self.state.draining and all(p.ready for p in self.state.pools.values())
        return web.json_response({"ready": ready}, status=200 if ready else 503)

    async def model_ready(self, request: web.Request) -> web.Response:
        try:
            pool = self.state.pool(request.match_info["name"])
        except ServeError as exc:
            return error_response(exc)
        ready = pool.ready and not self.state.draining
        return web.json_response({"name": pool.model.name, "ready": ready},
                                 status=200 if ready else 503)

    async def metadata(self, request: web.Request) -> web.Response:
        try:
            pool = self.state.pool(request.match_info["name"])
            if pool.meta is None:
                raise ServeError(503, f"model {pool.model.name!r} is still loading", 1)
        except ServeError as exc:
            return error_response(exc)
        return web.json_response(model_metadata(pool.model.name, pool.meta, pool.model.share))

    async def metrics(self, _: web.Request) -> web.Response:
        return web.Response(body=self.state.metrics.text(),
                            headers={"Content-Type": "text/plain; version=0.0.4"})

    async def infer(self, request: web.Request) -> web.Response:
        name, start = request.match_info["name"], time.perf_counter()
        label = name if name in self.state.pools else ""
        self.state.in_flight += 1  # SIGTERM waits for it to reach 0
        try:
            response = await self._infer(request, name)
        except ServeError as exc:
            self.state.metrics.answered(label, exc.status, REASONS.get(exc.status, "other"))
            return error_response(exc)
        finally:
            self.state.in_flight -= 1
        self.state.metrics.answered(label, 200)
        self.state.metrics.latency.labels(label).observe(time.perf_counter() - start)
        return response

    async def _infer(self, request: web.Request, name: str) -> web.Response:
        pool = self.state.pool(name)
        if self.state.draining:
            raise ServeError(503, "the server is shutting down", 1)
        if pool.meta is None:
            raise ServeError(503, f"model {name!r} is still loading", 1)
        parsed = parse_infer(await _body(request, self.state.max_request_bytes),
                             request.headers.get(HEADER_LENGTH), pool.meta, name)
        result, pending = await pool.infer(parsed.arrays)
        self.state.metrics.queue.labels(name).observe(pending.dispatched - pending.enqueued)
        self.state.metrics.compute.labels(name).observe(result.compute_sec)
        if result.outputs is None:
            raise ServeError(500, f"model {name!r} failed on this request: {result.error}")
        body, headers = encode_infer(name, parsed, pool.meta, result.outputs)
        return web.Response(body=body, headers=headers)


async def _body(request: web.Request, limit: int) -> bytes:
    too_large = ServeError(413, f"request body over the server's limit of {limit} bytes "
                                "(--max-request-mb)")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise too_large from None

"""Start a server: place the replicas, start their processes, listen, and on SIGTERM or
SIGINT stop taking requests, let those in flight finish, then stop the processes."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from aiohttp import web

from tunesvc.errors import UserError
from tunesvc.serving.app import ServerState, build_app
from tunesvc.serving.placement import Placement, place
from tunesvc.serving.pool import ModelPool
from tunesvc.serving.spec import ServedModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    queue_size: int = 32  # per model: requests waiting beyond it get 503
    max_request_bytes: int = 64 << 20
    drain_sec: float = 30.0  # how long SIGTERM waits for requests in flight
    overlap: bool = False  # let replicas share cores (uncontrolled)


def placements_for(models: list[ServedModel], share_kind: str,
                   overlap: bool) -> dict[str, list[Placement]]:
    """Each model's replicas' slots (UserError when they do not fit the machine)."""
    slots = place(models, share_kind, overlap)
    return {m.name: [p for p in slots if p.model == m.name] for m in models}


def serve(models: list[ServedModel], target: str, share_kind: str, db_url: str,
          log_dir: Path, options: ServerOptions, announce: Callable[[str], None]) -> None:
    """Serve until SIGTERM or SIGINT."""
    placements = placements_for(models, share_kind, options.overlap)
    asyncio.run(_serve(models, placements, target, db_url, log_dir, options, announce))


async def _serve(models: list[ServedModel], placements: dict[str, list[Placement]], target: str,
                 db_url: str, log_dir: Path, options: ServerOptions,
                 announce: Callable[[str], None]) -> None:
    log_dir.mkdir(parents=True, exist_ok=True)
    pools = {m.name: ModelPool(m, placements[m.name], target, db_url, log_dir,
                               options.queue_size, announce) for m in models}
    state = ServerState(pools, max_request_bytes=options.max_request_bytes)
    runner = web.AppRunner(build_app(state), handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, options.host, options.port)
    await site.start()
    port = runner.addresses[0][1]
    announce(f"listening on http://{options.host}:{port} (KServe v2; metrics at /metrics)")
    for pool in pools.values():
        pool.start()
    stop, failures = _stop_on_signal(), []
    watch = asyncio.create_task(_first_loads(pools, stop, failures))
    await stop.wait()
    watch.cancel()
    announce("stopping: no new requests; waiting for those in flight")
    state.draining = True
    await _drained(state, options.drain_sec)
    await runner.cleanup()
    await asyncio.gather(*(pool.stop() for pool in pools.values()))
    if failures:
        raise UserError(failures[0])
    announce("stopped")


def _stop_on_signal() -> asyncio.Event:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


async def _first_loads(pools: dict[str, ModelPool], stop: asyncio.Event,
                       failures: list[str]) -> None:
    """Stop the server if a model fails its first load (a later failure is retried)."""
    for name, pool in pools.items():
        assert pool.first_load is not None
        error = await pool.first_load
        if error is not None:
            failures.append(f"model {name!r} did not load: {error}")
            stop.set()
            return


async def _drained(state: ServerState, limit_sec: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_sec
    while state.in_flight and loop.time() < deadline:
        await asyncio.sleep(0.05)
    if state.in_flight:
        log.warning("%d requests still in flight after %.0f s; stopping anyway",
                    state.in_flight, limit_sec)

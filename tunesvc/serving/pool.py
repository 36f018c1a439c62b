"""One served model: its replicas, a bounded queue in front of them, and the supervision
that restarts a replica whose process died.

A request waits in the queue until a ready replica takes it. A full queue, or a model with
no ready replica, answers 503 at once with Retry-After: memory stays bounded, and a killed
process costs its own requests a fast failure, not the others a hang.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from tunesvc.serving.errors import ServeError
from tunesvc.serving.messages import Infer, ModelMeta, Result
from tunesvc.serving.placement import Placement
from tunesvc.serving.replica import Replica, ReplicaDied
from tunesvc.serving.spec import ServedModel

log = logging.getLogger(__name__)
RETRY_AFTER_SEC = 1
MAX_BACKOFF_SEC = 30.0


@dataclass
class Pending:
    """A request in the queue: its inputs, when it arrived, and where its answer goes."""

    arrays: tuple[np.ndarray, ...]
    future: asyncio.Future[Result]
    enqueued: float = field(default_factory=time.perf_counter)
    dispatched: float = 0.0


class ModelPool:
    def __init__(self, model: ServedModel, placements: list[Placement], target: str,
                 db_url: str, log_dir: Path, queue_size: int,
                 announce: Callable[[str], None] = log.info) -> None:
        self.model = model
        self.announce = announce  # one line for the terminal per start, death and failure
        self.replicas = [Replica(model, p, target, db_url, log_dir / f"{p.model}-{p.replica}.log")
                         for p in placements]
        self.queue: asyncio.Queue[Pending] = asyncio.Queue(queue_size)
        self.meta: ModelMeta | None = None
        self.load_error: str | None = None
        self.restarts = 0
        self._ready: set[int] = set()
        self._next_id = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self.first_load: asyncio.Future[str | None] | None = None  # None, or why it failed

    @property
    def ready(self) -> bool:
        return bool(self._ready)

    def start(self) -> None:
        self.first_load = asyncio.get_running_loop().create_future()
        self._tasks = [asyncio.create_task(self._keep(i)) for i in range(len(self.replicas))]

    async def infer(self, arrays: tuple[np.ndarray, ...]) -> tuple[Result, Pending]:
        """Queue a request and wait for its answer; ServeError 503 when it cannot be had."""
        if not self._ready:
            raise ServeError(503, self._unready_reason(), RETRY_AFTER_SEC)
        pending = Pending(arrays, asyncio.get_running_loop().create_future())
        try:
            self.queue.put_nowait(pending)
        except asyncio.QueueFull:
            raise ServeError(503, f"model {self.model.name!r}: queue full "
                                  f"({self.queue.maxsize} waiting)", RETRY_AFTER_SEC) from None
        return await pending.future, pending

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(None, r.stop) for r in self.replicas))

    def _unready_reason(self) -> str:
        if self.load_error is not None:
            return f"model {self.model.name!r} failed to load: {self.load_error}"
        if self.restarts:
            return f"model {self.model.name!r} is restarting (its process died)"
        return f"model {self.model.name!r} is still loading"

    async def _keep(self, index: int) -> None:
        """Start replica `index`, serve from the queue while it lives, restart it when it dies."""
        replica, backoff = self.replicas[index], 1.0
        while not self._stopping:
            started = time.perf_counter()
            error = await replica.start()
            if self.first_load is not None and not self.first_load.done():
                self.first_load.set_result(error)  # a model that never loads is fatal
            if error is None:
                self.meta, self.load_error, backoff = replica.meta, None, 1.0
                self.announce(f"{replica.placement.label}: ready in "
                              f"{time.perf_counter() - started:.0f} s (pid {replica.pid}); "
                              f"kernels: {replica.meta.kernels if replica.meta else '?'}")
                await self._serve(index, replica)
                if not self._stopping:
                    self.announce(f"{replica.placement.label}: process {replica.pid} died; "
                                  "restarting")
            elif self.restarts == 0:
                self.load_error = error
                return
            else:
                self.load_error = error
                self.announce(f"{replica.placement.label}: failed to load: {error}; "
                              f"retrying in {backoff:.0f} s")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SEC)

    async def _serve(self, index: int, replica: Replica) -> None:
        self._ready.add(index)
        try:
            while True:
                pending = await self._next(replica)
                if pending is None:
                    return
                if not await self._dispatch(replica, pending):
                    return
        finally:
            self._ready.discard(index)
            self.restarts += 0 if self._stopping else 1
            if not self._ready:
                self._fail_queued()

    async def _next(self, replica: Replica) -> Pending | None:
        """The next request, or None if the replica died while waiting for one."""
        assert replica.died is not None
        getter = asyncio.ensure_future(self.queue.get())
        await asyncio.wait({getter, replica.died}, return_when=asyncio.FIRST_COMPLETED)
        if getter.done():
            pending = getter.result()
            if not replica.died.done():
                return pending
            _settle(pending, ServeError(503, f"model {self.model.name!r}: its process died; "
                                             "restarting", RETRY_AFTER_SEC))
            return None
        getter.cancel()
        return None

    async def _dispatch(self, replica: Replica, pending: Pending) -> bool:
        """Run one request on `replica`: False if the replica died doing it."""
        if pending.future.done():  # its client went away while it waited
            return True
        self._next_id += 1
        pending.dispatched = time.perf_counter()
        try:
            result = await replica.call(Infer(self._next_id, pending.arrays))
        except ReplicaDied:
            _settle(pending, ServeError(503, f"model {self.model.name!r}: its process died "
                                             "during the request; restarting", RETRY_AFTER_SEC))
            return False
        _settle(pending, result)
        return True

    def _fail_queued(self) -> None:
        while not self.queue.empty():
            _settle(self.queue.get_nowait(), ServeError(503, self._unready_reason(),
                                                        RETRY_AFTER_SEC))


def _settle(pending: Pending, outcome: Result | ServeError) -> None:
    if pending.future.done():  # the client went away
        return
    if isinstance(outcome, ServeError):
        pending.future.set_exception(outcome)
    else:
        pending.future.set_result(outcome)

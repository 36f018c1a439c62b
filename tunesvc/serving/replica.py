"""The server's side of one replica's process: start it, wait until it has loaded, send it
one request at a time, and notice at once when it dies (its pipe closes, its sentinel
fires), so that a killed process fails its request fast instead of hanging it.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tunesvc.serving.messages import Infer, Loaded, LoadFailed, ModelMeta, Result
from tunesvc.serving.placement import Placement
from tunesvc.serving.spec import ServedModel
from tunesvc.serving.worker import replica_main

log = logging.getLogger(__name__)
_SPAWN = multiprocessing.get_context("spawn")  # never fork a process that runs TVM threads
STOP_GRACE_SEC = 5.0


class ReplicaDied(Exception):
    """The replica's process ended while it held a request."""


class Replica:
    """One process serving one model at one placement; restartable."""

    def __init__(self, model: ServedModel, placement: Placement, target: str, db_url: str,
                 log_path: Path) -> None:
        self.model = model
        self.placement = placement
        self._args = (model, placement, target, db_url, log_path)
        self._io = ThreadPoolExecutor(1, thread_name_prefix=f"replica-{placement.label}")
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: multiprocessing.connection.Connection | None = None
        self.meta: ModelMeta | None = None
        self.died: asyncio.Future[None] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def start(self) -> str | None:
        """Start the process and wait until it has loaded: None, or why it failed."""
        parent, child = _SPAWN.Pipe()
        self._process = _SPAWN.Process(target=replica_main, args=(child, *self._args),
                                       daemon=True, name=f"tunesvc {self.placement.label}")
        self._process.start()
        child.close()  # so that the process's death closes the pipe
        self._conn = parent
        self.died = self._watch(self._process)
        try:
            message = await self._receive()
        except ReplicaDied:
            return f"its process exited with status {self._process.exitcode} while loading"
        if isinstance(message, LoadFailed):
            return message.error
        assert isinstance(message, Loaded)
        self.meta = message.meta
        return None

    async def call(self, request: Infer) -> Result:
        """Send one request and wait for its answer; ReplicaDied if the process ends."""
        assert self._conn is not None
        try:
            self._conn.send(request)
        except (BrokenPipeError, OSError):
            raise ReplicaDied() from None
        result = await self._receive()
        assert isinstance(result, Result)
        return result

    def stop(self) -> None:
        """Ask the process to exit (it finishes the request it holds), kill it if it will not."""
        if self._process is None:
            return
        try:
            if self._conn is not None:
                self._conn.send(None)
        except OSError:
            pass
        self._process.join(STOP_GRACE_SEC)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()

    async def _receive(self) -> object:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._io, self._conn.recv)  # type: ignore[union-attr]
        except (EOFError, OSError):
            raise ReplicaDied() from None

    def _watch(self, process: multiprocessing.process.BaseProcess) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        died: asyncio.Future[None] = loop.create_future()
        sentinel = process.sentinel

        def on_exit() -> None:
            loop.remove_reader(sentinel)
            if not died.done():
                died.set_result(None)

        loop.add_reader(sentinel, on_exit)
        return died

"""The process one replica of a served model runs in: held to its share before anything
loads TVM or CUDA, it loads the model, says so, then answers one request at a time.

It never raises across the pipe: a failed load or call is sent back as a one-line error
and the traceback goes to the model's log file.
"""

from __future__ import annotations

import logging
import time
from multiprocessing.connection import Connection
from pathlib import Path

from tunesvc.errors import first_line
from tunesvc.serving.messages import Infer, Loaded, LoadFailed, Result
from tunesvc.serving.placement import Placement
from tunesvc.serving.spec import ServedModel

log = logging.getLogger(__name__)


def replica_main(conn: Connection, model: ServedModel, placement: Placement, target: str,
                 db_url: str, log_path: Path) -> None:
    """Entry point of a replica's process (started with multiprocessing's spawn)."""
    _hold(placement)
    from workers.logs import output_to_file

    with output_to_file(log_path):
        logging.basicConfig(filename=log_path, level=logging.INFO,
                            format="%(asctime)s %(name)s %(levelname)s %(message)s")
        from tunesvc.serving.engines import load_engine

        try:
            engine = load_engine(model, target, db_url, placement.cores)
        except Exception as exc:  # any failure to load is reported, not raised
            log.exception("%s failed to load", placement.label)
            conn.send(LoadFailed(f"{model.source}: {first_line(exc)}"))
            return
        log.info("%s ready: %s", placement.label, engine.meta.kernels)
        conn.send(Loaded(engine.meta))
        _answer(conn, engine.predict)


def _hold(placement: Placement) -> None:
    """CPU: every thread on the replica's cores, one TVM thread per core. GPU: the MPS
    percentage, set before any CUDA context exists."""
    if placement.cores:
        from workers.shares.cpu import pin_cpu

        pin_cpu(placement.cores)
    else:
        import os

        os.environ.update(placement.share.backend.worker_env(placement.share))


def _answer(conn: Connection, predict) -> None:  # type: ignore[no-untyped-def]
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the server went away
            return
        if not isinstance(message, Infer):
            return
        conn.send(_call(predict, message))


def _call(predict, message: Infer) -> Result:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    try:
        outputs = tuple(predict(message.arrays))
    except Exception as exc:  # a failed call is an answer, and the process goes on
        log.exception("request %d failed", message.request_id)
        return Result(message.request_id, None, first_line(exc), time.perf_counter() - start)
    return Result(message.request_id, outputs, None, time.perf_counter() - start)

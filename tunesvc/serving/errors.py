"""A request the server cannot answer, with the HTTP status that says why."""

from __future__ import annotations


class ServeError(Exception):
    """`status` 400/404/413/503..., a one-line `message`, and for 503 when to retry."""

    def __init__(self, status: int, message: str, retry_after_sec: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after_sec = retry_after_sec

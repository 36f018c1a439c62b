"""The error a user can fix: the CLI prints its message on one line, with no traceback."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager


class UserError(Exception):
    """Bad input or an unusable environment, described in words the user can act on."""


def first_line(exc: BaseException) -> str:
    """An exception's message cut to its first line (its type name if it has none): what a
    UserError quotes from a library's error, the rest going to the log."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class ModelStepError(UserError):
    """A model that fails at one step (preparing, importing, compiling, loading...): the
    message names the model, the step and the cause; the traceback is in the log."""


@contextmanager
def model_step(step: str, model: str) -> Iterator[None]:
    """Turn any failure inside into a ModelStepError naming `model` and `step` (a
    UserError raised inside passes through unchanged)."""
    try:
        yield
    except UserError:
        raise
    except Exception as exc:  # TVM, onnx and onnxruntime raise many types
        logging.getLogger(__name__).exception("%s: %s failed", model, step)
        raise ModelStepError(f"{model}: {step} failed: {first_line(exc)}") from exc

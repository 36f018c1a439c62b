"""A dataclass back from the plain JSON `tunesvc.report.text.to_json` wrote: nested
dataclasses, lists, tuples, dicts and optional fields rebuilt from the field types."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


def decode(cls: type[T], data: Any) -> T:
    """`data` (parsed JSON) as an instance of the dataclass `cls`; keys it does not know
    are left out, fields with defaults may be missing (TypeError if another one is)."""
    return typing.cast(T, _value(cls, data))


def _value(kind: Any, data: Any) -> Any:
    if data is None:
        return None
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        return _value(next(a for a in args if a is not type(None)), data)
    if dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        return kind(**{f.name: _value(hints[f.name], data[f.name])
                       for f in dataclasses.fields(kind) if f.init and f.name in data})
    if origin is list:
        return [_value(args[0], item) for item in data]
    if origin is tuple:
        return tuple(_value(args[0], item) for item in data)
    if origin is dict:
        return {key: _value(args[1], item) for key, item in data.items()}
    return data

"""Output types given in code: a pydantic model, or any type pydantic validates (``list[Model]``, ``Literal``,
an ``Enum``, ``int``...).

A model is used as it is. Any other type is carried in a one-field wrapper model, as instructor's adapters do:
the grammar, the tool schema and ``{{ output_schema }}`` all describe ``{"answer": <the type>}``, and parsing
hands back the value inside. ``str`` means free text: no schema at all.
"""

from __future__ import annotations

import enum
import json
import threading
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

from pydantic import BaseModel, TypeAdapter, ValidationError, create_model
from pydantic.errors import PydanticSchemaGenerationError, PydanticUserError

from promptkit.errors import OutputSchemaError

__all__ = [
    "ANSWER_FIELD",
    "OutputWrapper",
    "output_model_for",
    "output_type_key",
    "output_type_name",
    "unwrap_output",
]

ANSWER_FIELD = "answer"
_lock = threading.Lock()
_wrappers: dict[Any, type[OutputWrapper]] = {}


class OutputWrapper(BaseModel):
    """The one-field model (``{"answer": value}``) that carries an output type that is not a model itself.

    ``output_type`` is the wrapped type; :meth:`unwrap` gives the value. Parsing also accepts the bare value
    (``[...]`` for ``{"answer": [...]}``): a model without a grammar or a tool schema often writes just that.
    """

    output_type: ClassVar[Any] = None

    def unwrap(self) -> Any:
        return getattr(self, ANSWER_FIELD)

    @classmethod
    def from_bare_json(cls, text: str) -> OutputWrapper | None:
        """The wrapper around ``text`` read as the bare value, or None when it is not one."""
        try:
            data = json.loads(text)
        except ValueError:
            return None
        if isinstance(data, dict) and ANSWER_FIELD in data:
            return None  # it is the wrapper's shape: its own errors are the ones to report
        try:
            return cls.model_validate({ANSWER_FIELD: data})
        except ValidationError:
            return None


def output_type_key(output_type: Any) -> Any:
    """A dict key for ``output_type``: the type itself, except where ``Annotated`` metadata is compared by
    identity (``Field(max_length=3)`` is a new object on every call): there, by its text."""
    if _annotated(output_type):
        return _structure(output_type)
    try:
        hash(output_type)
    except TypeError:
        return ("unhashable", repr(output_type))
    return output_type


def _annotated(tp: Any) -> bool:
    return get_origin(tp) is Annotated or any(_annotated(a) for a in get_args(tp))


def _structure(tp: Any) -> Any:
    origin = get_origin(tp)
    args = get_args(tp)
    if origin is Annotated:
        return ("Annotated", _structure(args[0]), repr(args[1:]))
    if origin is not None:
        return (origin, tuple(_structure(a) for a in args))
    if isinstance(tp, type):
        return tp
    try:
        hash(tp)
    except TypeError:
        return ("unhashable", repr(tp))
    return (type(tp), tp)  # Literal values: 1 and True are different answers


def output_type_name(output_type: Any) -> str:
    """A readable name for an output type: ``Invoice``, ``list[Invoice]``, ``Literal['a', 'b']``."""
    if isinstance(output_type, type) and get_origin(output_type) is None:
        return output_type.__qualname__
    if get_origin(output_type) is Annotated:
        return output_type_name(get_args(output_type)[0])
    text = repr(output_type).replace("typing.", "")
    for arg in _all_args(output_type):
        if isinstance(arg, type) and arg.__module__ not in ("builtins", "typing"):
            text = text.replace(f"{arg.__module__}.{arg.__qualname__}", arg.__qualname__)
    return text


def _all_args(tp: Any) -> list[Any]:
    out: list[Any] = []
    for arg in get_args(tp):
        out.append(arg)
        out.extend(_all_args(arg))
    return out


def _label(tp: Any) -> str:
    """A class-name part for the wrapper of ``tp``: InvoiceList, Choice, Color, Int."""
    origin = get_origin(tp)
    args = [a for a in get_args(tp) if a is not type(None)]
    if origin is Literal:
        return "Choice"
    if origin is Annotated:
        return _label(args[0])
    if origin is Union or (origin is not None and type(tp).__name__ == "UnionType"):
        return "Or".join(_label(a) for a in args[:3])
    if isinstance(origin, type) and issubclass(origin, (list, tuple, set, frozenset, Sequence)) and args:
        return f"{_label(args[0])}List"
    if isinstance(origin, type) and issubclass(origin, dict):
        return "Mapping"
    name = getattr(tp, "__name__", "")
    if isinstance(name, str) and name.isidentifier():
        return name[:1].upper() + name[1:]
    return "Value"


def output_model_for(output_type: Any, *, location: str | None = None) -> type[BaseModel] | None:
    """The pydantic model an answer of ``output_type`` is written as.

    A ``BaseModel`` subclass is its own model; ``str`` is free text (None); any other type pydantic can
    validate gets a cached :class:`OutputWrapper` subclass with one ``answer`` field of that type. Raises
    ``OutputSchemaError`` for a type pydantic cannot turn into a JSON schema.
    """
    if output_type is str:
        return None
    if (
        isinstance(output_type, type)
        and get_origin(output_type) is None
        and issubclass(output_type, BaseModel)
    ):
        return output_type
    key = output_type_key(output_type)
    cached = _wrappers.get(key)
    if cached is not None:
        return cached
    where = location or "output type"
    if output_type is None or isinstance(output_type, (str, int, float, bool, dict, list)):
        raise OutputSchemaError(
            f"output must be a type (a pydantic model, list[Model], Literal[...], an Enum...), "
            f"not the value {output_type!r}",
            location=where,
        )
    try:
        TypeAdapter(output_type).json_schema()
    except (PydanticSchemaGenerationError, PydanticUserError, TypeError) as exc:
        raise OutputSchemaError(
            f"output type {output_type_name(output_type)} has no JSON schema: {exc}".splitlines()[0],
            location=where,
        ) from None
    name = _label(output_type) + "Answer"
    doc = f"The answer ({output_type_name(output_type)}) in the field {ANSWER_FIELD!r}."
    if isinstance(output_type, type) and issubclass(output_type, enum.Enum) and output_type.__doc__:
        doc = f"{doc} {output_type.__doc__.strip()}"
    wrapper: type[OutputWrapper] = create_model(  # type: ignore[call-overload]
        name, __base__=OutputWrapper, __doc__=doc, **{ANSWER_FIELD: (output_type, ...)}
    )
    wrapper.output_type = output_type
    with _lock:
        return _wrappers.setdefault(key, wrapper)


def unwrap_output(value: Any) -> Any:
    """The value inside a wrapper; anything else unchanged."""
    return value.unwrap() if isinstance(value, OutputWrapper) else value

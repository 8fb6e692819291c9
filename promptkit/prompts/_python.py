"""Templates defined in Python, beside the code that uses them (like DSPy signatures).

    @template(output=Invoice)
    class extract_invoice:
        \"\"\"Extract the invoice from the email. Amounts are in {{ currency }}.\"\"\"

        email: str = Field(description="The whole email, headers included")
        currency: Literal["EUR", "USD"] = "EUR"

    @template(output=Invoice)                   # the same, as a function: its parameters are the inputs
    def extract_invoice(email: str, currency: Literal["EUR", "USD"] = "EUR"):
        \"\"\"Extract the invoice from the email. Amounts are in {{ currency }}.\"\"\"

The docstring is the instruction (a Jinja template, like a YAML message), the annotated attributes are the
inputs (their defaults, ``Field`` descriptions and length/range bounds included), and ``output`` is the answer's
type. The result is an ordinary :class:`Template` (``Template[Invoice]`` for type checkers), with validated
inputs and a content hash, built through the same loader as a YAML file.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypeVar, get_args, get_origin, overload

import annotated_types
from pydantic import BaseModel, create_model
from pydantic.fields import FieldInfo

from promptkit.errors import TemplateLoadError
from promptkit.prompts._formats import TextFormat
from promptkit.prompts._jinja import undeclared_variables
from promptkit.prompts._output import output_model_for
from promptkit.prompts._template import Template

__all__ = ["template"]

T = TypeVar("T")
_SCALARS: dict[Any, str] = {str: "string", bool: "boolean", int: "integer", float: "number"}
_BOUNDS = {
    annotated_types.MinLen: ("min_length", "min_length"),
    annotated_types.MaxLen: ("max_length", "max_length"),
    annotated_types.Ge: ("minimum", "ge"),
    annotated_types.Le: ("maximum", "le"),
}


Source = Callable[..., Any]  # a class, or a function whose parameters are the inputs


@overload
def template(source: Source, /) -> Template[str]: ...
@overload
def template(
    source: Source,
    /,
    *,
    output: type[T],
    name: str | None = None,
    version: str = "1.0.0",
    tags: Mapping[str, Sequence[str]] | None = None,
    examples: Sequence[Mapping[str, Any]] = (),
) -> Template[T]: ...
@overload
def template(
    *,
    output: type[T],
    name: str | None = None,
    version: str = "1.0.0",
    tags: Mapping[str, Sequence[str]] | None = None,
    examples: Sequence[Mapping[str, Any]] = (),
) -> Callable[[Source], Template[T]]: ...
@overload
def template(
    source: Source | None = None,
    /,
    *,
    output: Any = str,
    name: str | None = None,
    version: str = "1.0.0",
    tags: Mapping[str, Sequence[str]] | None = None,
    examples: Sequence[Mapping[str, Any]] = (),
) -> Any: ...
def template(
    source: Source | None = None,
    /,
    *,
    output: Any = str,
    name: str | None = None,
    version: str = "1.0.0",
    tags: Mapping[str, Sequence[str]] | None = None,
    examples: Sequence[Mapping[str, Any]] = (),
) -> Any:
    """Turn a class (or a function) into a :class:`Template`: docstring = instruction, fields = inputs.

    A class's annotated attributes are the inputs, or a function's parameters; defaults, ``Field(...)``
    descriptions and length/range bounds count. Used as ``@template`` / ``@template(output=...)``, or called:
    ``template(Extract, output=Invoice)``. (mypy ignores what a class decorator returns, so with mypy call it,
    or decorate a function; pyright types every form.)

    ``output`` is the answer's type: ``str`` (free text, the default), a pydantic model, or any type pydantic
    validates (``list[Model]``, ``Literal[...]``, an ``Enum``...). ``name`` defaults to the class or function
    name in snake_case; ``examples`` are ``{"inputs": {...}, "output": ...}`` mappings, shown as earlier turns.

    The prompt: the instruction (with the output's JSON schema appended for a structured output) as the system
    message, then a user message listing each input the instruction does not already use, as ``Label:`` and
    its value. With examples every input is listed, in the examples and in the question alike. When the
    instruction uses every input, it is the one user message.
    """

    def build(target: Source) -> Template[Any]:
        return _build(target, output, name, version, tags, examples)

    return build(source) if source is not None else build


def _where(source: Any) -> str:
    try:
        _, first = inspect.getsourcelines(source)
        return f"{inspect.getsourcefile(source)}:{first}"
    except (OSError, TypeError):
        return f"{getattr(source, '__module__', '?')}.{getattr(source, '__qualname__', source)}"


def _snake(name: str) -> str:
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
    return re.sub(r"[^a-z0-9_-]+", "_", text).strip("_-") or "template"


def _build(
    cls: Source,
    output: Any,
    name: str | None,
    version: str,
    tags: Mapping[str, Sequence[str]] | None,
    examples: Sequence[Mapping[str, Any]],
) -> Template[Any]:
    where = _where(cls)
    if not (isinstance(cls, type) or inspect.isfunction(cls)):
        raise TemplateLoadError(
            f"@template takes a class or a function, not {type(cls).__name__}", location=where
        )
    doc = inspect.cleandoc(cls.__doc__ or "")
    if not doc:
        raise TemplateLoadError(
            f"template {cls.__qualname__} needs a docstring: it is the instruction", location=where
        )
    inputs = {key: _input_spec(key, info, where) for key, info in _fields(cls, where).items()}
    try:
        used = undeclared_variables(doc)
    except Exception:  # noqa: BLE001 - a syntax error is reported, with its line, by the loader below
        used = set()
    listed = list(inputs) if examples else [key for key in inputs if key not in used]

    model = output_model_for(output, location=where)
    instruction = doc
    if model is not None and issubclass(model, TextFormat):
        instruction += "\n\n{{ output_schema }}"
    elif model is not None:
        instruction += "\n\nReply with only JSON that matches this schema:\n{{ output_schema }}"

    messages: list[dict[str, Any]] = []
    if listed:
        messages.append({"role": "system", "content": instruction})
        if examples:
            example_user = _sections(listed, inputs, "example.inputs.")
            messages.append(
                {
                    "examples": [
                        {"role": "user", "content": example_user},
                        {"role": "assistant", "content": "{{ example.output_json }}"},
                    ]
                }
            )
        messages.append({"role": "user", "content": _sections(listed, inputs, "")})
    else:
        messages.append({"role": "user", "content": instruction})
    data: dict[str, Any] = {
        "name": name or _snake(cls.__name__),
        "version": version,
        "description": doc.split("\n\n", 1)[0].replace("\n", " "),
        "inputs": inputs,
        "messages": messages,
    }
    if tags:
        data["tags"] = {kind: list(values) for kind, values in tags.items()}
    if examples:
        data["examples"] = [dict(example) for example in examples]
    return Template.from_dict(data, where, output=None if output is str else output)


def _fields(cls: Source, where: str) -> dict[str, FieldInfo]:
    """The inputs as pydantic fields (defaults and ``Field(...)`` read by pydantic): a class's annotated
    attributes, or a function's parameters."""
    try:
        hints = typing.get_type_hints(cls, include_extras=True)
    except Exception as exc:  # noqa: BLE001 - an unresolvable annotation, named in the error
        raise TemplateLoadError(
            f"template {cls.__qualname__}: cannot read its annotations: {exc}", location=where
        ) from None
    definitions: dict[str, Any] = {}
    if isinstance(cls, type):
        for key, hint in hints.items():
            if key.startswith("_") or get_origin(hint) is typing.ClassVar:
                continue
            definitions[key] = (hint, cls.__dict__.get(key, ...))
    else:
        for key, param in inspect.signature(cls).parameters.items():
            if key not in hints:
                raise TemplateLoadError(f"input {key!r} needs a type annotation", location=where)
            default = ... if param.default is inspect.Parameter.empty else param.default
            definitions[key] = (hints[key], default)
    model: type[BaseModel] = create_model(f"{cls.__name__}Fields", **definitions)  # type: ignore[call-overload]
    return dict(model.model_fields)


def _input_spec(key: str, info: FieldInfo, where: str) -> dict[str, Any]:
    annotation = info.annotation
    args = get_args(annotation)
    nullable = type(None) in args and len(args) == 2
    if nullable:
        annotation = next(a for a in args if a is not type(None))
    spec = _type_spec(key, annotation, where)
    if info.description:
        spec["description"] = info.description
    for marker in info.metadata:
        for kind, (spec_key, attr) in _BOUNDS.items():
            if isinstance(marker, kind):
                spec[spec_key] = getattr(marker, attr)
    if info.default_factory is not None:
        spec["default"] = info.default_factory()  # type: ignore[call-arg]
    elif not info.is_required():
        spec["default"] = info.default
    elif nullable:
        spec["default"] = None  # `x: str | None` without a default: optional, None when left out
    return spec


def _type_spec(key: str, annotation: Any, where: str) -> dict[str, Any]:
    if annotation in _SCALARS:
        return {"type": _SCALARS[annotation]}
    origin = get_origin(annotation)
    if annotation is dict or origin is dict:
        return {"type": "object"}
    if annotation is list or origin in (list, Sequence):
        args = get_args(annotation)
        return (
            {"type": "array", "items": _type_spec(f"{key}[]", args[0], where)} if args else {"type": "array"}
        )
    if origin is Literal:
        values = list(get_args(annotation))
        kinds = {_SCALARS.get(type(v)) for v in values}
        if len(kinds) == 1 and None not in kinds:
            return {"type": kinds.pop(), "enum": values}
    shown = getattr(annotation, "__name__", None) or repr(annotation)
    raise TemplateLoadError(
        f"input {key!r}: type {shown} is not supported; use str, int, float, bool, list[...], dict or "
        "Literal[...] of one scalar type",
        location=where,
    )


def _sections(keys: list[str], inputs: Mapping[str, dict[str, Any]], prefix: str) -> str:
    """``Label:`` and the value of each input, a blank line apart; a list as ``- item`` lines; an input whose
    default is None is left out while it is None."""
    parts = []
    for key in keys:
        value = f"{prefix}{key}"
        label = key.replace("_", " ").capitalize()
        if inputs[key]["type"] == "array":
            text = f"{label}:{{% for item in {value} %}}\n- {{{{ item }}}}{{% else %}} (none){{% endfor %}}"
        else:
            text = f"{label}:\n{{{{ {value} }}}}"
        if "default" in inputs[key] and inputs[key]["default"] is None:
            text = f"{{% if {value} is not none %}}{text}\n\n{{% endif %}}"
        else:
            text += "\n\n"
        parts.append(text)
    return "".join(parts).rstrip()

"""Typed template inputs and the pydantic model that validates them."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, NoReturn, Optional

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    create_model,
)

from promptkit.errors import InputValidationError

__all__ = ["InputField", "INPUT_TYPES", "build_input_model", "validation_problems", "raise_input_error"]

INPUT_TYPES = ("string", "integer", "number", "boolean", "array", "object")
TrimSide = Literal["middle", "tail"]

# Strict scalars: a dict or a number given for a string is an error, not a silent str().
# Numbers accept ints as they are (JSON has one number type) but not bools or numeric strings.
_StrictNumber = StrictInt | StrictFloat
_PY_TYPES: dict[str, Any] = {
    "string": StrictStr,
    "integer": StrictInt,
    "number": _StrictNumber,
    "boolean": StrictBool,
    "object": dict[str, Any],
}


@dataclass(frozen=True)
class InputField:
    """One declared input of a template."""

    name: str
    type: str = "string"
    required: bool = True
    default: Any = None
    description: str = ""
    enum: tuple[Any, ...] | None = None
    min_length: int | None = None
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    items: InputField | None = None
    trim_priority: int | None = None
    # How a trimmed string is cut: keep head and tail ("middle") or only the head ("tail").
    trim: TrimSide = "middle"
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def annotation(self) -> Any:
        """The Python type of a value of this field (constraints included, optionality not)."""
        if self.enum is not None:
            base: Any = Literal[self.enum]  # type: ignore[valid-type]
        elif self.type == "array":
            item = self.items.annotation() if self.items is not None else Any
            base = list[item]  # type: ignore[valid-type]
        else:
            base = _PY_TYPES[self.type]
        constraints: dict[str, Any] = {}
        if self.min_length is not None:
            constraints["min_length"] = self.min_length
        if self.max_length is not None:
            constraints["max_length"] = self.max_length
        if self.minimum is not None:
            constraints["ge"] = self.minimum
        if self.maximum is not None:
            constraints["le"] = self.maximum
        return Annotated[base, Field(**constraints)] if constraints else base

    def spec(self) -> dict[str, Any]:
        """The parts of this field that change validation or rendering (for the template hash)."""
        out: dict[str, Any] = {"type": self.type, "required": self.required, "default": self.default}
        for key in ("enum", "min_length", "max_length", "minimum", "maximum", "trim_priority"):
            value = getattr(self, key)
            if value is not None:
                out[key] = list(value) if key == "enum" else value
        if self.items is not None:
            out["items"] = self.items.spec()
        if self.trim_priority is not None:
            out["trim"] = self.trim
        return out

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly description, for `templates list/show`."""
        out = {
            "name": self.name,
            "type": self.type,
            "required": self.required,
            "description": self.description,
        }
        if not self.required:
            out["default"] = self.default
        for key in ("enum", "min_length", "max_length", "minimum", "maximum", "trim_priority"):
            value = getattr(self, key)
            if value is not None:
                out[key] = list(value) if key == "enum" else value
        if self.items is not None:
            out["items"] = self.items.spec()
        return out


def build_input_model(template: str, fields: Mapping[str, InputField]) -> type[BaseModel]:
    """One pydantic model for all inputs: unknown inputs are rejected, optional ones get their default."""
    definitions: dict[str, Any] = {}
    for name, spec in fields.items():
        annotation = spec.annotation()
        if spec.required:
            definitions[name] = (annotation, ...)
        else:
            # An optional input may always be None (its usual default), whatever its type.
            definitions[name] = (Optional[annotation], spec.default)  # noqa: UP045
    model_name = "".join(p.capitalize() for p in template.replace("-", "_").split("_") if p) + "Inputs"
    return create_model(  # type: ignore[call-overload,no-any-return]
        model_name or "Inputs",
        __config__=ConfigDict(extra="forbid", validate_default=False, protected_namespaces=()),
        **definitions,
    )


def validation_problems(exc: ValidationError) -> list[tuple[str, str]]:
    """``(field, problem)`` pairs from a pydantic error, worded for template authors."""
    problems: list[tuple[str, str]] = []
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err["loc"]]
        name = ".".join(loc) if loc else "<inputs>"
        kind = err["type"]
        if kind == "missing":
            problem = "missing (it is required)"
        elif kind == "extra_forbidden":
            problem = "unknown input"
        else:
            got = err.get("input")
            shown = type(got).__name__
            problem = f"{err['msg']} (got {shown})"
        problems.append((name, problem))
    return problems


def raise_input_error(template: str, exc: ValidationError, fields: Mapping[str, InputField]) -> NoReturn:
    """Raise InputValidationError for the first problem (a typo'd name first: it explains the rest)."""
    problems = validation_problems(exc)
    close = {
        name: difflib.get_close_matches(name, list(fields), n=1, cutoff=0.6)
        for name, problem in problems
        if problem == "unknown input"
    }
    problems.sort(key=lambda p: not close.get(p[0]))  # stable: otherwise pydantic's order
    field_name, problem = problems[0]
    if problem == "unknown input":
        known = ", ".join(fields) or "none"
        hint = f"; did you mean {close[field_name][0]!r}?" if close[field_name] else ""
        problem = f"unknown input{hint} (the template declares: {known})"
    if len(problems) > 1:
        rest = "; ".join(f"{f}: {p}" for f, p in problems[1:])
        problem = f"{problem}; also {rest}"
    raise InputValidationError(template, field_name, problem) from None

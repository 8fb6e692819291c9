"""Turn the JSON-schema subset that templates use for their output into a pydantic model."""

from __future__ import annotations

import keyword
import re
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, RootModel, create_model

from promptkit.errors import OutputSchemaError

__all__ = ["schema_to_model", "SUPPORTED_KEYWORDS"]

SUPPORTED_KEYWORDS = frozenset(
    {
        "type",
        "properties",
        "required",
        "description",
        "title",
        "enum",
        "items",
        "default",
        "maxLength",
        "minLength",
        "maxItems",
        "minItems",
        "minimum",
        "maximum",
        "pattern",
        "additionalProperties",
    }
)

_SCALARS: dict[str, Any] = {"string": str, "integer": int, "number": float, "boolean": bool}
_TYPES = {*_SCALARS, "object", "array", "null"}
_RESERVED = frozenset(dir(BaseModel))


def schema_to_model(schema: dict[str, Any], name: str, *, location: str | None = None) -> type[BaseModel]:
    """Build a pydantic model from a JSON schema (the subset in ``SUPPORTED_KEYWORDS``).

    An object schema becomes a model with one field per property; any other root becomes a ``RootModel``.
    Unsupported keywords raise :class:`OutputSchemaError` naming the JSON path (``$.properties.x.format``).
    """
    where = location or f"output schema of {name!r}"
    if not isinstance(schema, dict):
        raise OutputSchemaError(
            f"$: the schema must be a mapping, not {type(schema).__name__}", location=where
        )
    model_name = _class_name(name)
    converter = _Converter(where)
    if _types_of(schema, "$", where) == ["object"]:
        return converter.object_model(schema, model_name, "$")
    root_type = converter.annotation(schema, model_name, "$")
    return create_model(model_name, __base__=RootModel[root_type])  # type: ignore[valid-type]


def _class_name(name: str) -> str:
    parts = re.split(r"[^0-9A-Za-z]+", name)
    text = "".join(p[:1].upper() + p[1:] for p in parts if p) or "Output"
    return text if text[0].isalpha() else f"M{text}"


def _types_of(schema: dict[str, Any], path: str, where: str) -> list[str]:
    raw = schema.get("type")
    if raw is None:
        if "properties" in schema:
            return ["object"]
        if "enum" in schema:
            return []  # the enum alone decides
        raise OutputSchemaError(f"{path}: missing 'type'", location=where)
    types = raw if isinstance(raw, list) else [raw]
    for t in types:
        if t not in _TYPES:
            raise OutputSchemaError(
                f"{path}.type: unknown type {t!r} (use one of {sorted(_TYPES)})", location=where
            )
    return list(types)


class _Converter:
    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, path: str, problem: str) -> OutputSchemaError:
        return OutputSchemaError(f"{path}: {problem}", location=self.where)

    def check_keywords(self, schema: dict[str, Any], path: str) -> None:
        for key in schema:
            if key not in SUPPORTED_KEYWORDS:
                raise self.fail(
                    f"{path}.{key}",
                    f"unsupported JSON-schema keyword {key!r} (supported: {sorted(SUPPORTED_KEYWORDS)})",
                )

    def annotation(self, schema: Any, name: str, path: str) -> Any:
        """The Python type for one schema node (without its constraints' Field)."""
        if not isinstance(schema, dict):
            raise self.fail(path, f"expected a schema mapping, got {type(schema).__name__}")
        self.check_keywords(schema, path)
        types = _types_of(schema, path, self.where)
        nullable = "null" in types
        concrete = [t for t in types if t != "null"]
        if "enum" in schema:
            values = schema["enum"]
            if not isinstance(values, list) or not values:
                raise self.fail(f"{path}.enum", "must be a non-empty list")
            base: Any = Literal[tuple(values)]  # type: ignore[valid-type]
        elif not concrete:
            raise self.fail(f"{path}.type", "'null' alone is not a useful output type")
        else:
            options = [self.concrete(t, schema, name, path) for t in concrete]
            base = options[0] if len(options) == 1 else Union[tuple(options)]  # noqa: UP007
        constraints = self.constraints(schema, path)
        if constraints:
            # On the non-null type, so that `null` stays valid for nullable fields.
            base = Annotated[base, Field(**constraints)]
        return Optional[base] if nullable else base  # noqa: UP045

    def concrete(self, type_name: str, schema: dict[str, Any], name: str, path: str) -> Any:
        if type_name in _SCALARS:
            return _SCALARS[type_name]
        if type_name == "array":
            items = schema.get("items")
            if items is None:
                return list[Any]
            item_type = self.annotation(items, f"{name}Item", f"{path}.items")
            return list[item_type]  # type: ignore[valid-type]
        # object
        if "properties" not in schema:
            return dict[str, Any]
        return self.object_model(schema, name, path)

    def object_model(self, schema: dict[str, Any], name: str, path: str) -> type[BaseModel]:
        self.check_keywords(schema, path)
        properties = schema.get("properties", {})
        if not isinstance(properties, dict):
            raise self.fail(f"{path}.properties", "must be a mapping of property name to schema")
        required = schema.get("required", [])
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            raise self.fail(f"{path}.required", "must be a list of property names")
        for r in required:
            if r not in properties:
                raise self.fail(f"{path}.required", f"{r!r} is required but not among the properties")
        extra = schema.get("additionalProperties")
        if extra is not None and not isinstance(extra, bool):
            raise self.fail(f"{path}.additionalProperties", "only true or false is supported")
        config = ConfigDict(populate_by_name=True, extra="forbid" if extra is False else "ignore")

        fields: dict[str, Any] = {}
        for index, (prop, sub) in enumerate(properties.items()):
            sub_path = f"{path}.properties.{prop}"
            annotation = self.annotation(sub, name + _class_name(str(prop)), sub_path)
            kwargs: dict[str, Any] = {}
            if isinstance(sub.get("description"), str):
                kwargs["description"] = sub["description"]
            if prop in required:
                default: Any = ...
            else:
                default = sub.get("default")
                if default is None:
                    annotation = Optional[annotation]  # noqa: UP045
            if not _plain_field_name(str(prop)):
                kwargs["alias"] = str(prop)
                key = f"field_{index}"
            else:
                key = str(prop)
            fields[key] = (annotation, Field(default, **kwargs))
        description = schema.get("description")
        model = create_model(name, __config__=config, __doc__=description, **fields)  # type: ignore[call-overload]
        return model

    def constraints(self, schema: dict[str, Any], path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        pairs = {
            "maxLength": "max_length",
            "minLength": "min_length",
            "maxItems": "max_length",
            "minItems": "min_length",
            "minimum": "ge",
            "maximum": "le",
            "pattern": "pattern",
        }
        for key, arg in pairs.items():
            if key not in schema:
                continue
            value = schema[key]
            numeric = key not in ("pattern",)
            if numeric and (not isinstance(value, (int, float)) or isinstance(value, bool)):
                raise self.fail(f"{path}.{key}", f"must be a number, got {value!r}")
            if key == "pattern":
                try:
                    re.compile(value)
                except (re.error, TypeError) as exc:
                    raise self.fail(f"{path}.pattern", f"invalid regular expression: {exc}") from None
            out[arg] = value
        return out


def _plain_field_name(name: str) -> bool:
    return (
        name.isidentifier()
        and not keyword.iskeyword(name)
        and not name.startswith("_")
        and not name.startswith("model_")
        and name not in _RESERVED
    )

from __future__ import annotations

import pytest
from pydantic import BaseModel, RootModel, ValidationError

from promptkit.errors import OutputSchemaError
from promptkit.prompts import schema_to_model

SCHEMA = {
    "type": "object",
    "description": "A review.",
    "properties": {
        "summary": {"type": "string", "minLength": 2, "maxLength": 20, "description": "One line."},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "count": {"type": "integer", "default": 7},
        "ok": {"type": "boolean"},
        "level": {"enum": ["low", "high"]},
        "note": {"type": ["string", "null"]},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 3}, "minItems": 1, "maxItems": 2},
        "owner": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "id": {"type": "integer"}},
            "required": ["name"],
        },
        "class": {"type": "string"},
        "model_name": {"type": "string"},
    },
    "required": ["summary", "score", "ok", "level", "tags"],
}
GOOD = {"summary": "fine", "score": 0.5, "ok": True, "level": "low", "tags": ["a"]}


def test_converts_the_subset_into_a_validating_model() -> None:
    model = schema_to_model(SCHEMA, "code-review")
    assert issubclass(model, BaseModel) and model.__name__ == "CodeReview"
    value = model.model_validate({**GOOD, "owner": {"name": "ann"}, "class": "x", "model_name": "m"})
    assert value.count == 7 and value.note is None and value.owner.name == "ann"
    dumped = value.model_dump(by_alias=True)
    assert dumped["class"] == "x" and dumped["model_name"] == "m"
    schema = model.model_json_schema()
    assert schema["properties"]["summary"]["description"] == "One line."
    assert set(schema["required"]) == set(SCHEMA["required"])


@pytest.mark.parametrize(
    "change",
    [
        {"summary": "x"},
        {"summary": "x" * 21},
        {"score": 2},
        {"ok": "maybe"},
        {"level": "mid"},
        {"tags": []},
        {"tags": ["a", "b", "c"]},
        {"tags": ["long"]},
        {"owner": {"id": 1}},
        {"note": 5},
    ],
)
def test_constraints_are_enforced(change: dict) -> None:
    model = schema_to_model(SCHEMA, "r")
    model.model_validate(GOOD)
    with pytest.raises(ValidationError):
        model.model_validate({**GOOD, **change})


def test_nullable_field_accepts_null_even_when_required() -> None:
    model = schema_to_model(
        {
            "type": "object",
            "properties": {"a": {"type": ["string", "null"], "maxLength": 2}},
            "required": ["a"],
        },
        "n",
    )
    assert model.model_validate({"a": None}).a is None
    with pytest.raises(ValidationError):
        model.model_validate({})
    with pytest.raises(ValidationError):
        model.model_validate({"a": "abc"})


def test_additional_properties_false_forbids_extras() -> None:
    model = schema_to_model(
        {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False}, "x"
    )
    with pytest.raises(ValidationError):
        model.model_validate({"a": "1", "b": 2})


def test_non_object_root_becomes_a_root_model() -> None:
    model = schema_to_model({"type": "array", "items": {"type": "integer"}}, "numbers")
    assert issubclass(model, RootModel)
    assert model.model_validate([1, 2]).root == [1, 2]
    with pytest.raises(ValidationError):
        model.model_validate(["x"])


@pytest.mark.parametrize(
    ("schema", "path"),
    [
        (
            {"type": "object", "properties": {"e": {"type": "string", "format": "email"}}},
            "$.properties.e.format",
        ),
        (
            {"type": "object", "properties": {"a": {"type": "array", "items": {"oneOf": []}}}},
            "$.properties.a.items.oneOf",
        ),
        ({"type": "object", "properties": {"a": {"type": "strin"}}}, "$.properties.a.type"),
        ({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["b"]}, "$.required"),
        ({"type": "object", "$defs": {}}, "$.$defs"),
        ({"type": "object", "properties": {"a": {"description": "no type"}}}, "$.properties.a"),
        (
            {"type": "object", "properties": {"a": {"type": "string", "maxLength": "ten"}}},
            "$.properties.a.maxLength",
        ),
    ],
)
def test_unsupported_or_invalid_schemas_name_the_json_path(schema: dict, path: str) -> None:
    with pytest.raises(OutputSchemaError) as info:
        schema_to_model(schema, "bad")
    assert str(info.value).split(": ", 1)[1].startswith(f"{path}:"), str(info.value)
    assert "'bad'" in str(info.value)

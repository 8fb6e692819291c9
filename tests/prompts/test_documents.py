"""The one document reader: every problem is the caller's error class, at ``file:line: field``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from promptkit.errors import EvalError, PlanError, SpecError, TemplateLoadError
from promptkit.prompts import Document, load_yaml, parse_document, raise_validation, read_document


class Shot(BaseModel):
    model_config = ConfigDict(extra="forbid")
    strategy: Literal["all", "first_k"]
    k: int = 0


class Variant(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    examples: Shot | str | None = None  # a union: pydantic adds the member's name to the error location


class Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    variants: list[Variant]


def test_yaml_problems_raise_the_callers_class_at_the_line(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("name: x\nname: y\n", encoding="utf-8")
    with pytest.raises(PlanError, match=r"a\.yaml:2: duplicate key 'name'"):
        read_document(path, PlanError, what="playbook")
    path.write_text("a: [1\nb: 2\n", encoding="utf-8")
    with pytest.raises(EvalError, match=r"a\.yaml:\d+: invalid YAML"):
        read_document(path, EvalError)
    with pytest.raises(TemplateLoadError, match=r"<s>:1: the file is empty"):
        load_yaml("", "<s>")


def test_json_values_with_yaml_lines(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text('{\n  "variants": [\n    {"name": "a",\n     "colour": 1}\n  ]\n}\n', encoding="utf-8")
    doc = read_document(path, SpecError)
    assert doc.data["variants"][0]["colour"] == 1 and doc.line(("variants", 0, "colour")) == 4
    with pytest.raises(SpecError, match=r"d\.json:4: variants\[0\]\.colour: is not a known field"):
        try:
            Doc.model_validate(doc.data)
        except ValidationError as exc:
            raise_validation(exc, doc, SpecError)
    path.write_text('{\n  "a": 1,\n}\n', encoding="utf-8")
    with pytest.raises(SpecError, match=r"d\.json:3: invalid JSON"):
        read_document(path, SpecError)


def test_unreadable_and_non_utf8_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(EvalError, match=r"nope\.yaml: cannot read the suite"):
        read_document(tmp_path / "nope.yaml", EvalError, what="suite")
    path = tmp_path / "latin.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(SpecError, match=r"latin\.yaml: the spec is not UTF-8 text"):
        read_document(path, SpecError, what="spec")


def test_validation_paths_keep_only_the_documents_keys() -> None:
    text = "variants:\n  - name: a\n    examples:\n      strategy: first_k\n      k: nine\n"
    doc = parse_document(text, "s.yaml", EvalError)
    with pytest.raises(ValidationError) as info:
        Doc.model_validate(doc.data)
    with pytest.raises(EvalError) as caught:
        raise_validation(info.value, doc, EvalError)
    # Not variants[0].examples.Shot.k: the union member is not a key of the document.
    assert str(caught.value).startswith("s.yaml:5: variants[0].examples.k: ")
    missing = parse_document("variants:\n  - {examples: all}\n", "m.yaml", EvalError)
    with pytest.raises(ValidationError) as info:
        Doc.model_validate(missing.data)
    with pytest.raises(EvalError, match=r"^m\.yaml:2: variants\[0\]\.name: is required$"):
        raise_validation(info.value, missing, EvalError)


def test_a_document_without_lines_still_names_the_field() -> None:
    assert Document({"a": 1}, "spec").where(("a",)) == "spec: a"
    assert Document({"a": 1}, "spec").where(()) == "spec"

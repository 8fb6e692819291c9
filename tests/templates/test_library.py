"""The built-in library (promptkit/templates/) loads, lints clean and renders through the real registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from promptkit.prompts import FilesAnswer, Template, TemplateRegistry, TextFormat

LIBRARY = Path(__file__).resolve().parents[2] / "promptkit" / "templates"
TECHNIQUES = {"context-framing", "few-shot", "decomposition", "role", "repair", "self-check", "prefill"}
TASKS = {"app-building", "debugging", "refactoring", "review", "testing"}
ALL_TASKS = TASKS | {"general"}


@pytest.fixture(scope="module")
def registry() -> TemplateRegistry:
    return TemplateRegistry([LIBRARY], builtin=False, entry_points=False)


@pytest.fixture(scope="module")
def templates(registry: TemplateRegistry) -> list[Template]:
    return registry.list()


def _by_name(templates: list[Template]) -> dict[str, Template]:
    return {t.name: t for t in templates}


def test_library_lints_clean(registry: TemplateRegistry) -> None:
    problems = registry.lint([LIBRARY])
    assert problems == [], "\n".join(f"{p.file}:{p.line}: {p.message}" for p in problems)


def test_every_yaml_file_is_a_template(templates: list[Template]) -> None:
    files = sorted(LIBRARY.rglob("*.yaml"))
    assert len(templates) == len(files) >= 12
    # one template per file, named after it, so `templates list` maps straight onto the tree
    assert sorted(Path(t.source or "").stem for t in templates) == sorted(f.stem for f in files)
    assert all(Path(t.source or "").stem == t.name for t in templates)


def test_tags_come_from_the_vocabulary_and_cover_it(templates: list[Template]) -> None:
    techniques = {tag for t in templates for tag in t.tags.get("technique", ())}
    tasks = {tag for t in templates for tag in t.tags.get("task", ())}
    assert techniques == TECHNIQUES
    assert TASKS <= tasks <= ALL_TASKS
    for t in templates:
        assert t.tags.get("task"), f"{t.name} has no task tag"


def test_versions_and_descriptions(templates: list[Template]) -> None:
    for t in templates:
        # 2.0.0: the code-writing templates moved from JSON to fenced blocks; 1.1.0: complete_file's
        # optional earlier_errors
        expected = "2.0.0" if t.name in ("implement_step", "write_tests", "fix_step", "debug") else "1.0.0"
        expected = "1.1.0" if t.name == "complete_file" else expected
        assert t.version == expected, t.name
        words = t.description.split()
        assert 12 <= len(words) <= 80, f"{t.name}: description should say what and when in 1-2 sentences"


def test_debug_has_exactly_the_documented_inputs(templates: list[Template]) -> None:
    debug = _by_name(templates)["debug"]
    assert set(debug.inputs) == {"language", "code", "error", "expected", "actual", "reproduction"}
    assert not debug.inputs["reproduction"].required
    assert all(debug.inputs[n].required for n in ("language", "code", "error", "expected", "actual"))
    assert debug.inputs["code"].trim_priority is not None
    assert set(debug.output_schema["required"]) == {"diagnosis", "fix", "explanation"}
    assert len(debug.examples) == 3


def parsed_value(answer: Any, field: str) -> str:
    return (
        " ".join(str(getattr(answer, field)).split())
        if field not in answer.code_fields
        else getattr(answer, field).strip("\n")
    )


def _text_format(t: Template) -> bool:
    return t.output_model is not None and issubclass(t.output_model, TextFormat)


def _walk(schema: dict[str, Any], path: str = "$") -> list[str]:
    """Paths of strings without maxLength and arrays without maxItems."""
    kinds = schema.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    missing = []
    if "string" in kinds and "maxLength" not in schema and "enum" not in schema:
        missing.append(path)
    if "array" in kinds:
        if "maxItems" not in schema:
            missing.append(path)
        missing += _walk(schema["items"], path + "[]")
    for name, sub in schema.get("properties", {}).items():
        missing += _walk(sub, f"{path}.{name}")
    return missing


def test_structured_outputs_are_bounded_and_shown_to_the_model(templates: list[Template]) -> None:
    structured = [t for t in templates if t.output_schema is not None and not _text_format(t)]
    assert len(structured) >= 5
    for t in [t for t in templates if _text_format(t) and not _prefilled(t)]:
        rendered = t.render(dict(t.examples[0].inputs))
        assert t.output_model.instructions in rendered.messages[0].content, t.name
        assert "```" in rendered.messages[-2].content, f"{t.name}: examples answer in the format"
    for t in structured:
        assert _walk(t.output_schema) == [], t.name
        example = t.examples[0]
        rendered = t.render(dict(example.inputs))
        text = "\n".join(m.content for m in rendered.messages)
        # the schema text itself, so a model without grammar support still sees every field and bound
        assert json.dumps(t.output_schema, indent=2) in text or t.output_schema_text in text, t.name
        assert rendered.output_model is not None


def _prefilled(t: Template) -> bool:
    """A template that starts the answer itself (its last message is the assistant's): it shows the format
    by writing its beginning, so it needs neither worked examples nor format instructions."""
    return "prefill" in t.tags.get("technique", ())


def test_examples_count_and_long_inputs_are_trimmable(templates: list[Template]) -> None:
    for t in templates:
        assert _prefilled(t) or 2 <= len(t.examples) <= 3, t.name
        for name in ("code", "files", "context", "subject", "spec"):
            if name in t.inputs:
                assert t.inputs[name].trim_priority is not None, f"{t.name}.{name}"


def _cases() -> list[tuple[str, int]]:
    reg = TemplateRegistry([LIBRARY], builtin=False, entry_points=False)
    return [(t.name, i) for t in reg.list() for i in range(len(t.examples))]


@pytest.mark.parametrize(("name", "index"), _cases())
def test_each_example_renders(registry: TemplateRegistry, name: str, index: int) -> None:
    template = registry.get(name)
    example = template.examples[index]
    rendered = template.render(dict(example.inputs))
    roles = [m.role for m in rendered.messages]
    assert roles[0] == "system" and roles[-1] == "user"
    assert rendered.examples_used >= 1
    # few-shot turns alternate user/assistant between the system prompt and the final request
    assert roles[1:-1] == ["user", "assistant"] * rendered.examples_used
    last = rendered.messages[-1].content
    assert "{{" not in last and "{%" not in last
    # the final request carries this example's own (required, string) inputs
    for field_name, value in example.inputs.items():
        if isinstance(value, str) and template.inputs[field_name].required and len(value) < 200:
            assert value.strip() in last or value.strip() in rendered.messages[0].content, (name, field_name)


@pytest.mark.parametrize(("name", "index"), _cases())
def test_example_outputs_parse_into_the_output_model(
    registry: TemplateRegistry, name: str, index: int
) -> None:
    template = registry.get(name)
    example = template.examples[index]
    if template.output_model is None:
        assert isinstance(example.output, str) and example.output.strip()
    elif _text_format(template):
        # what the model is shown parses back into exactly the example's output
        parsed = template.output_model.parse_text(example.output_json)
        given = template.output_model.model_validate(example.output)
        if isinstance(given, FilesAnswer):
            assert [(f.path, f.content) for f in parsed.files] == [(f.path, f.content) for f in given.files]
            assert parsed.notes == given.notes.strip()
        else:  # sections: code keeps its text, prose its words
            for field in type(given).model_fields:
                assert parsed_value(parsed, field) == parsed_value(given, field), field
    else:
        parsed = template.output_model.model_validate_json(example.output_json)
        assert parsed.model_dump(exclude_none=False) == json.loads(example.output_json)

from __future__ import annotations

from pathlib import Path

import pytest

from promptkit.errors import ExampleError, OutputSchemaError, TemplateLoadError
from promptkit.prompts import InputField, Template

from .conftest import BROKEN, GOOD

BASE = """
name: t
version: 1.0.0
messages:
  - role: user
    content: hi
"""


def loc(exc: pytest.ExceptionInfo, path: Path, line: int) -> None:
    assert exc.value.location == f"{path}:{line}", str(exc.value)


def test_good_template_loads_its_parts() -> None:
    t = Template.from_file(GOOD / "review.yaml")
    assert (t.name, t.version, t.id) == ("review", "2.1.0", "review@2.1.0")
    assert t.description == "Review code and report findings as JSON."
    assert t.tags == {"technique": ("role", "few-shot"), "task": ("review",)}
    assert list(t.inputs) == ["language", "code", "notes", "max_findings"]
    code = t.inputs["code"]
    assert isinstance(code, InputField)
    assert (code.type, code.required, code.trim_priority, code.max_length) == ("string", True, 20, 200000)
    assert t.inputs["notes"].required is False and t.inputs["notes"].trim == "tail"
    assert t.inputs["max_findings"].required is False and t.inputs["max_findings"].default == 3
    assert t.inputs["language"].enum == ("python", "javascript")
    assert t.must_match == ("language",)
    assert len(t.examples) == 3 and t.examples_trim_priority == 5
    assert t.source == str(GOOD / "review.yaml")
    assert len(t.short_hash) == 12 and t.hash.startswith(t.short_hash)


def test_input_model_is_built_once_and_validates() -> None:
    t = Template.from_file(GOOD / "review.yaml")
    assert t.input_model is t.input_model
    model = t.input_model.model_validate({"language": "python", "code": "x"})
    assert model.max_findings == 3 and model.notes is None


def test_output_model_from_a_pydantic_class_reference() -> None:
    from tests.prompts.models import Ticket

    t = Template.from_file(GOOD / "classify.yaml")
    assert t.output_model is Ticket
    assert t.output_schema == Ticket.model_json_schema()
    assert t.version == "0.3.0-beta.1"


def test_invalid_yaml_names_file_and_line() -> None:
    path = BROKEN / "bad_yaml.yaml"
    with pytest.raises(TemplateLoadError) as info:
        Template.from_file(path)
    loc(info, path, 7)
    assert "quoted scalar started at line 5" in str(info.value)


def test_jinja_syntax_error_maps_to_the_yaml_line() -> None:
    path = BROKEN / "bad_jinja.yaml"
    with pytest.raises(TemplateLoadError) as info:
        Template.from_file(path)
    loc(info, path, 12)
    assert "Jinja syntax error in messages[1].content" in str(info.value)


def test_jinja_syntax_error_in_a_quoted_one_line_content(write_template) -> None:
    path = write_template(BASE.replace("content: hi", 'content: "{{ oops "'))
    with pytest.raises(TemplateLoadError) as info:
        Template.from_file(path)
    loc(info, path, 5)


def test_example_not_matching_inputs_names_its_line() -> None:
    path = BROKEN / "bad_example.yaml"
    with pytest.raises(ExampleError) as info:
        Template.from_file(path)
    loc(info, path, 9)
    assert "example 2" in str(info.value) and "'level'" in str(info.value)


def test_example_output_must_match_the_output_schema(write_template) -> None:
    path = write_template(
        """
        name: t
        version: 1.0.0
        output:
          type: object
          properties:
            answer: {type: integer}
          required: [answer]
        examples:
          - inputs: {}
            output: {answer: 1}
          - inputs: {}
            output:
              answer: "one"
        messages:
          - role: user
            content: hi
        """
    )
    with pytest.raises(ExampleError) as info:
        Template.from_file(path)
    loc(info, path, 13)
    assert "example 2" in str(info.value) and "'answer'" in str(info.value)


def test_free_text_example_output_must_be_text(write_template) -> None:
    path = write_template(BASE + "examples:\n  - inputs: {}\n    output: {a: 1}\n")
    with pytest.raises(ExampleError, match="must be text"):
        Template.from_file(path)


def test_unsupported_output_schema_keyword_names_json_path_and_line() -> None:
    path = BROKEN / "bad_schema.yaml"
    with pytest.raises(OutputSchemaError) as info:
        Template.from_file(path)
    loc(info, path, 10)
    assert "$.properties.email.format" in str(info.value) and "'bad-schema'" in str(info.value)


def test_unresolvable_output_model_fails_on_first_use_naming_file_and_line(write_template) -> None:
    path = write_template(BASE + "output: {model: 'no_such_pkg.mod:Thing'}\n")
    template = Template.from_file(path)  # the model is imported on first use, not at load time
    with pytest.raises(OutputSchemaError) as info:
        template.render()
    loc(info, path, 6)
    assert "no_such_pkg" in str(info.value)


def test_malformed_output_model_reference_fails_at_load(write_template) -> None:
    path = write_template(BASE + "output: {model: 'no_colon_here'}\n")
    with pytest.raises(OutputSchemaError) as info:
        Template.from_file(path)
    loc(info, path, 6)


@pytest.mark.parametrize(
    ("extra", "line", "fragment"),
    [
        ("descrption: typo\n", 6, "unknown key 'descrption' in the template (did you mean 'description'?)"),
        ("inputs:\n  a: {type: strin}\n", 7, "type 'strin'"),
        ("inputs:\n  a: {type: string, maxlen: 3}\n", 7, "unknown key 'maxlen'"),
        ("inputs:\n  a: {type: integer, max_length: 3}\n", 7, "max_length applies to string and array"),
        ("inputs:\n  a: {type: integer, trim_priority: 3}\n", 7, "only string inputs can be trimmed"),
        ("inputs:\n  a: {type: integer, default: x}\n", 7, "default does not fit"),
        ("inputs:\n  a: {type: string, required: true, default: x}\n", 7, "required but also has a default"),
        ("inputs:\n  a: {type: string, enum: [1]}\n", 7, "enum value 1 is not a string"),
        ("inputs:\n  examples: {type: string}\n", 7, "reserved"),
        ("inputs:\n  2bad: {type: string}\n", 7, "identifier"),
        ("inputs:\n  on: {type: string}\n", 7, "quote the name"),
        ("must_match: [nope]\n", 6, "not a declared input"),
        ("examples_trim_priority: high\n", 6, "must be int"),
        ("example_selection: {strategy: best}\n", 6, "example_selection.strategy"),
        ("tags: {task: 3}\n", 6, "tags.task must be list"),
    ],
)
def test_schema_errors_name_file_and_line(write_template, extra: str, line: int, fragment: str) -> None:
    path = write_template(BASE + extra)
    with pytest.raises(TemplateLoadError) as info:
        Template.from_file(path)
    loc(info, path, line)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("version: 1.0.0\nmessages: []\n", 1, "missing required key 'name'"),
        ("name: T!\nversion: 1.0.0\nmessages: []\n", 1, "must use only"),
        ("name: t\nversion: '1.0'\nmessages: [{role: user, content: x}]\n", 2, "not a semantic version"),
        ("name: t\nversion: 1.2\nmessages: [{role: user, content: x}]\n", 2, "not a semantic version"),
        ("name: t\nversion: 1.0.0\nmessages: []\n", 3, "at least one message"),
        ("name: t\nversion: 1.0.0\nmessages:\n  - role: robot\n    content: x\n", 4, "role must be one of"),
        ("name: t\nversion: 1.0.0\nmessages:\n  - role: user\n", 4, "has no content"),
        ("name: t\nname: u\nversion: 1.0.0\n", 2, "duplicate key 'name'"),
        ("- just\n- a list\n", 1, "must be a YAML mapping"),
        ("", 1, "empty"),
    ],
)
def test_top_level_errors(write_template, text: str, line: int, fragment: str) -> None:
    path = write_template(text)
    with pytest.raises(TemplateLoadError) as info:
        Template.from_file(path)
    loc(info, path, line)
    assert fragment in str(info.value)


def test_missing_file() -> None:
    with pytest.raises(TemplateLoadError, match="cannot read"):
        Template.from_file("/nonexistent/t.yaml")


def test_from_dict_without_lines_names_the_source() -> None:
    data = {
        "name": "d",
        "version": "1.0.0",
        "messages": [{"role": "user", "content": "{{ a }}"}],
        "inputs": {"a": "string"},
    }
    t = Template.from_dict(data, source="inline")
    assert t.render(a="z").messages[0].content == "z"
    with pytest.raises(TemplateLoadError) as info:
        Template.from_dict({**data, "bogus": 1}, source="inline")
    assert info.value.location == "inline"


def test_must_match_inside_inputs_is_accepted(write_template) -> None:
    path = write_template(
        BASE.replace("messages:", "inputs:\n  lang: {type: string}\n  must_match: [lang]\nmessages:").replace(
            "content: hi", "content: '{{ lang }}'"
        )
    )
    t = Template.from_file(path)
    assert t.must_match == ("lang",) and list(t.inputs) == ["lang"]


def test_optional_input_without_default_is_none(write_template) -> None:
    path = write_template(
        BASE.replace("messages:", "inputs:\n  a: {type: string, required: false}\nmessages:")
    )
    t = Template.from_file(path)
    assert t.inputs["a"].required is False
    assert t.validate_inputs() == {"a": None}


def test_only_one_examples_block(write_template) -> None:
    path = write_template(
        BASE + "  - examples: [{role: user, content: x}]\n  - examples: [{role: user, content: y}]\n"
    )
    with pytest.raises(TemplateLoadError) as info:
        Template.from_file(path)
    loc(info, path, 7)

from __future__ import annotations

import json

import pytest

from promptkit.errors import InputValidationError, RenderError
from promptkit.prompts import RenderedPrompt, Template
from promptkit.types import Message

CODE = "def f(x):\n    return x + 1"


def test_render_produces_typed_messages_in_order(review: Template) -> None:
    out = review.render(language="python", code=CODE)
    assert isinstance(out, RenderedPrompt)
    assert all(isinstance(m, Message) for m in out.messages)
    # system, 3 examples x (user, assistant), final user
    assert [m.role for m in out.messages] == ["system"] + ["user", "assistant"] * 3 + ["user"]
    assert out.examples_used == 3
    assert out.template == "review" and out.version == "2.1.0" and out.hash == review.hash
    assert out.output_model is review.output_model
    system = out.messages[0].content
    assert system.startswith("REVIEW-INSTRUCTION: You review python code. Report at most 3 findings.")
    assert json.loads(system.split("matching:\n", 1)[1]) == review.output_schema
    assert out.messages[-1].content == f"Code:\n{CODE}"
    assert out.messages[1].content == "def mean(xs): return sum(xs) / len(xs)"
    assert json.loads(out.messages[2].content) == review.examples[0].output


def test_inputs_mapping_and_keywords_merge_and_defaults_fill(review: Template) -> None:
    out = review.render({"language": "javascript"}, code="x()", max_findings=7)
    assert "You review javascript code. Report at most 7 findings." in out.messages[0].content
    # notes defaults to None and its `if` hides the line: no "Notes:" and no leading blank line
    assert out.messages[-1].content == "Code:\nx()"


def test_messages_are_stripped_and_empty_ones_dropped(make_template) -> None:
    t = make_template(
        """
        name: strip
        version: 1.0.0
        inputs:
          a: {type: string}
        messages:
          - role: system
            content: "   \\n  hello {{ a }}  \\n\\n"
          - role: user
            content: "{% if false %}gone{% endif %}   "
          - role: user
            content: "end"
        """
    )
    out = t.render(a="x")
    assert [(m.role, m.content) for m in out.messages] == [("system", "hello x"), ("user", "end")]


def test_input_values_are_data_not_template_code(review: Template) -> None:
    payload = "{{ 7*7 }} {% for i in range(3) %}{{ i }}{% endfor %} {{ ''.__class__ }}"
    out = review.render(language="python", code=payload)
    assert out.messages[-1].content == f"Code:\n{payload}"
    assert "49" not in out.messages[-1].content


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ range.__self__ }}",
    ],
)
def test_sandbox_blocks_attribute_escapes_in_template_text(make_template, source: str) -> None:
    t = make_template(
        f"""
        name: escape
        version: 1.0.0
        messages:
          - role: system
            content: "fine"
          - role: user
            content: "{source}"
        """
    )
    with pytest.raises(RenderError) as info:
        t.render()
    assert "template 'escape' message 1" in str(info.value)
    assert "t.yaml:6:" in str(info.value)  # the offending message's line


def test_sandbox_blocks_mutating_inputs(make_template) -> None:
    t = make_template(
        """
        name: mutate
        version: 1.0.0
        inputs:
          items: {type: array, items: string}
        messages:
          - role: user
            content: "{{ items.append('x') }}{{ items }}"
        """
    )
    with pytest.raises(RenderError, match="sandbox|unsafe|immutable|SecurityError"):
        t.render(items=["a"])


def test_undefined_variable_names_template_message_and_variable(make_template) -> None:
    t = make_template(
        """
        name: undef
        version: 1.0.0
        inputs:
          a: {type: string}
        messages:
          - role: system
            content: "{{ a }}"
          - role: user
            content: "{{ a }} and {{ missing_thing }}"
        """
    )
    with pytest.raises(RenderError) as info:
        t.render(a="x")
    text = str(info.value)
    assert "'undef'" in text and "message 1" in text and "missing_thing" in text


def test_missing_input_names_template_and_field(review: Template) -> None:
    with pytest.raises(InputValidationError) as info:
        review.render(language="python")
    err = info.value
    assert (err.template, err.field) == ("review", "code")
    assert "missing" in err.problem
    assert "template 'review'" in str(err) and "'code'" in str(err)


def test_unknown_input_lists_declared_ones(review: Template) -> None:
    with pytest.raises(InputValidationError) as info:
        review.render(language="python", code="x", langauge="python")
    assert info.value.field == "langauge"
    assert (
        "unknown input" in info.value.problem and "language, code, notes, max_findings" in info.value.problem
    )


def test_a_typod_input_gets_a_did_you_mean_before_the_missing_one(review: Template) -> None:
    with pytest.raises(InputValidationError) as info:
        review.render(language="python", cdoe="x")
    # The typo comes first even though pydantic reports the missing `code` first: it explains both.
    assert info.value.field == "cdoe"
    assert info.value.problem.startswith("unknown input; did you mean 'code'? (the template declares: ")
    assert "also code: missing" in info.value.problem
    with pytest.raises(InputValidationError) as info:
        review.render(language="python", code="x", zzz=1)
    assert "did you mean" not in info.value.problem


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("code", {"a": 1}, "string"),
        ("code", 12, "string"),
        ("max_findings", "3", "integer"),
        ("max_findings", 2.5, "integer"),
        ("max_findings", True, "integer"),
        ("max_findings", 11, "less than or equal"),
        ("language", "rust", "'python' or 'javascript'"),
    ],
)
def test_wrongly_typed_inputs_fail_without_coercion(
    review: Template, field: str, value: object, problem: str
) -> None:
    inputs = {"language": "python", "code": "x", field: value}
    with pytest.raises(InputValidationError) as info:
        review.render(inputs)
    assert info.value.field == field
    assert problem in info.value.problem


def test_several_problems_are_all_reported_first_one_named(review: Template) -> None:
    with pytest.raises(InputValidationError) as info:
        review.render({"language": "cobol", "max_findings": "many"})
    err = info.value
    assert err.field == "language"
    assert "code" in err.problem and "max_findings" in err.problem


def test_input_values_never_appear_in_validation_errors(review: Template) -> None:
    secret = "sk-THIS-IS-SECRET"
    with pytest.raises(InputValidationError) as info:
        review.render(language="python", code={"key": secret})
    assert secret not in str(info.value)


def test_number_accepts_int_but_not_string(make_template) -> None:
    t = make_template(
        """
        name: num
        version: 1.0.0
        inputs:
          t: {type: number, minimum: 0, maximum: 2}
          flag: {type: boolean, default: false}
          tags: {type: array, items: {type: string, max_length: 3}, max_length: 2}
          meta: {type: object, default: {}}
        messages:
          - role: user
            content: "{{ t }} {{ flag }} {{ tags | join(',') }} {{ meta | length }}"
        """
    )
    assert t.render(t=1, tags=["a", "b"]).messages[0].content == "1 False a,b 0"
    for bad in ({"t": "1"}, {"t": 1, "flag": "yes"}, {"t": 1, "tags": ["abcd"]}, {"t": 1, "tags": ["a"] * 3}):
        with pytest.raises(InputValidationError):
            t.render({"tags": [], **bad})


def test_inputs_must_be_a_mapping(review: Template) -> None:
    with pytest.raises(RenderError, match="mapping"):
        review.render(["language", "python"])  # type: ignore[arg-type]


def test_output_schema_is_empty_for_free_text(make_template) -> None:
    t = make_template(
        """
        name: free
        version: 1.0.0
        messages:
          - role: user
            content: "[{{ output_schema }}]"
        """
    )
    out = t.render()
    assert out.messages[0].content == "[]"
    assert out.output_model is None and t.output_model is None


def test_rendered_prompt_dump_excludes_output_model(review: Template) -> None:
    out = review.render(language="python", code="x")
    dumped = out.model_dump()
    assert "output_model" not in dumped
    assert dumped["messages"][0]["role"] == "system"
    assert json.loads(out.model_dump_json())["hash"] == review.hash
    assert out.to_dicts()[0] == {"role": "system", "content": out.messages[0].content}


def test_token_count_only_when_asked(review: Template) -> None:
    from promptkit.prompts import count_tokens

    plain = review.render(language="python", code="x")
    assert plain.token_count is None
    counted = review.render(language="python", code="x", model="gpt-4o")
    assert counted.token_count == count_tokens(counted.messages, "gpt-4o")


def test_message_name_is_kept(make_template) -> None:
    t = make_template(
        """
        name: named
        version: 1.0.0
        messages:
          - role: user
            name: alice
            content: hi
        """
    )
    assert t.render().messages[0].name == "alice"


def test_renders_repeatedly_with_same_result(review: Template) -> None:
    first = review.render(language="python", code="x")
    second = review.render(language="python", code="x")
    assert first.messages == second.messages
    other = review.render(language="javascript", code="y")
    assert other.messages[0] != first.messages[0]

"""Templates defined in Python (@template), output types given in code, and `output: {model: ...}` imported lazily."""

from __future__ import annotations

import enum
import json
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field
from typing_extensions import assert_type

import promptkit
from promptkit.errors import ExampleError, InputValidationError, OutputSchemaError, TemplateLoadError
from promptkit.prompts import OutputWrapper, Template, output_model_for, template
from promptkit.prompts._lint import lint_files

from .conftest import GOOD
from .models import Ticket


class Item(BaseModel):
    name: str
    qty: int = Field(ge=1)


class Invoice(BaseModel):
    """An invoice."""

    number: str
    items: list[Item]


class Mood(enum.Enum):
    HAPPY = "happy"
    SAD = "sad"


@template(output=Invoice)
class extract_invoice:  # noqa: N801 - a template is used like a function
    """Extract the invoice from the email. Amounts are in {{ currency }}."""

    email: str = Field(description="The whole email", max_length=2000)
    currency: Literal["EUR", "USD"] = "EUR"
    notes: str | None = None
    tags: list[str] = []


# ---- @template -----------------------------------------------------------------------------------------


def test_a_class_becomes_an_ordinary_template() -> None:
    # pyright types extract_invoice as Template[Invoice]; mypy ignores what class decorators return (the
    # function and call forms below are typed by both).
    assert isinstance(extract_invoice, Template)
    assert extract_invoice.name == "extract_invoice" and extract_invoice.version == "1.0.0"
    assert extract_invoice.description == "Extract the invoice from the email. Amounts are in {{ currency }}."
    assert extract_invoice.output_model is Invoice and extract_invoice.output_type is Invoice
    inputs = extract_invoice.inputs
    assert inputs["email"].type == "string" and inputs["email"].required
    assert inputs["email"].description == "The whole email" and inputs["email"].max_length == 2000
    assert inputs["currency"].enum == ("EUR", "USD") and inputs["currency"].default == "EUR"
    assert not inputs["notes"].required and inputs["notes"].default is None
    assert inputs["tags"].type == "array" and inputs["tags"].items is not None
    assert extract_invoice.source is not None and "test_python_templates.py:" in extract_invoice.source
    assert len(extract_invoice.hash) == 64


def test_inputs_are_validated_by_name() -> None:
    with pytest.raises(InputValidationError, match="currency"):
        extract_invoice.render(email="x", currency="GBP")
    with pytest.raises(InputValidationError, match="email"):
        extract_invoice.render(currency="EUR")
    with pytest.raises(InputValidationError, match="unknown input"):
        extract_invoice.render(email="x", mail="y")


def test_the_prompt_is_the_instruction_then_the_inputs_it_does_not_use() -> None:
    rendered = extract_invoice.render(email="Invoice 7: 2 apples", tags=["fruit", "urgent"])
    system, user = rendered.messages
    assert system.role == "system" and system.content.startswith("Extract the invoice from the email.")
    assert "Amounts are in EUR." in system.content
    assert "Reply with only JSON that matches this schema:" in system.content
    assert json.loads(system.content.split("schema:\n", 1)[1])["title"] == "Invoice"
    assert user.role == "user"
    assert (
        user.content == "Email:\nInvoice 7: 2 apples\n\nTags:\n- fruit\n- urgent"
    )  # notes is None: left out
    with_notes = extract_invoice.render(email="e", notes="paid")
    assert (
        "Notes:\npaid" in with_notes.messages[1].content and "Currency" not in with_notes.messages[1].content
    )


def test_an_instruction_that_uses_every_input_is_the_one_user_message() -> None:
    @template
    class shout:
        """Say {{ word }} loudly."""

        word: str

    assert shout.output_model is None and shout.output_type is str
    assert [(m.role, m.content) for m in shout.render(word="hi").messages] == [("user", "Say hi loudly.")]
    assert shout.name == "shout"


def test_a_function_works_too_and_so_does_a_plain_call() -> None:
    @template(output=list[Item])
    def pick_items(text: str, limit: int = 3):  # type: ignore[no-untyped-def]
        """Pick at most {{ limit }} items from the text."""

    assert_type(pick_items, Template[list[Item]])
    assert isinstance(pick_items, Template) and pick_items.name == "pick_items"
    assert pick_items.inputs["limit"].type == "integer" and pick_items.inputs["limit"].default == 3
    system, user = pick_items.render(text="figs").messages
    assert system.content.startswith("Pick at most 3 items") and user.content == "Text:\nfigs"

    class Classify:
        """Classify {{ text }}."""

        text: str

    classify = template(Classify, output=Mood)  # mypy types a call; it ignores what class decorators return
    assert_type(classify, Template[Mood])
    assert classify.output_type is Mood and classify.name == "classify"
    with pytest.raises(TemplateLoadError, match="needs a type annotation"):

        @template
        def untyped(text):  # type: ignore[no-untyped-def]
            """Do {{ text }}."""


def test_the_hash_is_the_content() -> None:
    def make(doc: str) -> Template[Any]:
        namespace = {"__doc__": doc, "__annotations__": {"text": str}}
        return template(output=Invoice)(type("Summarize", (), namespace))

    assert make("Summarize.").hash == make("Summarize.").hash
    assert make("Summarize.").hash != make("Summarize briefly.").hash
    assert make("Summarize.").name == "summarize"


def test_options_name_version_tags() -> None:
    @template(name="my-prompt", version="2.1.0", tags={"task": ["general"]})
    class Anything:
        """Do it."""

        text: str

    assert (Anything.id, Anything.tags) == ("my-prompt@2.1.0", {"task": ("general",)})


def test_examples_show_as_turns_and_must_fit_the_output_type() -> None:
    @template(
        output=list[Item], examples=[{"inputs": {"text": "2 pears"}, "output": [{"name": "pear", "qty": 2}]}]
    )
    def items(text: str):  # type: ignore[no-untyped-def]
        """List the items."""

    assert_type(items, Template[list[Item]])
    messages = items.render(text="3 figs").messages
    assert [m.role for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1].content == "Text:\n2 pears" and messages[3].content == "Text:\n3 figs"
    assert json.loads(messages[2].content) == {"answer": [{"name": "pear", "qty": 2}]}
    assert items.examples[0].output == [{"name": "pear", "qty": 2}]  # as written: the bare value

    with pytest.raises(ExampleError, match="example 1"):

        @template(output=list[Item], examples=[{"inputs": {"text": "x"}, "output": [{"name": "pear"}]}])
        class broken:
            """List the items."""

            text: str


def test_mistakes_are_template_load_errors_naming_the_class() -> None:
    with pytest.raises(TemplateLoadError, match="needs a docstring") as info:

        @template
        class nodoc:
            text: str

    assert ".py:" in (info.value.location or "")
    with pytest.raises(TemplateLoadError, match="input 'when'"):

        @template
        class odd:
            """Do it."""

            when: bytes


def test_a_text_format_output_shows_its_instructions() -> None:
    from promptkit.prompts import FilesAnswer

    @template(output=FilesAnswer)
    class write_files:
        """Write the files for {{ task }}."""

        task: str

    system = write_files.render(task="a CLI").messages[0].content
    assert FilesAnswer.instructions in system and "JSON" not in system


def test_exported_at_the_top_level() -> None:
    assert promptkit.template is template


# ---- output types in code ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output_type", "answer", "value"),
    [
        (list[Item], {"answer": [{"name": "a", "qty": 1}]}, [Item(name="a", qty=1)]),
        (Literal["yes", "no"], {"answer": "no"}, "no"),
        (Mood, {"answer": "sad"}, Mood.SAD),
        (int, {"answer": 42}, 42),
        (
            dict[str, Invoice],
            {"answer": {"x": {"number": "1", "items": []}}},
            {"x": Invoice(number="1", items=[])},
        ),
    ],
)
def test_non_model_types_get_a_one_field_wrapper(output_type: Any, answer: Any, value: Any) -> None:
    model = output_model_for(output_type)
    assert model is not None and issubclass(model, OutputWrapper)
    assert model is output_model_for(output_type)  # built once per type
    assert model.output_type == output_type
    schema = model.model_json_schema()
    assert schema["type"] == "object" and schema["required"] == ["answer"]
    assert model.model_validate(answer).unwrap() == value


def test_models_are_themselves_and_str_is_free_text() -> None:
    assert output_model_for(Invoice) is Invoice
    assert output_model_for(str) is None
    with pytest.raises(OutputSchemaError, match="must be a type"):
        output_model_for(3)

    class NotPydantic:
        pass

    with pytest.raises(OutputSchemaError, match="no JSON schema"):
        output_model_for(NotPydantic)


def test_with_output_replaces_the_schema_and_the_hash() -> None:
    class Verdict(BaseModel):
        ok: bool

    review = Template.from_dict(
        {
            "name": "review",
            "version": "1.0.0",
            "output": {"type": "object", "properties": {"score": {"type": "integer"}}},
            "messages": [{"role": "user", "content": "Review this. {{ output_schema }}"}],
        }
    )

    typed = review.with_output(Verdict)
    assert_type(typed, Template[Verdict])
    assert typed.output_model is Verdict and typed.hash != review.hash
    assert review.with_output(Verdict) is typed  # cached per type
    assert '"ok"' in typed.output_schema_text
    free = review.with_output(str)
    assert free.output_model is None and free.output_schema is None
    assert review.output_model is not Verdict  # the original is unchanged


class LooseTicket(BaseModel):
    category: str


def test_from_file_takes_an_output_type() -> None:
    loose = Template.from_file(GOOD / "classify.yaml", output=LooseTicket)
    assert_type(loose, Template[LooseTicket])
    assert loose.output_type is LooseTicket and loose.examples[0].output == {"category": "billing"}
    with pytest.raises(ExampleError, match="example 1"):
        Template.from_file(GOOD / "classify.yaml", output=list[Ticket])  # the examples are single tickets


def test_bounded_types_keep_their_bounds() -> None:
    model = output_model_for(Annotated[list[Item], Field(max_length=2)])
    assert model is not None
    assert model.model_json_schema()["properties"]["answer"]["maxItems"] == 2
    # Annotated with a Field cannot be hashed: cached by its text, so the grammar is built once.
    assert output_model_for(Annotated[list[Item], Field(max_length=2)]) is model


# ---- `output: {model: ...}` in YAML: imported on first use ----------------------------------------------


def test_a_yaml_model_reference_is_imported_on_first_use(write_template, tmp_path: Path, monkeypatch) -> None:
    package = tmp_path / "lazy_models_pkg"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from pydantic import BaseModel\n\nclass Answer(BaseModel):\n    text: str\n\nAnswers = list[Answer]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "lazy_models_pkg", raising=False)
    path = write_template(
        """
        name: lazy
        version: 1.0.0
        output: {model: "lazy_models_pkg:Answers"}
        examples:
          - inputs: {}
            output: [{text: hi}]
        messages:
          - role: system
            content: "{{ output_schema }}"
          - role: user
            content: go
        """
    )
    loaded = Template.from_file(path)
    assert "lazy_models_pkg" not in sys.modules
    assert "not imported yet" in repr(loaded)
    rendered = loaded.render()
    assert "lazy_models_pkg" in sys.modules
    assert loaded.output_type == sys.modules["lazy_models_pkg"].Answers
    assert '"answer"' in rendered.messages[0].content
    assert json.loads(loaded.examples[0].output_json) == {"answer": [{"text": "hi"}]}


def test_a_yaml_model_that_is_a_list_alias(write_template) -> None:
    path = write_template(
        """
        name: many
        version: 1.0.0
        output: {model: "tests.prompts.models:Tickets"}
        messages:
          - role: user
            content: go
        """
    )
    loaded = Template.from_file(path)
    assert loaded.output_type == list[Ticket]
    assert loaded.output_model is not None and issubclass(loaded.output_model, OutputWrapper)


def test_a_yaml_model_that_cannot_be_imported_names_the_line(write_template) -> None:
    path = write_template(
        """
        name: broken
        version: 1.0.0
        messages:
          - role: user
            content: go
        output: {model: "tests.prompts.models:NoSuchThing"}
        """
    )
    loaded = Template.from_file(path)
    with pytest.raises(OutputSchemaError) as info:
        _ = loaded.hash
    assert info.value.location == f"{path}:6"
    assert "NoSuchThing" in str(info.value)
    # Overriding the output never imports the template's own model.
    assert loaded.with_output(Ticket).output_model is Ticket
    problems = lint_files([path], load=Template.from_file)
    assert [(p.line, "cannot import output model" in p.message) for p in problems] == [(6, True)]

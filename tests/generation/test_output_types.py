"""generate(..., output=T): an output type given in code, held to the same grammar and re-ask loop as a template's.

Scripted backends check what is sent and parsed; the tiny random-weight GGUF checks that the grammar built from
the type (wrapper included) constrains real llama.cpp output to something that validates.
"""

from __future__ import annotations

import enum
import json
from typing import Annotated, Any, Literal, cast

import pytest
from pydantic import BaseModel, Field, TypeAdapter
from typing_extensions import assert_type

from promptkit.backends import Backend, FunctionBackend, GenerateRequest, ScriptedBackend
from promptkit.errors import AttemptsExhausted, OutputSchemaError
from promptkit.generation import GenerateResult, agenerate, generate
from promptkit.prompts import OutputWrapper, Template, template


class Item(BaseModel):
    name: str = Field(max_length=12)
    qty: int = Field(ge=1, le=99)


class Invoice(BaseModel):
    number: str = Field(max_length=12)
    items: list[Item] = Field(max_length=3)


class Mood(enum.Enum):
    HAPPY = "happy"
    SAD = "sad"


INVOICE = {"number": "A-7", "items": [{"name": "pear", "qty": 2}]}


@pytest.fixture
def schema_template() -> Template[Any]:
    """A free-text template whose system message shows {{ output_schema }}."""
    return Template.from_dict(
        {
            "name": "extract",
            "version": "1.0.0",
            "inputs": {"text": {"type": "string"}},
            "messages": [
                {"role": "system", "content": "Extract it.\n{{ output_schema }}"},
                {"role": "user", "content": "{{ text }}"},
            ],
        }
    )


def run(tpl: Any, backend: Any, **kw: Any) -> GenerateResult[Any]:
    return generate(tpl, {"text": "an invoice"}, model=backend, cache=False, ledger=False, **kw)


# ---- what is sent and what comes back ---------------------------------------------------------------------


def test_a_model_overrides_the_template_output(schema_template: Template[Any]):
    backend = ScriptedBackend([INVOICE])
    result = generate(
        schema_template, {"text": "an invoice"}, model=backend, cache=False, ledger=False, output=Invoice
    )
    assert_type(result, GenerateResult[Invoice])
    assert isinstance(result.output, Invoice) and result.output.items[0].name == "pear"
    sent = backend.history[0]
    assert sent.output_model is Invoice  # grammar (local) / tool schema (remote) come from it
    assert json.loads(sent.messages[0].content.split("\n", 1)[1])["title"] == "Invoice"
    assert result.template == "extract" and result.template_hash != schema_template.hash


def test_a_structured_template_answers_in_the_type_given_instead(answer_template):
    backend = ScriptedBackend([{"answer": "yes"}])
    result = generate(
        answer_template,
        {"question": "q"},
        model=backend,
        cache=False,
        ledger=False,
        output=Literal["yes", "no"],
    )
    assert result.output == "yes"
    sent = backend.history[0].output_model
    assert sent is not None
    assert sent.model_json_schema()["properties"]["answer"]["enum"] == [
        "yes",
        "no",
    ]


@pytest.mark.parametrize(
    ("output_type", "answer", "value"),
    [
        (list[Invoice], {"answer": [INVOICE]}, [Invoice.model_validate(INVOICE)]),
        (list[Invoice], json.dumps([INVOICE]), [Invoice.model_validate(INVOICE)]),  # the bare value too
        (Literal["yes", "no"], '"no"', "no"),
        (Mood, {"answer": "happy"}, Mood.HAPPY),
        (int, '```json\n{"answer": 7}\n```', 7),
        (
            dict[str, list[Item]],
            {"answer": {"box": [{"name": "fig", "qty": 3}]}},
            {"box": [Item(name="fig", qty=3)]},
        ),
    ],
)
def test_other_types_are_wrapped_for_the_model_and_unwrapped_for_the_caller(
    schema_template, output_type: Any, answer: Any, value: Any
):
    backend = ScriptedBackend([answer])
    result = run(schema_template, backend, output=output_type)
    assert result.output == value
    sent = backend.history[0].output_model
    assert sent is not None and issubclass(sent, OutputWrapper) and sent.output_type == output_type
    assert '"answer"' in backend.history[0].messages[0].content  # {{ output_schema }} shows the wrapper


def test_str_means_free_text(answer_template: Template[Any]):
    backend = ScriptedBackend(["just words"])
    result = generate(
        answer_template, {"question": "q"}, model=backend, cache=False, ledger=False, output=str
    )
    assert_type(result, GenerateResult[str])
    assert result.output == "just words" and backend.history[0].output_model is None


def test_invalid_answers_are_reasked_with_the_field_named(schema_template):
    backend = ScriptedBackend(
        [{"answer": [{"number": "1", "items": [{"name": "x", "qty": 0}]}]}, json.dumps([INVOICE])]
    )
    result = run(schema_template, backend, output=list[Invoice])
    assert [a.outcome for a in result.attempts] == ["invalid", "ok"]
    error = result.attempts[0].error or ""
    assert "answer.0.items.0.qty" in error and "greater than or equal to 1" in error
    repair = backend.history[1].messages[-1]
    assert repair.role == "user" and "answer.0.items.0.qty" in repair.content
    assert result.output == [Invoice.model_validate(INVOICE)]


def test_exhaustion_reports_the_wrapper_errors(schema_template):
    backend = ScriptedBackend([{"answer": "maybe"}] * 3)
    with pytest.raises(AttemptsExhausted, match="answer"):
        run(schema_template, backend, output=Literal["yes", "no"])
    assert backend.calls == 3


def test_accept_sees_the_unwrapped_value(schema_template):
    seen: list[Any] = []

    def accept(output: Any) -> bool | str:
        seen.append(output)
        return "too few" if len(output) < 2 else True

    backend = ScriptedBackend([json.dumps([INVOICE]), json.dumps([INVOICE, INVOICE])])
    result = run(schema_template, backend, output=list[Invoice], accept=accept)
    assert [len(s) for s in seen] == [1, 2] and all(isinstance(s, list) for s in seen)
    assert len(result.output) == 2


async def test_agenerate_is_typed_and_caches_per_output_type(schema_template: Template[Any], cache):
    calls: list[GenerateRequest] = []

    def answer(request: GenerateRequest) -> Any:
        calls.append(request)
        return INVOICE if request.output_model is Invoice else {"answer": 3}

    backend = cast(Backend, FunctionBackend(answer))
    first = await agenerate(
        schema_template, {"text": "t"}, model=backend, cache=cache, ledger=False, output=Invoice
    )
    assert_type(first, GenerateResult[Invoice])
    again = await agenerate(
        schema_template, {"text": "t"}, model=backend, cache=cache, ledger=False, output=Invoice
    )
    assert again.cached and again.output == first.output and len(calls) == 1
    # Same prompt text and model, another output type: not the cached Invoice.
    count = await agenerate(
        schema_template, {"text": "t"}, model=backend, cache=cache, ledger=False, output=int
    )
    assert count.output == 3 and not count.cached and len(calls) == 2


def test_python_templates_carry_their_type_into_the_result():
    @template(output=list[Item])
    def pick(text: str):  # type: ignore[no-untyped-def]
        """Pick the items in {{ text }}."""

    backend = ScriptedBackend([{"answer": [{"name": "fig", "qty": 1}]}])
    result = generate(pick, {"text": "a basket"}, model=backend, cache=False, ledger=False)
    assert_type(result, GenerateResult[list[Item]])
    assert result.output == [Item(name="fig", qty=1)]
    assert [m.role for m in backend.history[0].messages] == ["user"]


def test_a_bad_output_type_fails_before_any_call(schema_template):
    class NotPydantic:
        pass

    backend = ScriptedBackend([])
    with pytest.raises(OutputSchemaError, match="no JSON schema"):
        run(schema_template, backend, output=NotPydantic)
    assert backend.calls == 0


# ---- the grammar path: real llama.cpp, random weights ----------------------------------------------------


@pytest.fixture(scope="module")
def local(tiny_gguf):  # type: ignore[no-untyped-def]
    from promptkit.backends import LlamaBackend

    backend = LlamaBackend(tiny_gguf, n_ctx=2048, n_threads=1)
    backend.load()
    yield backend
    backend.close()


# llama.cpp's grammars bound string lengths and list sizes but not numbers: no ge/le here.
class Line(BaseModel):
    name: str = Field(max_length=12)
    qty: int


class Order(BaseModel):
    number: str = Field(max_length=12)
    lines: list[Line] = Field(max_length=3)


Tag = Annotated[str, Field(max_length=8)]


@pytest.mark.parametrize(
    "output_type",
    [
        Order,
        Annotated[list[Line], Field(max_length=3)],
        Literal["yes", "no", "maybe"],
        Mood,
        Annotated[list[Tag], Field(max_length=4)],
    ],
    ids=["model", "list-of-models", "literal", "enum", "list-of-str"],
)
def test_the_grammar_constrains_random_weights_to_valid_output(schema_template, local, output_type: Any):
    for seed in range(3):
        result = generate(
            schema_template,
            {"text": f"item {seed}"},
            model=local,
            cache=False,
            ledger=False,
            output=output_type,
            temperature=1.0,
            seed=seed,
            max_tokens=300,
            max_attempts=1,  # no re-ask: the first answer must validate
        )
        assert [a.outcome for a in result.attempts] == ["ok"]
        assert not isinstance(result.output, OutputWrapper)  # unwrapped for the caller
        TypeAdapter(output_type).validate_python(result.output)  # raises if not of the type

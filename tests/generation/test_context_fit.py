"""generate() fits the prompt to each tier's context window, and a tier it cannot fit is skipped, not fatal."""

from __future__ import annotations

import json

import pytest

from promptkit.backends import ScriptedBackend
from promptkit.errors import ContextBudgetError
from promptkit.generation import agenerate
from promptkit.prompts import Template
from promptkit.routing import Router, Tier

GOOD = {"answer": "Paris", "confidence": 0.9}


class Windowed(ScriptedBackend):
    """A scripted backend that declares a context window, as local models do."""

    def __init__(self, replies: list[object], window: int, name: str) -> None:
        super().__init__(replies, name=name)
        self.context_window = window


@pytest.fixture
def long_template() -> Template:
    """A template whose only trimmable part is its few-shot examples (about 1,000 tokens each)."""
    filler = " ".join(f"word{i}" for i in range(800))
    return Template.from_dict(
        {
            "name": "qa_long",
            "version": "1.0.0",
            "description": "Answer a question, shown long examples.",
            "tags": {"technique": ["few-shot"], "task": ["general"]},
            "inputs": {"question": {"type": "string"}},
            "output": {
                "type": "object",
                "properties": {
                    "answer": {"type": "string", "maxLength": 200},
                    "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                },
                "required": ["answer", "confidence"],
            },
            "examples": [
                {"inputs": {"question": f"{filler} {n}?"}, "output": {"answer": str(n), "confidence": 1}}
                for n in range(2)
            ],
            "example_selection": {"strategy": "first_k", "k": 2},
            "messages": [
                {"role": "system", "content": "Answer in JSON."},
                {
                    "examples": [
                        {"role": "user", "content": "{{ example.inputs.question }}"},
                        {"role": "assistant", "content": "{{ example.output_json }}"},
                    ]
                },
                {"role": "user", "content": "{{ question }}"},
            ],
        }
    )


async def test_a_prompt_too_long_for_the_window_drops_examples_to_fit(long_template, ledger):
    small = Windowed([json.dumps(GOOD)], window=1200, name="small")
    result = await agenerate(
        long_template,
        {"question": "Capital of France?"},
        model=small,
        cache=False,
        ledger=ledger,
        max_tokens=200,
    )
    assert result.output.answer == "Paris"
    sent = small.history[0].messages
    assert sum(len(m.content) for m in sent) < 8000, "the examples were dropped to fit 1,000 prompt tokens"
    assert sent[-1].content.endswith("Capital of France?") and "examples omitted" in sent[-1].content


async def test_a_tier_that_cannot_fit_the_prompt_is_skipped_and_the_ledger_says_why(long_template, ledger):
    long_question = "Capital of France? " + "Some context. " * 2000  # ~6,000 tokens, never trimmed
    tiny = Windowed([json.dumps(GOOD)], window=2048, name="tiny")
    large = Windowed([json.dumps(GOOD)], window=32768, name="large")
    router = Router([Tier("tiny", [tiny]), Tier("large", [large])])
    result = await agenerate(
        long_template, {"question": long_question}, router=router, cache=False, ledger=ledger, max_tokens=256
    )
    assert result.tier_name == "large" and tiny.calls == 0 and large.calls == 1
    first, second = result.attempts
    assert (first.outcome, first.tier_name) == ("too_long", "tiny")
    assert "context window of 2048" in first.error
    assert (second.outcome, second.reason) == ("ok", "escalation")
    rows = ledger.entries(result.run_id)
    assert [r.outcome for r in rows] == ["too_long", "ok"]


async def test_no_tier_fits_is_one_clear_error(long_template, ledger):
    long_question = "Capital of France? " + "Some context. " * 2000
    tiny = Windowed([json.dumps(GOOD)], window=1024, name="tiny")
    with pytest.raises(ContextBudgetError, match="fits no tier.*context window of 1024.*n_ctx"):
        await agenerate(long_template, {"question": long_question}, model=tiny, cache=False, ledger=ledger)
    assert tiny.calls == 0


async def test_backends_without_a_window_are_not_measured(long_template, ledger):
    plain = ScriptedBackend([json.dumps(GOOD)], name="plain")
    await agenerate(long_template, {"question": "q"}, model=plain, cache=False, ledger=ledger)
    assert len(plain.history[0].messages) == 6, "both examples kept: nothing to fit"

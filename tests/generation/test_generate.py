"""generate() end to end on scripted backends: re-ask, exhaustion, acceptance, caching, the ledger."""

from __future__ import annotations

import asyncio
import json

import pytest

from promptkit.backends import Capabilities, FunctionBackend, ScriptedBackend, ScriptedReply
from promptkit.cache import ExactCache
from promptkit.errors import AttemptsExhausted, ConfigError, OutputValidationError, RoutingError
from promptkit.generation import GenerateResult, agenerate, generate
from promptkit.ledger import Ledger
from promptkit.types import Usage

GOOD = {"answer": "Paris", "confidence": 0.9}


def reply(payload: object, *, tokens: tuple[int, int] = (10, 5), cost: float | None = None) -> ScriptedReply:
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return ScriptedReply(text, usage=Usage(input_tokens=tokens[0], output_tokens=tokens[1]), cost_usd=cost)


async def test_invalid_json_is_reasked_with_the_error_and_then_succeeds(answer_template, ledger):
    backend = ScriptedBackend(["{not json", GOOD])
    result = await agenerate(
        answer_template, {"question": "Capital of France?"}, model=backend, cache=False, ledger=ledger
    )
    assert result.output.answer == "Paris" and result.output.confidence == 0.9
    assert result.text == json.dumps(GOOD)
    assert [a.outcome for a in result.attempts] == ["invalid", "ok"]
    assert [a.reason for a in result.attempts] == [None, "reask"]
    assert result.attempts[0].raw_output == "{not json"
    assert "Invalid JSON" in result.attempts[0].error

    first, second = backend.history
    assert len(second.messages) == len(first.messages) + 2
    assert second.messages[-2].role == "assistant" and second.messages[-2].content == "{not json"
    assert second.messages[-1].role == "user"
    assert result.attempts[0].error in second.messages[-1].content
    assert "Answer again, correctly" in second.messages[-1].content

    rows = ledger.entries(result.run_id)
    assert [(r.attempt, r.reason, r.outcome) for r in rows] == [(1, None, "invalid"), (2, "reask", "ok")]
    assert {r.call_id for r in rows} == {result.call_id}
    assert rows[0].template == "qa" and rows[0].template_hash == answer_template.hash
    totals = ledger.totals(result.run_id)
    assert (totals.calls, totals.attempts, totals.retries, totals.failures) == (1, 2, 1, 0)


async def test_schema_violations_name_the_field(answer_template):
    backend = ScriptedBackend([{"answer": "x", "confidence": 7}, GOOD])
    result = await agenerate(answer_template, {"question": "q"}, model=backend, cache=False, ledger=False)
    assert "confidence" in result.attempts[0].error
    assert "less than or equal to 1" in result.attempts[0].error
    assert "confidence" in backend.history[1].messages[-1].content


async def test_fenced_json_is_parsed_on_the_first_attempt(answer_template):
    backend = ScriptedBackend(["```json\n" + json.dumps(GOOD) + "\n```"])
    result = await agenerate(answer_template, {"question": "q"}, model=backend, cache=False, ledger=False)
    assert result.output.answer == "Paris"
    assert len(result.attempts) == 1 and backend.calls == 1


async def test_free_text_templates_return_the_text(text_template):
    backend = ScriptedBackend(["old pond / a frog jumps in / splash"])
    result = await agenerate(text_template, {"topic": "frogs"}, model=backend, cache=False, ledger=False)
    assert result.output == "old pond / a frog jumps in / splash"
    assert isinstance(result.output, str)
    assert backend.history[0].output_model is None
    assert backend.history[0].messages[-1].content == "A haiku about frogs."


async def test_exhaustion_carries_every_raw_output_and_the_summed_usage(answer_template, ledger):
    backend = ScriptedBackend(
        [reply("bad one", tokens=(10, 2)), reply("bad two", tokens=(20, 3)), reply("bad 3")]
    )
    with pytest.raises(AttemptsExhausted) as info:
        await agenerate(answer_template, {"question": "q"}, model=backend, cache=False, ledger=ledger)
    exc = info.value
    assert [a.raw_output for a in exc.attempts] == ["bad one", "bad two", "bad 3"]
    assert exc.usage == Usage(input_tokens=40, output_tokens=10)
    assert backend.calls == 3
    assert "template 'qa'" in str(exc) and "3 attempt(s)" in str(exc)
    totals = ledger.totals(ledger.latest_run())
    assert (totals.attempts, totals.failures, totals.input_tokens) == (3, 1, 40)


async def test_max_attempts_bounds_a_single_model(answer_template):
    backend = ScriptedBackend(default="never json")
    with pytest.raises(AttemptsExhausted):
        await agenerate(
            answer_template, {"question": "q"}, model=backend, max_attempts=5, cache=False, ledger=False
        )
    assert backend.calls == 5


@pytest.mark.parametrize(
    ("verdict", "message"),
    [(False, "rejected by the acceptance check"), ("answer must be Berlin", "answer must be Berlin")],
)
async def test_acceptance_rejections_are_fed_back(answer_template, verdict, message):
    backend = ScriptedBackend([GOOD, {"answer": "Berlin", "confidence": 0.5}])
    result = await agenerate(
        answer_template,
        {"question": "q"},
        model=backend,
        accept=lambda out: True if out.answer == "Berlin" else verdict,
        cache=False,
        ledger=False,
    )
    assert result.output.answer == "Berlin"
    assert message in result.attempts[0].error
    assert message in backend.history[1].messages[-1].content
    assert [a.accepted for a in result.attempts] == [False, True]


async def test_async_accept_and_raised_validation_errors(answer_template):
    async def accept(out):
        await asyncio.sleep(0)
        if out.confidence < 0.8:
            raise OutputValidationError("confidence too low for this use")
        return None

    backend = ScriptedBackend([{"answer": "a", "confidence": 0.1}, GOOD])
    result = await agenerate(
        answer_template, {"question": "q"}, model=backend, accept=accept, cache=False, ledger=False
    )
    assert result.output.confidence == 0.9
    assert "confidence too low" in backend.history[1].messages[-1].content


async def test_second_identical_call_is_a_cache_hit_with_zero_backend_calls(answer_template, cache, ledger):
    backend = ScriptedBackend([reply(GOOD, cost=0.002), GOOD])
    first = await agenerate(answer_template, {"question": "q"}, model=backend, cache=cache, ledger=ledger)
    second = await agenerate(answer_template, {"question": "q"}, model=backend, cache=cache, ledger=ledger)
    assert backend.calls == 1
    assert (first.cached, second.cached) == (False, True)
    assert second.output == first.output
    assert second.cost_usd == 0.0 and second.saved_usd == pytest.approx(0.002)
    assert [a.outcome for a in second.attempts] == ["cache_hit"]
    hit = ledger.entries(second.run_id)[-1]
    assert (hit.outcome, hit.cache, hit.saved_usd) == ("cache_hit", "exact", pytest.approx(0.002))
    assert ledger.totals(second.run_id).cache_hits == 1

    third = await agenerate(answer_template, {"question": "other"}, model=backend, cache=cache, ledger=False)
    assert third.cached is False  # different inputs, different key
    assert backend.calls == 2


async def test_errors_are_never_cached(answer_template, cache):
    backend = ScriptedBackend(["bad", "bad", "bad", GOOD])
    with pytest.raises(AttemptsExhausted):
        await agenerate(answer_template, {"question": "q"}, model=backend, cache=cache, ledger=False)
    assert cache.stats().entries == 0
    result = await agenerate(answer_template, {"question": "q"}, model=backend, cache=cache, ledger=False)
    assert result.cached is False and backend.calls == 4
    assert cache.stats().entries == 1


async def test_a_cache_hit_is_revalidated_against_accept(answer_template, cache):
    backend = ScriptedBackend([GOOD, {"answer": "Lyon", "confidence": 0.7}])
    await agenerate(answer_template, {"question": "q"}, model=backend, cache=cache, ledger=False)
    result = await agenerate(
        answer_template,
        {"question": "q"},
        model=backend,
        cache=cache,
        ledger=False,
        accept=lambda out: out.answer != "Paris" or "not Paris this time",
    )
    assert result.cached is False and result.output.answer == "Lyon"
    assert backend.calls == 2
    assert result.attempts[0].cache == "exact" and result.attempts[0].outcome == "invalid"
    assert result.attempts[1].reason is None  # the real call is not a re-ask: no feedback was sent
    assert len(backend.history[1].messages) == 2


async def test_a_corrupted_cache_entry_is_revalidated_against_the_schema(answer_template, cache):
    backend = ScriptedBackend([GOOD, GOOD])
    first = await agenerate(answer_template, {"question": "q"}, model=backend, cache=cache, ledger=False)
    # Overwrite the stored answer with one that no longer matches the schema.
    key = next(iter(_keys(cache)))
    stored = cache.get(key)
    cache.set(key, stored.response.model_copy(update={"text": '{"answer": 1}'}))
    second = await agenerate(answer_template, {"question": "q"}, model=backend, cache=cache, ledger=False)
    assert second.cached is False and backend.calls == 2
    assert second.output == first.output


def _keys(cache: ExactCache) -> list[str]:
    import sqlite3

    cache.flush()
    with sqlite3.connect(cache.path) as conn:
        return [row[0] for row in conn.execute("SELECT key FROM cache_entries")]


async def test_default_cache_and_ledger_live_in_the_state_dir(answer_template, isolated_state):
    backend = ScriptedBackend([GOOD])
    first = await agenerate(answer_template, {"question": "q"}, model=backend)
    second = await agenerate(answer_template, {"question": "q"}, model=backend)
    assert backend.calls == 1 and second.cached
    assert first.run_id == second.run_id  # one run per process and model unless run_id= says otherwise
    with Ledger(isolated_state / "ledger.sqlite") as ledger:
        assert ledger.totals(first.run_id).attempts == 2


async def test_run_id_is_used_as_given(answer_template, ledger):
    run = ledger.new_run("mine")
    result = await agenerate(
        answer_template,
        {"question": "q"},
        model=ScriptedBackend([GOOD]),
        run_id=run,
        cache=False,
        ledger=ledger,
    )
    assert result.run_id == run
    assert len(ledger.entries(run)) == 1


async def test_request_parameters_reach_the_backend(answer_template):
    backend = ScriptedBackend([GOOD])
    await agenerate(
        answer_template,
        {"question": "q"},
        model=backend,
        temperature=0.0,
        max_tokens=64,
        seed=7,
        stop=["\n\n"],
        frequency_penalty=0.5,
        cache=False,
        ledger=False,
    )
    sent = backend.history[0]
    assert (sent.temperature, sent.max_tokens, sent.seed, sent.stop) == (0.0, 64, 7, ["\n\n"])
    assert sent.params == {"frequency_penalty": 0.5}
    assert sent.output_model is answer_template.output_model


async def test_secrets_are_refused_as_call_arguments(answer_template):
    with pytest.raises(ConfigError, match="api_key"):
        await agenerate(
            answer_template, {"question": "q"}, model=ScriptedBackend([GOOD]), api_key="sk-x", cache=False
        )


async def test_exactly_one_of_model_or_router(answer_template):
    with pytest.raises(RoutingError, match="exactly one"):
        await agenerate(answer_template, {"question": "q"}, cache=False, ledger=False)


def test_sync_generate_works_inside_and_outside_a_loop(answer_template):
    backend = ScriptedBackend(default=json.dumps(GOOD))
    outside = generate(answer_template, {"question": "q"}, model=backend, cache=False, ledger=False)
    assert isinstance(outside, GenerateResult) and outside.output.answer == "Paris"

    async def inside() -> GenerateResult:
        return generate(answer_template, {"question": "q2"}, model=backend, cache=False, ledger=False)

    assert asyncio.run(inside()).output.answer == "Paris"
    assert backend.calls == 2


def test_templates_load_by_name_from_the_search_path(tmp_path, monkeypatch):
    folder = tmp_path / "tpl"
    folder.mkdir()
    (folder / "echo.yaml").write_text(
        "name: echo\nversion: 1.0.0\ndescription: Echo.\ntags: {technique: [role], task: [general]}\n"
        "inputs:\n  text: {type: string}\nmessages:\n  - role: user\n    content: 'say {{ text }}'\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("PROMPTKIT_TEMPLATE_PATH", str(folder))
    from promptkit.prompts import default_registry

    default_registry(refresh=True)
    backend = FunctionBackend(lambda request: request.messages[-1].content.upper())
    result = generate("echo", {"text": "hi"}, model=backend, cache=False, ledger=False)
    assert result.output == "SAY HI" and result.template == "echo"


def _prefilled_template():  # type: ignore[no-untyped-def]
    """A template whose last message opens the answer: a code fence the model writes on from."""
    from promptkit.prompts import Template

    return Template.from_dict(
        {
            "name": "prefilled",
            "version": "1.0.0",
            "description": "Code, prefilled.",
            "tags": {"technique": ["prefill"], "task": ["coding"]},
            "inputs": {"task": {"type": "string"}},
            "messages": [
                {"role": "user", "content": "{{ task }}"},
                {"role": "assistant", "content": "```python\n"},
            ],
        }
    )


async def test_a_prefilled_answer_is_repaired_with_the_prefill_kept_last() -> None:
    template = _prefilled_template()
    answers = iter(["```python\nx = 1\n", "```python\nx = 2\n"])
    backend = FunctionBackend(lambda request: next(answers), capabilities=Capabilities(prefill=True))

    def accept(text: str) -> bool | str:
        return True if "x = 2" in text else "x must be 2"

    result = await agenerate(
        template, {"task": "Set x."}, model=backend, accept=accept, cache=False, ledger=False, stop=["```"]
    )
    assert result.text == "```python\nx = 2\n"
    first, repair = backend.history
    assert [m.role for m in first.messages] == ["user", "assistant"]
    assert first.stop == ["```"]
    assert [(m.role, m.content) for m in repair.messages[1:]] == [
        ("assistant", "```python\nx = 1\n```"),  # the cut answer, shown closed
        (
            "user",
            "Your previous answer was not accepted:\nthe answer was rejected by the acceptance check: "
            "x must be 2\n\nAnswer again, correctly.",
        ),
        ("assistant", "```python\n"),
    ]


async def test_a_prefilled_files_answer_is_repaired_without_restating_the_format() -> None:
    # The prefill fixes the answer's format; restated, its placeholder ("<the whole file>") was copied by a
    # small model into its repair as an extra file.
    from promptkit.prompts import Template

    template = Template.from_dict(
        {
            "name": "prefilled_files",
            "version": "1.0.0",
            "description": "A file, prefilled.",
            "tags": {"technique": ["prefill"], "task": ["coding"]},
            "inputs": {"task": {"type": "string"}},
            "output": {"format": "files"},
            "messages": [
                {"role": "user", "content": "{{ task }}"},
                {"role": "assistant", "content": "a.py\n```python\n"},
            ],
        }
    )
    answers = iter(["a.py\n```python\nx = 1\n```", "a.py\n```python\nx = 2\n```"])
    backend = FunctionBackend(lambda request: next(answers), capabilities=Capabilities(prefill=True))
    result = await agenerate(
        template,
        {"task": "Set x."},
        model=backend,
        accept=lambda out: True if "x = 2" in out.files[0].content else "x must be 2",
        cache=False,
        ledger=False,
    )
    assert "x = 2" in result.text
    repair = backend.history[1].messages
    assert repair[-2].role == "user" and repair[-2].content.endswith(
        "x must be 2\n\nAnswer again, correctly."
    )
    assert "<the whole file>" not in repair[-2].content
    assert repair[-1].content == "a.py\n```python\n"


async def test_a_backend_that_cannot_continue_is_asked_to_start_with_the_prefill() -> None:
    template = _prefilled_template()
    backend = FunctionBackend(lambda request: "```python\nx = 1\n```")  # no prefill capability
    result = await agenerate(template, {"task": "Set x."}, model=backend, cache=False, ledger=False)
    assert result.text == "```python\nx = 1\n```"
    (request,) = backend.history
    assert [(m.role, m.content) for m in request.messages] == [
        ("user", "Set x.\n\nStart your answer with exactly this:\n```python\n")
    ]

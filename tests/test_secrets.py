"""A planted API key must appear nowhere promptkit writes: databases, logs, errors, results, CLI output."""

from __future__ import annotations

import json
import logging
import traceback
from pathlib import Path

import pytest

from promptkit.backends import Fault, LiteLLMBackend, StubOpenAIServer
from promptkit.cache import ExactCache
from promptkit.cli import main
from promptkit.errors import PromptkitError
from promptkit.generation import agenerate, reset_defaults
from promptkit.ledger import Ledger
from promptkit.prompts import Template, default_registry
from promptkit.routing import Deployment, RetryPolicy, Router, Tier

PLANTED = "sk-test-PLANTED-9f8e7d"
ENV = "PROMPTKIT_TEST_PLANTED_API_KEY"

TEMPLATE = {
    "name": "secret_probe",
    "version": "1.0.0",
    "description": "Probe for leaked secrets.",
    "tags": {"technique": ["role"], "task": ["general"]},
    "inputs": {"q": {"type": "string"}},
    "output": {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
    "messages": [{"role": "user", "content": "{{ q }}"}],
}


async def _sleep(_: float) -> None:
    return None


def _everything_under(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


async def test_a_planted_key_is_never_written_anywhere(tmp_path, monkeypatch, caplog, capsys):
    monkeypatch.setenv(ENV, PLANTED)
    monkeypatch.setenv("PROMPTKIT_HOME", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    reset_defaults()
    caplog.set_level(logging.DEBUG)
    template = Template.from_dict(TEMPLATE)
    state = tmp_path / "state"
    state.mkdir()
    cache = ExactCache(state / "cache.sqlite")
    ledger = Ledger(state / "ledger.sqlite")
    leaks: list[str] = []

    with StubOpenAIServer(reply={"a": "fine"}) as server:
        backend = LiteLLMBackend("openai/stub", api_base=server.base_url, api_key_env=ENV, name="stub")
        router = Router(
            [Tier("t", [Deployment(backend, timeout_s=30)])], retry=RetryPolicy(max_retries=1), sleep=_sleep
        )

        ok = await agenerate(template, {"q": "first"}, router=router, cache=cache, ledger=ledger)
        hit = await agenerate(template, {"q": "first"}, router=router, cache=cache, ledger=ledger)
        assert ok.output.a == "fine" and hit.cached
        leaks += [ok.model_dump_json(), hit.model_dump_json(), repr(ok), str(ok.model_dump())]
        # The key really was sent: the server saw an Authorization header (and redacted it in its log).
        assert "authorization" in {k.lower() for k in server.requests[0].headers}

        # Failing calls: a 401 (not retried) and dropped connections (retried, then given up).
        server.push_faults(Fault.client_error(401, message=f"invalid api key {PLANTED}"))
        with pytest.raises(PromptkitError) as unauthorized:
            await agenerate(template, {"q": "second"}, router=router, cache=cache, ledger=ledger)
        server.push_faults(Fault.drop(), Fault.drop())
        with pytest.raises(PromptkitError) as dropped:
            await agenerate(template, {"q": "third"}, router=router, cache=cache, ledger=ledger)
        for info in (unauthorized, dropped):
            exc = info.value
            # What a log handler or a crash report would print: the exception with its (unsuppressed) chain.
            leaks += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
            leaks += [json.dumps(a.model_dump(), default=str) for a in getattr(exc, "attempts", [])]

        # The CLI, through an alias whose api_key_env names the planted variable.
        folder = tmp_path / "templates"
        folder.mkdir()
        (folder / "secret_probe.yaml").write_text(
            "name: secret_probe\nversion: 1.0.0\ndescription: Probe.\ntags: {technique: [role], task: [general]}\n"
            "inputs:\n  q: {type: string}\nmessages:\n  - role: user\n    content: '{{ q }}'\n",
            encoding="utf-8",
        )
        (tmp_path / "promptkit.toml").write_text(
            f'[models.stub]\nmodel = "litellm:openai/stub"\napi_base = "{server.base_url}"\napi_key_env = "{ENV}"\n',
            encoding="utf-8",
        )
        monkeypatch.setenv("PROMPTKIT_TEMPLATE_PATH", str(folder))
        default_registry(refresh=True)
        reset_defaults()
        assert main(["generate", "secret_probe", "--model", "stub", "-i", "q=cli", "--json"]) == 0
        server.push_faults(Fault.client_error(401, message=f"bad key {PLANTED}"))
        assert main(["generate", "secret_probe", "--model", "stub", "-i", "q=cli-fail"]) != 0

    cache.close()
    ledger.close()
    reset_defaults()
    default_registry(refresh=True)
    captured = capsys.readouterr()
    leaks += [captured.out, captured.err, caplog.text]
    leaks += [r.getMessage() for r in caplog.records]

    written = _everything_under(tmp_path / "state")
    assert written, "the test must have written databases to inspect"
    assert PLANTED.encode() not in written
    for text in leaks:
        assert PLANTED not in text
    # The failures really happened and were recorded (scrubbed), so the search above had something to search.
    with Ledger(state / "ledger.sqlite") as check:
        outcomes = [e.outcome for e in check.entries()]
    assert "error" in outcomes and "transport_error" in outcomes and "ok" in outcomes

"""``promptkit generate``: answer on stdout, summary on stderr, --json, --router, errors as one line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from promptkit.backends import FunctionBackend, StubOpenAIServer, register_backend
from promptkit.cli import main
from promptkit.generation import reset_defaults
from promptkit.ledger import Ledger
from promptkit.prompts import default_registry

TEMPLATE = """\
name: capital
version: 1.0.0
description: Name a country's capital.
tags: {technique: [role], task: [general]}
inputs:
  country: {type: string}
  year: {type: integer, required: false, default: 2024}
output:
  type: object
  properties:
    capital: {type: string, maxLength: 100}
  required: [capital]
messages:
  - role: user
    content: "Capital of {{ country }} in {{ year }}? Answer as JSON."
"""

CAPITALS = {"France": "Paris", "Japan": "Tokyo"}


def _capital(request) -> dict:
    text = request.messages[-1].content
    country = next((c for c in CAPITALS if c in text), None)
    return {"capital": CAPITALS[country]} if country else {"wrong": True}


@pytest.fixture(autouse=True)
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "capital.yaml").write_text(TEMPLATE, encoding="utf-8")
    monkeypatch.setenv("PROMPTKIT_TEMPLATE_PATH", str(folder))
    monkeypatch.setenv("PROMPTKIT_HOME", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    default_registry(refresh=True)
    reset_defaults()
    register_backend(
        "capitals", lambda target, **options: FunctionBackend(_capital, name=f"capitals:{target}")
    )
    yield tmp_path
    reset_defaults()
    default_registry(refresh=True)


def test_prints_the_answer_then_a_summary(capsys):
    code = main(["generate", "capital", "--model", "capitals:v1", "--input", "country=France"])
    out, err = capsys.readouterr()
    assert code == 0
    assert json.loads(out) == {"capital": "Paris"}
    assert "model=capitals:v1" in err and "attempts=1" in err and "cached=no" in err


def test_second_run_is_cached_and_no_cache_skips_it(capsys):
    assert main(["generate", "capital", "--model", "capitals:v1", "-i", "country=Japan"]) == 0
    capsys.readouterr()
    assert main(["generate", "capital", "--model", "capitals:v1", "-i", "country=Japan"]) == 0
    assert "cached=yes" in capsys.readouterr().err
    assert main(["generate", "capital", "--model", "capitals:v1", "-i", "country=Japan", "--no-cache"]) == 0
    assert "cached=no" in capsys.readouterr().err


def test_json_prints_the_whole_result(capsys, project):
    (project / "in.yaml").write_text("country: France\nyear: 1900\n", encoding="utf-8")
    code = main(["generate", "capital", "--model", "capitals:v1", "--inputs", "in.yaml", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert data["output"] == {"capital": "Paris"}
    assert data["model"] == "capitals:v1" and data["cached"] is False
    assert data["attempts"][0]["outcome"] == "ok"
    assert "1900" not in data["text"]  # the answer, not the prompt
    assert set(data) >= {"text", "tier", "usage", "cost_usd", "run_id", "call_id"}


def test_exhaustion_is_one_line_and_a_nonzero_exit(capsys):
    code = main(
        ["generate", "capital", "--model", "capitals:v1", "-i", "country=Peru", "--max-attempts", "2"]
    )
    err = capsys.readouterr().err
    assert code != 0
    assert err.startswith("error: template 'capital':") and "2 attempt(s)" in err
    assert len(err.strip().splitlines()) == 1


def test_bad_input_names_the_field(capsys):
    code = main(["generate", "capital", "--model", "capitals:v1", "-i", "country=France", "-i", "year=soon"])
    err = capsys.readouterr().err
    assert code == 2 and "year" in err


def test_model_or_router_is_required(capsys):
    assert main(["generate", "capital", "-i", "country=France"]) != 0
    assert "exactly one of --model or --router" in capsys.readouterr().err


def test_router_file_routes_through_a_stub_server(capsys, project):
    with StubOpenAIServer(reply={"capital": "Paris"}) as server:
        config = project / "routing.toml"
        config.write_text(
            f"""
[state]
dir = "router-state"

[models.remote]
model = "litellm:openai/stub"
api_base = "{server.base_url}"
api_key_env = "PK_CLI_TEST_KEY"
input_cost_per_token = 0.000001
output_cost_per_token = 0.000002

[router]
tiers = ["remote"]
max_attempts_per_tier = 2
""",
            encoding="utf-8",
        )
        import os

        os.environ["PK_CLI_TEST_KEY"] = "sk-cli-test-0000"
        try:
            code = main(["generate", "capital", "--router", str(config), "-i", "country=France"])
        finally:
            del os.environ["PK_CLI_TEST_KEY"]
        out, err = capsys.readouterr()
        assert code == 0, err
        assert json.loads(out) == {"capital": "Paris"}
        assert "model=remote" in err and "tier=remote" in err
        assert server.request_count == 1
    # PROMPTKIT_HOME wins over [state] dir, as everywhere else.
    with Ledger(project / "state" / "ledger.sqlite") as ledger:
        assert ledger.totals(ledger.latest_run()).attempts == 1


def test_a_missing_api_key_fails_at_once_naming_the_variable(capsys, project, monkeypatch):
    pytest.importorskip("litellm")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with StubOpenAIServer(reply={"capital": "Paris"}) as server:
        config = project / "routing.toml"
        config.write_text(
            f'[models.remote]\nmodel = "litellm:openai/stub"\napi_base = "{server.base_url}"\n'
            '[router]\ntiers = ["remote"]\n',
            encoding="utf-8",
        )
        code = main(["generate", "capital", "--router", str(config), "-i", "country=France"])
        err = capsys.readouterr().err
        assert code == 2, err  # a ConfigError, not three transport errors
        assert "OPENAI_API_KEY" in err and "transport" not in err and len(err.strip().splitlines()) == 1
        assert "tier 'remote', model 'openai/stub'" in err
        assert server.request_count == 0


def test_typed_answers_print_as_json_lists_and_enums_too() -> None:
    import enum
    import json as _json

    from pydantic import BaseModel

    from promptkit.cli.generate import _answer_text
    from promptkit.evals._runner import _jsonable

    class Colour(enum.Enum):
        RED = "red"

    class Item(BaseModel):
        n: int
        colour: Colour

    answer = [Item(n=1, colour=Colour.RED), Item(n=2, colour=Colour.RED)]
    assert _json.loads(_answer_text(answer)) == [{"n": 1, "colour": "red"}, {"n": 2, "colour": "red"}]
    assert _answer_text(Colour.RED) == '"red"' and _answer_text("free text") == "free text"
    assert _jsonable(answer) == [{"n": 1, "colour": "red"}, {"n": 2, "colour": "red"}]
    assert _jsonable(Colour.RED) == "red" and _jsonable(3) == 3

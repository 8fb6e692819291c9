"""``promptkit view``: a real eval run (function backend, re-asks, a failed generation, injected markup) and
a real scaffold run state, served by the real Starlette/uvicorn server on a loopback port, read over HTTP
and in Debian's chromium through Playwright (never a downloaded browser)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from promptkit.backends import FunctionBackend, GenerateRequest
from promptkit.errors import EvalError
from promptkit.evals import compare_variants, run_suite, write_html
from promptkit.evals._transcript import TranscriptSource, transcript_html
from promptkit.evals._viewdata import discover
from promptkit.evals._viewer import ViewServer
from promptkit.execution._runstate import RunState, StepState
from promptkit.ledger import Ledger

from .test_html_browser import ARGS, CHROMIUM

INJECTED = '<script>window.__pwned = "script"</script><img src=x onerror="window.__pwned=\'img\'">'
N_ITEMS = 6

TEMPLATE = """\
name: arith
version: 1.0.0
description: Add two numbers and answer in JSON.
inputs:
  question: {type: string, description: The sum to compute.}
examples:
  - inputs: {question: "1 + 2"}
    output: {answer: 3}
messages:
  - role: system
    content: |
      Add the numbers.
      Reply with JSON only.
  - examples:
      - role: user
        content: "Question:\\n{{ example.inputs.question }}"
      - role: assistant
        content: "{{ example.output_json }}"
  - role: user
    content: "Question:\\n{{ question }}"
output:
  type: object
  properties: {answer: {type: integer}}
  required: [answer]
"""

SUITE = """\
name: viewer-arith
variants:
  - {name: plain, template: arith.yaml, examples: "first_k:0"}
  - {name: shots, template: arith.yaml}
models: [m1]
dataset: {path: data.jsonl, id_field: id, inputs: {question: q}, expected: a}
scorers:
  - {type: numeric}
concurrency: 1
max_attempts: 2
"""


def answer(request: GenerateRequest) -> str:
    """i1 is answered wrongly; i2 needs a re-ask; i3 never answers in JSON (markup included); others right."""
    asked = [m.content for m in request.messages if m.role == "user" and m.content.startswith("Question:")]
    a, b = (int(x) for x in asked[-1].split("\n")[1].split("+"))
    if a == 3:
        return f"{INJECTED} I will not use JSON"
    if a == 2 and not any(m.role == "assistant" and m.content == "nope" for m in request.messages):
        return "nope"
    return json.dumps({"answer": a + b + (1 if a == 1 else 0)})


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("viewer")
    rows = [{"id": f"i{n}", "q": f"{n} + {n}\n(show no work)", "a": str(2 * n)} for n in range(N_ITEMS)]
    (root / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (root / "arith.yaml").write_text(TEMPLATE, encoding="utf-8")
    (root / "suite.yaml").write_text(SUITE, encoding="utf-8")
    (root / "state").mkdir()
    with Ledger(root / "state" / "ledger.sqlite") as ledger:
        log = run_suite(
            root / "suite.yaml",
            out=root / "out" / "log.json",
            backends={"m1": FunctionBackend(answer, name="m1")},
            progress=False,
            cache=False,
            ledger=ledger,
            run_id="viewer-run",
        )
    (root / "out" / "ab.json").write_text(
        compare_variants(log, n_resamples=200).model_dump_json(), encoding="utf-8"
    )
    _scaffold_run(root / "ws")
    return {"root": root, "log": log}


def _scaffold_run(workspace: Path) -> None:
    """A scaffold run state as the executor leaves it: a passed step, a failed one with its answers."""
    plan = {
        "steps": [
            {"id": "models", "title": "Write the models", "kind": "model"},
            {"id": "api", "title": "Write the API", "kind": "model"},
        ]
    }
    with RunState.for_workspace(workspace) as state:
        state.create_run("run-1", workspace, json.dumps(plan), ["models", "api"], {})
        state.save_step("run-1", StepState(step_id="models", status="passed", attempts=1, cost_usd=0.01))
        state.save_step(
            "run-1",
            StepState(
                step_id="api",
                status="failed",
                attempts=2,
                errors=["ruff: F821 undefined name 'app'", "pytest: 1 failed"],
            ),
        )
    answers = workspace / ".promptkit" / "runs" / "run-1" / "answers" / "api"
    answers.mkdir(parents=True)
    (answers / "01-cheap.md").write_text(f"first answer {INJECTED}", encoding="utf-8")
    (answers / "02-cheap.md").write_text("second answer", encoding="utf-8")


@pytest.fixture(scope="module")
def server(project: dict[str, Any]):
    viewer = ViewServer(project["root"], port=0)
    url = viewer.start()
    yield url
    viewer.stop()


def get(url: str, host: str | None = None) -> tuple[int, Any, dict[str, str]]:
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as exc:
        body = exc.read()
        try:
            return exc.code, json.loads(body), dict(exc.headers)
        except ValueError:
            return exc.code, body.decode(), dict(exc.headers)


def runs_by_kind(url: str) -> dict[str, list[dict[str, Any]]]:
    status, runs, _ = get(url + "api/runs")
    assert status == 200
    out: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        out.setdefault(run["kind"], []).append(run)
    return out


# ------------------------------------------------------------------------------------------------ the log


def test_the_run_log_records_every_attempt_with_its_error(project: dict[str, Any]) -> None:
    frame = project["log"].frame()
    reasked = frame[("plain", "m1", "i2", 0)]
    assert reasked.passed is True
    assert [(a.attempt, a.reason, a.outcome) for a in reasked.attempts] == [
        (1, None, "invalid"),
        (2, "reask", "ok"),
    ]
    assert reasked.attempts[0].raw_output == "nope" and reasked.attempts[0].error
    assert reasked.attempts[1].raw_output is None  # the final output, not stored twice
    failed = frame[("shots", "m1", "i3", 0)]
    assert failed.error is not None and len(failed.attempts) == 2
    assert INJECTED in (failed.attempts[0].raw_output or "") and failed.attempts[0].error
    assert failed.attempts[1].raw_output is None and INJECTED in (failed.output or "")


# ----------------------------------------------------------------------------------------------- the API


def test_runs_lists_one_entry_per_eval_run_plus_ledger_and_scaffold(server: str) -> None:
    kinds = runs_by_kind(server)
    assert [r["run"] for r in kinds["eval"]] == ["viewer-run"]  # the JSON, run log and A/B report: one run
    assert kinds["eval"][0]["title"] == "viewer-arith" and kinds["eval"][0]["status"] == "complete"
    assert "ab" not in kinds
    assert [r["run"] for r in kinds["scaffold"]] == ["run-1"]
    assert any(r["run"] == "eval-viewer-run" for r in kinds["ledger"])


def test_run_has_variants_side_by_side_and_rows_with_failures(server: str, project: dict[str, Any]) -> None:
    run_id = runs_by_kind(server)["eval"][0]["id"]
    status, run, headers = get(f"{server}api/runs/{run_id}")
    assert status == 200
    assert "script-src 'self'" in headers["content-security-policy"]
    assert run["columns"] == ["plain", "shots"]
    assert [r["label"] for r in run["rows"]] == [f"i{n}" for n in range(N_ITEMS)]
    assert {r["label"] for r in run["rows"] if r["failed"]} == {"i1", "i3"}
    assert "A/B:" in run["summary_html"]  # the A/B report next to the log
    i3 = run["rows"][3]
    assert [c["badge"] for c in i3["cells"]["plain"]] == ["error"]


def test_item_shows_transcript_inputs_attempts_scores_and_escapes_output(server: str) -> None:
    run_id = runs_by_kind(server)["eval"][0]["id"]
    status, item, _ = get(f"{server}api/runs/{run_id}/items/2")
    assert status == 200 and item["label"] == "i2"
    html = item["html"]
    # Inputs as text: a real newline, not JSON's \n.
    assert item["inputs"] == {"question": "2 + 2\n(show no work)"}
    assert '<pre class="input">2 + 2\n(show no work)</pre>' in html
    assert "\\n" not in html
    # The transcript, with the few-shot example turns of the "shots" variant marked.
    assert (
        '<div class="turn role-user"><div class="role">user</div><pre>Question:\n2 + 2\n(show no work)'
        in html
    )
    assert html.count("few-shot example</span>") == 2  # one example: its user and assistant turns
    assert "the one the run used" in html
    # Every attempt, with the re-ask's reason and the error that caused it.
    assert "<td>reask</td>" in html and '<pre class="attempt-output">nope</pre>' in html
    assert "numeric: 1 ✓" in html

    _, failed, _ = get(f"{server}api/runs/{run_id}/items/3")
    assert INJECTED not in failed["html"]
    assert "&lt;script&gt;window.__pwned" in failed["html"]


def test_scaffold_and_ledger_items(server: str) -> None:
    kinds = runs_by_kind(server)
    _, run, _ = get(f"{server}api/runs/{kinds['scaffold'][0]['id']}")
    assert [(r["label"], r["failed"]) for r in run["rows"]] == [("models", False), ("api", True)]
    _, step, _ = get(f"{server}api/runs/{kinds['scaffold'][0]['id']}/items/1")
    assert "second answer" in step["html"] and "pytest: 1 failed" in step["html"]
    assert INJECTED not in step["html"] and "no transcript" in step["html"]

    ledger = next(r for r in kinds["ledger"] if r["run"] == "eval-viewer-run")
    _, run, _ = get(f"{server}api/runs/{ledger['id']}")
    assert len(run["rows"]) == 2 * N_ITEMS  # one call per (item, variant)
    failed = [r for r in run["rows"] if r["failed"]]
    assert len(failed) == 2  # i3 in both variants
    _, call, _ = get(f"{server}api/runs/{ledger['id']}/items/{failed[0]['n']}")
    assert "invalid" in call["html"] and "never the prompt or the answer" in call["html"]


def test_unknown_run_item_and_foreign_host_are_refused(server: str) -> None:
    assert get(f"{server}api/runs/nope")[0] == 404
    run_id = runs_by_kind(server)["eval"][0]["id"]
    assert get(f"{server}api/runs/{run_id}/items/999")[0] == 404
    # A page on another origin that resolves its own name to 127.0.0.1 (DNS rebinding) gets nothing.
    assert get(f"{server}api/runs", host="attacker.example")[0] == 400


# ------------------------------------------------------------------------------------------- bad input


def test_a_path_without_logs_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text('{"name": "x"}', encoding="utf-8")
    with pytest.raises(EvalError, match="no eval logs, A/B reports, scaffold runs or ledger") as info:
        discover(tmp_path)
    assert str(tmp_path) in str(info.value)


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("log.json", '{"suite_hash": "x", "run_id": "r", "results": [', "not valid JSON"),
        ("log.json", '{"suite_hash": "x", "run_id": "r", "results": []}', "Field required"),
        ("notes.json", '{"hello": 1}', "not an eval log or A/B report"),
        ("run.sqlite", "SQLite format 3\x00 but then garbage", "not an eval run log"),
    ],
)
def test_a_corrupt_log_named_directly_is_an_error_naming_it(
    tmp_path: Path, name: str, content: str, problem: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(EvalError, match=problem) as info:
        discover(path)
    assert str(info.value).startswith(str(path))


def test_a_corrupt_log_in_a_folder_is_listed_with_its_error(tmp_path: Path, project: dict[str, Any]) -> None:
    shutil.copy(project["root"] / "out" / "log.json", tmp_path / "good.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"suite_hash": "x", "run_id": "r", "results": [', encoding="utf-8")
    viewer = ViewServer(tmp_path, port=0)
    url = viewer.start()
    try:
        _, runs, _ = get(url + "api/runs")
        broken = [r for r in runs if r["error"]]
        assert len(runs) == 2 and len(broken) == 1 and str(bad) in broken[0]["error"]
        status, body, _ = get(f"{url}api/runs/{broken[0]['id']}")
        assert status == 422 and str(bad) in body["error"]
    finally:
        viewer.stop()


def test_cli_reports_a_path_without_logs_and_exits_2(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "promptkit.cli", "view", str(tmp_path), "--no-open", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"error: {tmp_path}: no eval logs, A/B reports, scaffold runs or ledger found here "
        "(looked for *.json and *.sqlite that promptkit writes)"
    ]


def test_importing_promptkit_and_the_command_does_not_load_the_server() -> None:
    code = textwrap.dedent(
        """
        import sys, promptkit, promptkit.evals, promptkit.cli.view
        print(",".join(m for m in ("starlette", "uvicorn") if m in sys.modules))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_transcript_is_found_from_the_logs_folder_and_never_shown_for_a_changed_template(
    tmp_path: Path, project: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("suite.yaml", "arith.yaml", "data.jsonl"):
        shutil.copy(project["root"] / name, tmp_path / name)
    # As `promptkit eval suite.yaml --out out/log.json` records it: relative to where the run started.
    log = project["log"].model_copy(update={"suite_path": "suite.yaml"})
    monkeypatch.chdir(project["root"].parent)
    result = log.frame()[("shots", "m1", "i1", 0)]
    found = TranscriptSource(log, tmp_path / "out" / "log.json").for_result(result)
    assert found.turns is not None and [t.example for t in found.turns] == [None, "turn", "turn", None]

    changed = (tmp_path / "arith.yaml").read_text(encoding="utf-8").replace("Add the numbers.", "Sum them.")
    (tmp_path / "arith.yaml").write_text(changed, encoding="utf-8")
    missing = TranscriptSource(log, tmp_path / "out" / "log.json").for_result(result)
    assert missing.turns is None and "changed since the run" in missing.note
    assert "changed since the run" in transcript_html(missing)


# ------------------------------------------------------------------------------------ the static report


def test_static_report_shows_the_same_transcripts_and_readable_inputs(
    tmp_path: Path, project: dict[str, Any]
) -> None:
    log = project["log"]
    path = write_html(compare_variants(log, n_resamples=200), log, tmp_path / "report.html")
    text = path.read_text(encoding="utf-8")
    assert '<details class="prompt"><summary>prompt</summary><div class="transcript">' in text
    assert "few-shot example</span>" in text
    assert '<pre class="input">2 + 2\n(show no work)</pre>' in text
    assert '<details class="attempts"><summary>2 attempts</summary>' in text
    assert INJECTED not in text


# ----------------------------------------------------------------------------------------- the browser


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        pytest.fail("chromium is missing: run `apt-get update && apt-get install -y chromium` (as root)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is missing: run `pip install playwright` (never `playwright install`)")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield instance
        instance.close()


def test_browser_filters_to_failures_opens_an_item_and_shows_its_transcript(browser, server: str) -> None:
    page = browser.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None,
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.goto(server)
    page.locator("#runs a", has_text="viewer-arith").click()
    rows = page.locator("#items tbody tr.item-row")
    rows.first.wait_for()
    assert rows.count() == N_ITEMS
    assert page.locator("#shown-count").inner_text() == f"{N_ITEMS} of {N_ITEMS} items shown"
    assert [h.inner_text() for h in page.locator("#items thead th").all()] == ["item", "plain", "shots"]

    page.locator("#failures-only").check()
    visible = page.locator("#items tbody tr.item-row:visible")
    assert visible.count() == 2
    assert {visible.nth(i).get_attribute("data-item") for i in range(2)} == {"i1", "i3"}
    page.locator("#search").fill("will not use json")
    assert page.locator("#shown-count").inner_text() == f"1 of {N_ITEMS} items shown"
    page.locator("#search").fill("")

    page.locator('#items tr[data-item="i1"]').click()
    detail = page.locator("#detail-body")
    detail.locator(".pane").first.wait_for()
    assert page.locator("#detail-title").inner_text() == "i1"
    shots = detail.locator('.pane[data-variant="shots"]')
    turns = shots.locator(".turn")
    assert turns.count() == 4  # system, the example's user and assistant turns, the item's question
    assert turns.nth(0).inner_text().startswith("SYSTEM\nAdd the numbers.\nReply with JSON only.")
    assert "few-shot example" in turns.nth(1).inner_text()
    assert turns.nth(3).locator("pre").inner_text() == "Question:\n1 + 1\n(show no work)"
    assert "few-shot example" not in turns.nth(3).inner_text()
    assert shots.locator("pre.output").inner_text() == '{"answer": 3}'
    assert "numeric: 0 ✗" in shots.inner_text()
    assert detail.locator("pre.input").first.inner_text() == "1 + 1\n(show no work)"

    # The item whose output carries markup: shown as text, never run.
    page.locator('#items tr[data-item="i3"]').click()
    page.locator("#detail-title").filter(has_text=re.compile(r"^i3$")).wait_for()
    assert INJECTED in detail.inner_text()
    assert page.evaluate("window.__pwned") is None
    assert problems == []
    page.close()

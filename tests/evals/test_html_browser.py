"""The HTML report in a real browser (Debian's chromium via Playwright): it loads cleanly, the filters
work, and a ``<script>`` in a model's output does not run.

Needs ``apt-get install -y chromium`` and ``pip install playwright`` (never ``playwright install``). Missing
either is a failure with the command to run, not a skip: this is the only check that the page really works.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from promptkit.evals._ab import compare_variants
from promptkit.evals._html import write_html

from .test_ab_logs import build_log, discordant, from_pairs

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INJECTED = '<script>window.__pwned = "script"</script><img src=x onerror="window.__pwned=\'img\'">'


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


@pytest.fixture
def report_file(tmp_path: Path):
    a, b = discordant(30, b01=12, b10=1, both_pass=10)  # both fail on 7 items: 20 rows have a failure
    log = build_log(
        from_pairs(a, b),
        thresholds={"pass_rate": 0.5},
        output=lambda variant, i, r: INJECTED if i == 0 else f"{variant} output number {i}",
    )
    report = compare_variants(log, n_resamples=2000)
    return write_html(report, log, tmp_path / "report.html"), report, log


def test_report_loads_filters_and_does_not_run_injected_script(browser, report_file):
    path, report, log = report_file
    page = browser.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None,
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.goto(path.as_uri())

    assert page.title() == "A/B report: synthetic"
    assert page.locator("#verdict").inner_text() == report.verdict
    summary = page.locator("#variants").inner_text()
    assert "36.7%" in summary and "73.3%" in summary  # A passes 1 + 10 of 30, B 12 + 10
    assert page.locator("#comparisons .p-value").inner_text() == "0.0034"  # exact McNemar 12 vs 1
    assert page.locator("svg").count() == 2

    rows = page.locator("#matrix tbody tr.item-row")
    assert rows.count() == 30
    assert page.locator("#shown-count").inner_text() == "30 of 30 items shown"
    page.locator("#failures-only").check()
    visible = page.locator("#matrix tbody tr.item-row:visible")
    assert visible.count() == 20
    for i in range(visible.count()):
        assert visible.nth(i).get_attribute("data-failed") == "1"
    assert page.locator("#shown-count").inner_text() == "20 of 30 items shown"

    page.locator("#search").fill("output number 2")  # items 2, 20..29; of those, the failing ones
    expected = {f"item-{i:03d}" for i in [2, *range(20, 30)] if not (a_pass(log, i) and b_pass(log, i))}
    shown = {visible.nth(i).get_attribute("data-item") for i in range(visible.count())}
    assert shown == expected
    page.locator("#failures-only").uncheck()
    assert page.locator("#matrix tbody tr.item-row:visible").count() == 11

    # The injected markup is on the page as text, and it never ran.
    page.locator("#search").fill("")
    assert INJECTED in page.locator('tr[data-item="item-000"]').inner_text()
    assert page.evaluate("window.__pwned") is None
    assert problems == []
    page.close()


def _passed(log, variant: str, i: int) -> bool:
    return bool(log.frame()[(variant, "cheap", f"item-{i:03d}", 0)].passed)


def a_pass(log, i: int) -> bool:
    return _passed(log, "A", i)


def b_pass(log, i: int) -> bool:
    return _passed(log, "B", i)


def test_judge_column_shows_verdicts_and_does_not_run_injected_rationales(browser, tmp_path: Path):
    from promptkit.backends import FunctionBackend
    from promptkit.evals._pairwise import judge_pairs

    def judge(request) -> dict[str, str]:
        first = request.messages[-1].content.split("First answer:")[1].split("Second answer:")[0]
        if first.strip().endswith((" 0", " 1")):
            return {"rationale": INJECTED, "winner": "tie"}
        return {"rationale": INJECTED, "winner": "first" if "B output" in first else "second"}

    a, b = discordant(6, b01=3, b10=0, both_pass=2)
    log = build_log(from_pairs(a, b), output=lambda variant, i, r: f"{variant} output number {i}")
    judgements = judge_pairs(log, FunctionBackend(judge), cache=False, ledger=False)
    path = write_html(
        compare_variants(log, judgements=judgements, n_resamples=2000), log, tmp_path / "j.html"
    )

    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri())
    assert page.locator("#matrix thead th.judge").inner_text() == "judge"
    cell = page.locator('tr[data-item="item-004"] td.judge')
    assert "B vs A: B (both orders)" in cell.inner_text() and INJECTED in cell.inner_text()
    assert page.locator("#pairwise tbody tr").count() == 1
    page.locator("#search").fill("B (both orders)")  # the filter searches the judge column too
    assert page.locator("#shown-count").inner_text() == "4 of 6 items shown"
    assert page.locator('tr[data-item="item-001"]').is_hidden()
    assert page.evaluate("window.__pwned") is None and errors == []
    page.close()

"""The judge's pairwise section in the Markdown, terminal and HTML reports; rationales stay inert text."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from promptkit.backends import FunctionBackend
from promptkit.evals._ab import compare_variants
from promptkit.evals._html import to_html
from promptkit.evals._pairwise import judge_pairs
from promptkit.evals._report import item_rows, print_report, to_markdown

from .test_pairwise import OFF, always_first, answers, fair, marked_log
from .test_report import _Collector

FAST = {"n_resamples": 2000}
EVIL = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned=2">|`x`'


def evil_fair(request: Any) -> dict[str, str]:
    verdict = fair(request)
    first, _ = answers(request)
    if first.startswith("A answer 0"):
        verdict["rationale"] = EVIL
    return verdict


def _report(judge: Any, n: int = 10):
    log = marked_log({"B": set(range(1, n))}, n)
    return compare_variants(log, judgements=judge_pairs(log, FunctionBackend(judge), **OFF), **FAST), log


def test_markdown_shows_the_pairwise_table_verdicts_and_escaped_rationales():
    report, log = _report(evil_fair)
    md = to_markdown(report, log)
    assert "## Judge (pairwise, both orders)" in md
    assert f"**Judge verdict:** {report.pairwise.verdict}" in md
    assert "| A | B | 10 | 9 | 0 | 1 (0) | 100% |" in md
    assert "| item-001 | cheap | A vs B | B (both orders) | B | B |" in md
    assert "<script>" not in md and "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in md
    assert "\\|&#96;x&#96;" in md  # pipes and backticks cannot break the table
    assert "Warning" not in md


def test_markdown_and_terminal_warn_about_a_position_biased_judge():
    report, log = _report(always_first)
    md = to_markdown(report, log)
    assert "- **Warning:** Position bias: the two orders agreed on only 0% of items" in md
    assert "| item-001 | cheap | A vs B | tie: the orders disagree | A | B |" in md

    console = Console(record=True, width=250, color_system=None)
    print_report(report, log, console)
    text = " ".join(console.export_text().split())
    assert "judge (pairwise, both orders)" in text
    assert "warning: Position bias" in text and report.pairwise.verdict in text
    assert "orders agreed 0%" in text


def test_terminal_shows_the_pairwise_numbers():
    report, log = _report(fair)
    console = Console(record=True, width=250, color_system=None)
    print_report(report, log, console)
    text = console.export_text()
    assert "B wins" in text and "orders agree" in text and "first shown won" in text
    row = next(line for line in text.splitlines() if line.strip().startswith("│ A") and "100%" in line)
    assert [cell.strip() for cell in row.strip("│ \n").split("│")][:7] == [
        "A",
        "B",
        "10",
        "9",
        "0",
        "1 (0)",
        "100%",
    ]
    assert "judge verdict: Judge prefers B over A in 9 of 10 items" in " ".join(text.split())


def test_item_rows_carry_each_items_judgements():
    report, log = _report(fair, n=4)
    rows = item_rows(report, log)
    assert [[j.item_id for j in row.judgements] for row in rows] == [[row.item_id] for row in rows]
    plain = compare_variants(log, **FAST)
    assert all(row.judgements == [] for row in item_rows(plain, log))


def test_html_shows_the_judge_table_and_column_and_escapes_rationales():
    report, log = _report(evil_fair)
    page = to_html(report, log)
    parser = _Collector()
    parser.feed(page)
    assert [tag for tag, _ in parser.tags].count("script") == 1
    assert not [tag for tag, _ in parser.tags if tag == "img"]
    assert not any(name.startswith("on") for _, attrs in parser.tags for name in attrs)
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in page
    assert '<table id="pairwise">' in page and '<th class="judge">judge</th>' in page
    assert page.count('<td class="judge">') == 10
    assert f'id="pairwise-verdict">{report.pairwise.verdict}</p>' in page
    assert 'id="position-bias"' not in page

    biased, log = _report(always_first)
    page = to_html(biased, log)
    assert 'id="position-bias"' in page and "tie: the orders disagree" in page

    plain = to_html(compare_variants(log, **FAST), log)
    assert 'class="judge"' not in plain and 'id="pairwise"' not in plain

"""Markdown, terminal and HTML reports: the numbers they show, and that untrusted output stays inert."""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from rich.console import Console

from promptkit.errors import EvalError
from promptkit.evals._ab import compare_variants
from promptkit.evals._html import to_html, write_html
from promptkit.evals._report import item_rows, print_report, to_markdown

from .test_ab_logs import build_log, discordant, from_pairs

FAST = {"n_resamples": 2000}
EVIL = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned=2">|`x`'


def _log(**kwargs):
    a, b = discordant(40, b01=14, b10=2, both_pass=16)
    return build_log(
        from_pairs(a, b),
        output=lambda variant, i, r: EVIL if i == 0 else f"{variant} answer {i}",
        rationale=lambda variant, i, r: f"rationale {variant} {i} <b>bold</b>",
        **kwargs,
    )


# ------------------------------------------------------------------------------------------------ markdown


def test_markdown_shows_verdict_variants_comparisons_and_gates():
    log = _log(thresholds={"pass_rate": 0.6})
    report = compare_variants(log, **FAST)
    md = to_markdown(report, log)
    assert md.startswith("# A/B report: synthetic\n")
    assert f"**Verdict:** {report.verdict}" in md
    # Pass rates from the data: A passes 2 + 16 of 40, B 14 + 16.
    assert re.search(r"^\| A \| tpl_A \| 45\.0% \|", md, re.M)
    assert re.search(r"^\| B \| tpl_B \| 75\.0% \|", md, re.M)
    c = report.comparisons[0]
    assert "| A | B | 40 | +30.0 pts |" in md and "| McNemar |" in md and "| yes |" in md
    assert re.search(r"^\| pass_rate \| A \| 45\.0% \| ≥ 0.6 \| \*\*FAIL\*\* \|", md, re.M)
    assert re.search(r"^\| pass_rate \| B \| 75\.0% \| ≥ 0.6 \| pass \|", md, re.M)
    assert c.verdict in md


def test_markdown_lists_failures_with_output_escaped():
    log = _log()
    report = compare_variants(log, **FAST)
    md = to_markdown(report, log)
    failing = sum(1 for r in log.results if r.passed is False)
    assert f"## Failures ({failing}, first 25 shown)" in md
    assert "<script>" not in md and "<img" not in md and "<b>" not in md
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in md
    # Pipes and backticks from the output cannot break the table or open code spans.
    row = next(line for line in md.splitlines() if "__pwned" in line)
    assert row.count(" | ") == 6 and "\\|" in row and "`" not in row


def test_markdown_not_enough_evidence_shows_items_needed():
    a, b = discordant(30, b01=3, b10=2, both_pass=10)
    log = build_log(from_pairs(a, b))
    report = compare_variants(log, **FAST)
    md = to_markdown(report, log)
    needed = report.comparisons[0].needed_items
    assert needed is not None
    assert "Not enough evidence" in md and re.search(rf"\| no \| {needed} \|$", md, re.M)


# ------------------------------------------------------------------------------------------------ terminal


def test_terminal_report_shows_numbers_and_does_not_parse_markup():
    a, b = discordant(40, b01=14, b10=2, both_pass=16)
    log = build_log(
        {"[red]plain[/red]": [[x] for x in a], "B": [[y] for y in b]}, thresholds={"pass_rate": 0.9}
    )
    report = compare_variants(log, **FAST)
    console = Console(record=True, width=200, color_system=None)
    print_report(report, log, console)
    text = console.export_text()
    assert "[red]plain[/red]" in text  # shown literally, not as colour markup
    assert "45.0%" in text and "75.0%" in text and "+30.0 pts" in text
    assert "FAIL" in text and report.verdict in " ".join(text.split())


# -------------------------------------------------------------------------------------------------- HTML


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts.append(data)


def test_html_escapes_untrusted_output_everywhere():
    log = _log()
    report = compare_variants(log, **FAST)
    page = to_html(report, log)
    parser = _Collector()
    parser.feed(page)
    assert [tag for tag, _ in parser.tags].count("script") == 1  # only the report's own
    assert not [tag for tag, _ in parser.tags if tag == "img"]
    assert not any(name.startswith("on") for _, attrs in parser.tags for name in attrs)
    assert "__pwned" not in "".join(parser.scripts)
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page  # rationales too


def test_html_escapes_names_in_attributes_and_svg():
    a, b = discordant(30, b01=10, b10=1, both_pass=10)
    evil_name = '"><script>window.__pwned=3</script>'
    log = build_log({evil_name: [[x] for x in a], "B": [[y] for y in b]})
    page = to_html(compare_variants(log, **FAST), log)
    parser = _Collector()
    parser.feed(page)
    assert [tag for tag, _ in parser.tags].count("script") == 1
    assert evil_name not in page
    variant_attrs = [attrs.get("data-variant") for _, attrs in parser.tags if "data-variant" in attrs]
    assert evil_name in variant_attrs  # the attribute round-trips to the exact name, as inert text


def test_html_is_self_contained_and_its_csp_allows_only_its_own_script():
    log = _log()
    page = to_html(compare_variants(log, **FAST), log)
    parser = _Collector()
    parser.feed(page)
    for tag, attrs in parser.tags:
        for name in ("src", "href"):
            value = attrs.get(name)
            assert value is None or value.startswith("data:"), (tag, name, value)
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", page)
    (script,) = parser.scripts
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    csp = next(
        a["content"]
        for t, a in parser.tags
        if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"
    )
    assert f"script-src 'sha256-{digest}'" in csp and "default-src 'none'" in csp


def test_html_summary_matrix_and_failure_flags_follow_the_data():
    log = _log(thresholds={"pass_rate": 0.6})
    report = compare_variants(log, **FAST)
    page = to_html(report, log)
    parser = _Collector()
    parser.feed(page)
    rows = [attrs for tag, attrs in parser.tags if tag == "tr" and attrs.get("class") == "item-row"]
    assert len(rows) == 40
    # A row fails when any variant failed on it: everything except the 16 items both pass.
    assert sum(1 for r in rows if r["data-failed"] == "1") == 24
    assert sum(1 for row in item_rows(report, log) if row.failed) == 24
    assert "<title>A/B report: synthetic</title>" in page
    assert "45.0%" in page and "75.0%" in page and report.verdict in page
    assert page.count("<svg") == 2 and 'id="failures-only"' in page and 'id="search"' in page
    assert '<td class="gate-fail">FAIL</td>' in page


def test_write_html_writes_the_file_and_names_it_in_errors(tmp_path: Path):
    log = _log()
    report = compare_variants(log, **FAST)
    path = write_html(report, log, tmp_path / "sub" / "r.html")
    assert path.read_text(encoding="utf-8") == to_html(report, log)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(EvalError, match="cannot write the HTML report") as info:
        write_html(report, log, blocker / "r.html")
    assert str(blocker / "r.html") in str(info.value)

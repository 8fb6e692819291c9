"""The A/B report as one self-contained, offline HTML file.

Everything is inline: the CSS, a few lines of vanilla JS (the "failures only" filter and the text search),
and the charts, drawn here as SVG. Nothing is fetched from anywhere.

Model output, inputs, rationales and every name in the log are untrusted. All of it is HTML-escaped on
the way in, and as a second line of defence the page carries a Content-Security-Policy that lets only
the report's own script run (by its SHA-256), so a ``<script>`` that slipped through would still not run.
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
from pathlib import Path
from typing import Any

from promptkit.errors import EvalError
from promptkit.evals._ab import ABReport, metric_value, result_failed
from promptkit.evals._eval_log import EvalLog, ItemResult
from promptkit.evals._pairwise import PairwiseJudgement, PairwiseReport
from promptkit.evals._report import (
    ItemRow,
    format_diff,
    format_p,
    format_score,
    item_rows,
    judgement_summary,
    order_pick,
    pairwise_cells,
)
from promptkit.evals._transcript import (
    FRAGMENT_CSS,
    TranscriptSource,
    attempts_html,
    inputs_html,
    transcript_html,
)

__all__ = ["to_html", "write_html"]

_CSS = """
:root { --fg:#1d2330; --muted:#5d6778; --line:#d9dee7; --bg:#f7f8fa; --pass:#1a7f37; --fail:#c62828;
  --accent:#2f5fd0; --warn:#9a6700; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
  margin: 0; padding: 24px 32px; background: #fff; }
h1 { font-size: 22px; margin: 0 0 8px; } h2 { font-size: 17px; margin: 28px 0 8px; }
.verdict { font-size: 16px; padding: 10px 14px; border-left: 4px solid var(--warn); background: var(--bg); }
.verdict.has-winner { border-left-color: var(--pass); }
.meta { color: var(--muted); margin: 8px 0 0; }
table { border-collapse: collapse; margin: 6px 0 12px; }
th, td { border: 1px solid var(--line); padding: 5px 8px; text-align: left; vertical-align: top; }
th { background: var(--bg); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.winner td:first-child { font-weight: 700; color: var(--pass); }
.yes { color: var(--pass); font-weight: 600; } .no { color: var(--warn); }
.gate-fail { color: var(--fail); font-weight: 700; } .gate-pass { color: var(--pass); }
figure { margin: 6px 0 16px; } figcaption { color: var(--muted); font-size: 12px; }
svg text { font: 12px system-ui, sans-serif; fill: var(--fg); }
.controls { display: flex; gap: 16px; align-items: center; margin: 8px 0; position: sticky; top: 0;
  background: #fff; padding: 6px 0; z-index: 1; }
.controls input[type=search] { width: 320px; padding: 4px 8px; }
#shown-count { color: var(--muted); }
#matrix { width: 100%; table-layout: fixed; }
#matrix td { word-wrap: break-word; }
col.col-item { width: 10em; } col.col-inputs { width: 22%; }
.cell.failed { background: #fff5f5; } .cell.passed { background: #f6fff8; }
.result + .result { border-top: 1px dashed var(--line); margin-top: 6px; padding-top: 6px; }
.badge { display: inline-block; font-size: 11px; font-weight: 700; padding: 0 6px; border-radius: 8px;
  color: #fff; background: var(--muted); }
.badge.pass { background: var(--pass); } .badge.fail, .badge.error { background: var(--fail); }
pre { white-space: pre-wrap; word-break: break-word; margin: 4px 0; max-height: 14em; overflow: auto;
  background: var(--bg); padding: 4px 6px; font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; }
pre.error { background: #fff0f0; color: var(--fail); }
ul.scores { margin: 4px 0; padding-left: 18px; } .rationale { color: var(--muted); font-size: 12px; }
.item-id { font-weight: 600; } .model { color: var(--muted); font-size: 12px; }
.warning { padding: 8px 12px; border-left: 4px solid var(--fail); background: #fff5f5; }
.judgement + .judgement { border-top: 1px dashed var(--line); margin-top: 6px; padding-top: 6px; }
.judgement .pick { font-weight: 600; } .judgement.disagree .pick { color: var(--warn); }
[hidden] { display: none !important; }
"""

_JS = """
(function () {
  "use strict";
  var failuresOnly = document.getElementById("failures-only");
  var search = document.getElementById("search");
  var count = document.getElementById("shown-count");
  var rows = Array.prototype.slice.call(document.querySelectorAll("#matrix tbody tr.item-row"));
  var texts = rows.map(function (row) { return row.textContent.toLowerCase(); });
  function apply() {
    var onlyFailures = failuresOnly.checked;
    var needle = search.value.trim().toLowerCase();
    var shown = 0;
    rows.forEach(function (row, i) {
      var visible = (!onlyFailures || row.getAttribute("data-failed") === "1") &&
        (needle === "" || texts[i].indexOf(needle) !== -1);
      row.hidden = !visible;
      if (visible) { shown += 1; }
    });
    count.textContent = shown + " of " + rows.length + " items shown";
  }
  failuresOnly.addEventListener("change", apply);
  search.addEventListener("input", apply);
  apply();
})();
"""


def _e(value: object) -> str:
    """Escape untrusted text for HTML element content and attribute values alike."""
    return html.escape(str(value), quote=True)


def _script_hash(script: str) -> str:
    return base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")


# ------------------------------------------------------------------------------------------------- charts


def _axis(low: float, high: float) -> tuple[float, float]:
    if high - low < 1e-12:
        pad = max(abs(low) * 0.1, 0.5)
        return low - pad, high + pad
    pad = (high - low) * 0.06
    return low - pad, high + pad


def _ticks(low: float, high: float, target: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart) inside ``[low, high]``."""
    raw = (high - low) / target
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9)
    last = math.floor(high / step + 1e-9)
    return [k * step for k in range(first, last + 1)]


def _interval_svg(
    rows: list[tuple[str, float, float, float, str]],
    domain: tuple[float, float],
    zero: bool,
    fmt: Any,
    label: str,
) -> str:
    """Horizontal interval chart: one row per (label, estimate, low, high, css colour) on a shared axis."""
    width, left, right, row_h, top = 720, 220, 90, 30, 10
    height = top + row_h * len(rows) + 30
    lo, hi = domain

    def x(value: float) -> float:
        return left + (value - lo) / (hi - lo) * (width - left - right)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{_e(label)}">'
    ]
    axis_y = top + row_h * len(rows) + 4
    parts.append(f'<line x1="{left}" y1="{axis_y}" x2="{width - right}" y2="{axis_y}" stroke="#9aa3b2"/>')
    for value in _ticks(lo, hi):
        parts.append(
            f'<line x1="{x(value):.1f}" y1="{axis_y}" x2="{x(value):.1f}" y2="{axis_y + 4}" stroke="#9aa3b2"/>'
        )
        parts.append(
            f'<text x="{x(value):.1f}" y="{axis_y + 17}" text-anchor="middle">{_e(fmt(value))}</text>'
        )
    if zero and lo < 0 < hi:
        parts.append(
            f'<line x1="{x(0):.1f}" y1="{top - 4}" x2="{x(0):.1f}" y2="{axis_y}" stroke="#5d6778" '
            'stroke-dasharray="4 3"/>'
        )
    for i, (name, estimate, low, high, colour) in enumerate(rows):
        y = top + row_h * i + row_h / 2
        parts.append(f'<text x="{left - 10}" y="{y + 4:.1f}" text-anchor="end">{_e(name)}</text>')
        parts.append(
            f'<line x1="{x(low):.1f}" y1="{y:.1f}" x2="{x(high):.1f}" y2="{y:.1f}" stroke="{colour}" stroke-width="3"/>'
        )
        for end in (low, high):
            parts.append(
                f'<line x1="{x(end):.1f}" y1="{y - 6:.1f}" x2="{x(end):.1f}" y2="{y + 6:.1f}" stroke="{colour}" stroke-width="2"/>'
            )
        parts.append(f'<circle cx="{x(estimate):.1f}" cy="{y:.1f}" r="5" fill="{colour}"/>')
        parts.append(f'<text x="{width - right + 8}" y="{y + 4:.1f}">{_e(fmt(estimate))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _variants_chart(report: ABReport) -> str:
    kind = report.kind
    rows = [
        (v.name, v.mean, v.ci_low, v.ci_high, "#1a7f37" if v.name == report.winner else "#2f5fd0")
        for v in report.variants
    ]
    if kind == "binary":
        domain = (0.0, 1.0)
    else:
        domain = _axis(min(v.ci_low for v in report.variants), max(v.ci_high for v in report.variants))
    return _interval_svg(
        rows, domain, False, lambda v: format_score(v, kind), "variant scores with intervals"
    )


def _comparisons_chart(report: ABReport) -> str:
    kind = report.kind
    rows = [
        (f"{c.b} − {c.a}", c.diff, c.ci_low, c.ci_high, "#1a7f37" if c.significant else "#9a6700")
        for c in report.comparisons
    ]
    low = min([0.0, *(c.ci_low for c in report.comparisons)])
    high = max([0.0, *(c.ci_high for c in report.comparisons)])
    return _interval_svg(
        rows, _axis(low, high), True, lambda v: format_diff(v, kind), "differences with intervals"
    )


# ------------------------------------------------------------------------------------------------ sections


def _summary(report: ABReport) -> str:
    kind = report.kind
    conf = f"{100 * report.confidence:g}% CI"
    out = ['<section id="summary">', "<h2>Variants</h2>", '<table id="variants"><thead><tr>']
    heads = ["variant", "template", "pass rate" if kind == "binary" else f"mean {report.metric}", conf]
    heads += ["flip rate", "results", "errors", "cached", "cost", "mean latency", "tokens in/out"]
    out.append("".join(f"<th>{_e(h)}</th>" for h in heads) + "</tr></thead><tbody>")
    for v in report.variants:
        flips = (
            "–"
            if v.flip_rate is None
            else (f"{100 * v.flip_rate:.1f}%" if kind == "binary" else f"{v.flip_rate:.3g}")
        )
        if v.flipped_units is not None and v.flip_rate is not None:
            flips += f" ({v.flipped_units} items)"
        row_class = ' class="winner"' if v.name == report.winner else ""
        out.append(
            f'<tr{row_class} data-variant="{_e(v.name)}"><td>{_e(v.name)}</td><td>{_e(v.template)}</td>'
            f'<td class="num score">{_e(format_score(v.mean, kind))}</td>'
            f'<td class="num">{_e(format_score(v.ci_low, kind))} – {_e(format_score(v.ci_high, kind))}</td>'
            f'<td class="num">{_e(flips)}</td><td class="num">{v.n_results}</td><td class="num">{v.errors}</td>'
            f'<td class="num">{v.cached}</td><td class="num">${v.cost_usd:,.4f}</td>'
            f'<td class="num">{v.mean_latency_s:.2f} s</td>'
            f'<td class="num">{v.input_tokens:,} / {v.output_tokens:,}</td></tr>'
        )
    out.append("</tbody></table>")
    out.append(
        f"<figure>{_variants_chart(report)}<figcaption>Score per variant with its {_e(conf)} "
        "(bootstrap over items).</figcaption></figure>"
    )

    out.append("<h2>Comparisons</h2>")
    heads = ["A", "B", "n", "B − A", conf, "test", "p", "Holm p" if report.holm else "p used", "significant"]
    heads += ["items for 80% power", "verdict"]
    out.append('<table id="comparisons"><thead><tr>' + "".join(f"<th>{_e(h)}</th>" for h in heads))
    out.append("</tr></thead><tbody>")
    for c in report.comparisons:
        scale = 100 if kind == "binary" else 1
        out.append(
            f'<tr><td>{_e(c.a)}</td><td>{_e(c.b)}</td><td class="num">{c.n}</td>'
            f'<td class="num">{_e(format_diff(c.diff, kind))}</td>'
            f'<td class="num">{scale * c.ci_low:+.3g} – {scale * c.ci_high:+.3g}</td><td>{_e(c.test)}</td>'
            f'<td class="num p-value">{_e(format_p(c.p_value))}</td>'
            f'<td class="num p-adjusted">{_e(format_p(c.adjusted_p))}</td>'
            f'<td class="{"yes" if c.significant else "no"}">{"yes" if c.significant else "no"}</td>'
            f'<td class="num">{"–" if c.needed_items is None else c.needed_items}</td>'
            f"<td>{_e(c.verdict)}</td></tr>"
        )
    out.append("</tbody></table>")
    out.append(
        f"<figure>{_comparisons_chart(report)}<figcaption>Difference B − A with its {_e(conf)}; "
        "green when significant"
        + (" after Holm's correction" if report.holm else "")
        + ".</figcaption></figure>"
    )

    if report.pairwise is not None:
        out.append(_pairwise_section(report.pairwise))

    if report.thresholds:
        out.append(
            '<h2>CI gates</h2><table id="gates"><thead><tr><th>gate</th><th>variant</th><th>value</th>'
            "<th>limit</th><th>result</th></tr></thead><tbody>"
        )
        for t in report.thresholds:
            value = (
                "–"
                if t.value is None
                else (f"{100 * t.value:.1f}%" if t.name.endswith("_rate") else f"{t.value:.3g}")
            )
            bound = "≥" if t.direction == "min" else "≤"
            result = '<td class="gate-pass">pass</td>' if t.passed else '<td class="gate-fail">FAIL</td>'
            out.append(
                f'<tr><td>{_e(t.name)}</td><td>{_e(t.variant)}</td><td class="num">{_e(value)}</td>'
                f'<td class="num">{bound} {t.limit:g}</td>{result}</tr>'
            )
        out.append("</tbody></table>")
    out.append("</section>")
    return "\n".join(out)


def _pairwise_section(pairwise: PairwiseReport) -> str:
    judges = ", ".join(pairwise.judges) or "–"
    agreement = "–" if pairwise.agreement_rate is None else f"{100 * pairwise.agreement_rate:.0f}%"
    out = [
        '<section id="judge">',
        "<h2>Judge (pairwise, both orders)</h2>",
        f'<p class="{"verdict has-winner" if pairwise.winner else "verdict"}" id="pairwise-verdict">'
        f"{_e(pairwise.verdict)}</p>",
        f'<p class="meta">judge {_e(judges)} · {pairwise.n_judgements} comparisons, each asked with A shown '
        f"first and with B shown first · orders agreed {_e(agreement)} · a win needs both orders"
        + (f" · {pairwise.errors} failed" if pairwise.errors else "")
        + f" · judge cost ${pairwise.cost_usd:,.4f}</p>",
    ]
    for i, warning in enumerate(pairwise.warnings):
        ident = ' id="position-bias"' if i == 0 and pairwise.position_bias else ""
        out.append(f'<p class="warning"{ident}>{_e(warning)}</p>')
    heads = [name for name, _ in pairwise_cells(pairwise.comparisons[0], pairwise.holm)] + ["verdict"]
    out.append('<table id="pairwise"><thead><tr>' + "".join(f"<th>{_e(h)}</th>" for h in heads))
    out.append("</tr></thead><tbody>")
    for c in pairwise.comparisons:
        cells = []
        for name, value in pairwise_cells(c, pairwise.holm):
            if name == "significant":
                cells.append(f'<td class="{value}">{value}</td>')
            elif name in ("A", "B"):
                cells.append(f"<td>{_e(value)}</td>")
            else:
                cells.append(f'<td class="num">{_e(value)}</td>')
        out.append(f"<tr>{''.join(cells)}<td>{_e(c.verdict)}</td></tr>")
    out.append("</tbody></table></section>")
    return "\n".join(out)


def _judgement_html(judgement: PairwiseJudgement) -> str:
    verdict = judgement.verdict
    disagree = verdict is not None and not verdict.agree
    parts = [
        f'<div class="judgement{" disagree" if disagree else ""}" data-a="{_e(judgement.a)}" '
        f'data-b="{_e(judgement.b)}"><div>{_e(judgement.b)} vs {_e(judgement.a)}: '
        f'<span class="pick">{_e(judgement_summary(judgement))}</span></div>'
    ]
    if verdict is not None:
        for order, first, rationale in (
            ("ab", judgement.a, verdict.rationale_ab),
            ("ba", judgement.b, verdict.rationale_ba),
        ):
            parts.append(
                f'<div class="order" data-order="{order}">{_e(first)} shown first → {_e(order_pick(judgement, order))}'
                f'<div class="rationale">{_e(rationale)}</div></div>'
            )
    parts.append("</div>")
    return "".join(parts)


def _result_html(
    result: ItemResult, report: ABReport, repeats: int, transcripts: TranscriptSource | None = None
) -> str:
    value = metric_value(result, report.metric, report.kind)
    if result.error is not None:
        badge = '<span class="badge error">ERROR</span>'
    elif result_failed(result, report.metric, report.kind):
        badge = '<span class="badge fail">FAIL</span>'
    elif result.passed is True or (report.kind == "binary" and value == 1.0):
        badge = '<span class="badge pass">PASS</span>'
    else:
        badge = '<span class="badge">–</span>'
    head = badge
    if repeats > 1:
        head += f" repeat {result.repeat}"
    if report.kind == "graded":
        head += f" · {_e(report.metric)} {_e(format_score(value, report.kind))}"
    parts = [f'<div class="result">{head}']
    if result.output is not None:
        parts.append(f'<pre class="output">{_e(result.output)}</pre>')
    if result.error is not None:
        parts.append(f'<pre class="error">{_e(result.error)}</pre>')
    if result.scores:
        parts.append('<ul class="scores">')
        for s in result.scores:
            verdict = "" if s.passed is None else (" ✓" if s.passed else " ✗")
            parts.append(f"<li>{_e(s.scorer)}: {s.value:.4g}{verdict}")
            if s.rationale:
                parts.append(f'<div class="rationale">{_e(s.rationale)}</div>')
            parts.append("</li>")
        parts.append("</ul>")
    # The prompt and the attempts, folded: the same fragments as in `promptkit view`.
    transcript = transcripts.for_result(result) if transcripts is not None else None
    if transcript is not None and transcript.turns is not None:
        parts.append(
            f'<details class="prompt"><summary>prompt</summary>{transcript_html(transcript)}</details>'
        )
    if len(result.attempts) > 1 or any(a.error for a in result.attempts):
        parts.append(
            f'<details class="attempts"><summary>{len(result.attempts)} attempts</summary>'
            f"{attempts_html(result)}</details>"
        )
    parts.append("</div>")
    return "".join(parts)


def _matrix(report: ABReport, rows: list[ItemRow], transcripts: TranscriptSource | None = None) -> str:
    names = [v.name for v in report.variants]
    failing = sum(1 for row in rows if row.failed)
    multi_model = len(report.models) > 1
    judged = int(report.pairwise is not None)
    out = [
        '<section id="items">',
        f"<h2>Items ({len(rows)}; {failing} with a failure)</h2>",
        '<div class="controls"><label><input type="checkbox" id="failures-only"> Failures only</label>',
        '<input type="search" id="search" placeholder="Search items, inputs and outputs" aria-label="search">',
        '<span id="shown-count"></span></div>',
        '<table id="matrix"><colgroup><col class="col-item"><col class="col-inputs">'
        + "<col>" * (len(names) + judged)
        + "</colgroup><thead><tr><th>item</th><th>inputs / expected</th>",
        "".join(f"<th>{_e(name)}</th>" for name in names),
        '<th class="judge">judge</th>' if judged else "",
        "</tr></thead><tbody>",
    ]
    for row in rows:
        out.append(
            f'<tr class="item-row" data-failed="{"1" if row.failed else "0"}" data-item="{_e(row.item_id)}" '
            f'data-model="{_e(row.model)}">'
        )
        label = f'<span class="item-id">{_e(row.item_id)}</span>'
        if multi_model:
            label += f'<div class="model">{_e(row.model)}</div>'
        out.append(f"<td>{label}</td>")
        out.append(f'<td class="inputs">{inputs_html(row.inputs, row.expected)}</td>')
        for name in names:
            results = row.cells.get(name, [])
            if not results:
                out.append('<td class="cell missing">–</td>')
                continue
            failed = any(result_failed(r, report.metric, report.kind) for r in results)
            cell_class = "cell failed" if failed else "cell passed"
            body = "".join(_result_html(r, report, len(results), transcripts) for r in results)
            out.append(f'<td class="{cell_class}" data-variant="{_e(name)}">{body}</td>')
        if judged:
            body = "".join(_judgement_html(j) for j in row.judgements) or "–"
            out.append(f'<td class="judge">{body}</td>')
        out.append("</tr>")
    out.append("</tbody></table></section>")
    return "\n".join(out)


# -------------------------------------------------------------------------------------------------- page


def to_html(report: ABReport, log: EvalLog, *, log_path: str | Path | None = None) -> str:
    """The whole report as one HTML document (string).

    Each result shows its prompt when the log's suite can re-render it (see ``_transcript``); ``log_path``
    (where the log was read from) helps find a suite named relative to it.
    """
    title = f"A/B report: {report.suite}"
    verdict_class = "verdict has-winner" if report.winner else "verdict"
    meta = (
        f"metric <b>{_e(report.metric)}</b> ({_e(report.kind)}) · {report.n_units} paired items"
        + (f" ({report.dropped_units} dropped)" if report.dropped_units else "")
        + f" · models {_e(', '.join(report.models))} · repeats {report.repeats} · α = {report.alpha:g}"
        + (" · Holm-corrected" if report.holm else "")
        + f" · run <code>{_e(report.run_id)}</code>"
    )
    if not all(math.isfinite(v.mean) for v in report.variants):
        raise EvalError(
            "report has a non-finite variant score; cannot chart it", location=f"suite {report.suite!r}"
        )
    csp = (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{_script_hash(_JS)}'; base-uri 'none'; form-action 'none'"
    )
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{_e(csp)}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<link rel="icon" href="data:,">',
            f"<title>{_e(title)}</title>",
            f"<style>{_CSS}{FRAGMENT_CSS}</style>",
            "</head><body>",
            f"<header><h1>{_e(title)}</h1>",
            f'<p class="{verdict_class}" id="verdict">{_e(report.verdict)}</p>',
            f'<p class="meta">{meta}</p></header>',
            _summary(report),
            _matrix(
                report, item_rows(report, log), TranscriptSource(log, Path(log_path) if log_path else None)
            ),
            f"<script>{_JS}</script>",
            "</body></html>",
        ]
    )


def write_html(
    report: ABReport, log: EvalLog, path: str | Path, *, log_path: str | Path | None = None
) -> Path:
    """Write :func:`to_html` to ``path`` (UTF-8) and return the path."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(to_html(report, log, log_path=log_path), encoding="utf-8")
    except OSError as exc:
        raise EvalError(
            f"cannot write the HTML report: {exc.strerror or exc}", location=str(target)
        ) from None
    return target

"""A/B reports for people: a terminal table (rich) and Markdown.

Both read an :class:`ABReport` for the numbers and the :class:`EvalLog` for the items behind them. Model
output is untrusted: in Markdown every cell is HTML-escaped (renderers pass raw HTML through) and its
pipes and newlines neutralised; in the terminal it is shown as plain text, never parsed as rich markup.
"""

from __future__ import annotations

import html
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from promptkit.evals._ab import ABReport, PairComparison, ThresholdCheck, metric_value, result_failed
from promptkit.evals._eval_log import EvalLog, ItemResult
from promptkit.evals._pairwise import PairwiseComparison, PairwiseJudgement, PairwiseReport

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

__all__ = [
    "ItemRow",
    "item_rows",
    "format_score",
    "format_diff",
    "format_p",
    "judgement_summary",
    "order_pick",
    "pairwise_cells",
    "to_markdown",
    "render_terminal",
    "print_report",
]

# Failing items (and judge verdicts) listed in Markdown; the HTML report shows every item.
_MARKDOWN_FAILURES = 25
_MARKDOWN_JUDGEMENTS = 25
_CELL_CHARS = 160


# ---------------------------------------------------------------------------------------- shared pieces


@dataclass
class ItemRow:
    """One dataset item on one model, with every variant's results (repeats in order)."""

    model: str
    item_id: str
    inputs: dict[str, Any]
    expected: Any
    cells: dict[str, list[ItemResult]] = field(default_factory=dict)
    failed: bool = False
    judgements: list[PairwiseJudgement] = field(default_factory=list)  # the judge's, one per variant pair

    @property
    def label(self) -> str:
        return self.item_id


def item_rows(report: ABReport, log: EvalLog) -> list[ItemRow]:
    """The items × variants matrix, in dataset order (first appearance in the log), one row per (model, item)."""
    rows: dict[tuple[str, str], ItemRow] = {}
    grouped: dict[tuple[str, str], dict[str, list[ItemResult]]] = defaultdict(lambda: defaultdict(list))
    for result in log.results:
        if result.model not in report.models:
            continue
        key = (result.model, result.item_id)
        if key not in rows:
            rows[key] = ItemRow(result.model, result.item_id, result.inputs, result.expected)
        grouped[key][result.variant].append(result)
    names = [v.name for v in report.variants]
    for key, row in rows.items():
        row.cells = {
            name: sorted(grouped[key][name], key=lambda r: r.repeat)
            for name in names
            if grouped[key].get(name)
        }
        row.failed = any(
            result_failed(r, report.metric, report.kind) for results in row.cells.values() for r in results
        )
    if report.pairwise is not None:
        for judgement in report.pairwise.judgements:
            found = rows.get((judgement.model, judgement.item_id))
            if found is not None:
                found.judgements.append(judgement)
    return list(rows.values())


def format_score(value: float | None, kind: str) -> str:
    if value is None:
        return "–"
    return f"{100 * value:.1f}%" if kind == "binary" else f"{value:.3g}"


def format_diff(value: float, kind: str) -> str:
    return f"{100 * value:+.1f} pts" if kind == "binary" else f"{value:+.3g}"


def format_p(p: float) -> str:
    return "<0.0001" if p < 1e-4 else f"{p:.2g}"


def _interval(low: float, high: float, kind: str, diff: bool = False) -> str:
    if diff:
        scale = 100 if kind == "binary" else 1
        return f"[{scale * low:+.3g}, {scale * high:+.3g}]"
    return f"[{format_score(low, kind)}, {format_score(high, kind)}]"


def _usd(value: float) -> str:
    return f"${value:,.4f}" if value < 100 else f"${value:,.2f}"


def _metric_label(report: ABReport) -> str:
    return "pass rate" if report.kind == "binary" else f"mean {report.metric}"


def _threshold_value(check: ThresholdCheck) -> str:
    if check.value is None:
        return "–"
    return f"{100 * check.value:.1f}%" if check.name.endswith("_rate") else f"{check.value:.3g}"


def _significance(c: PairComparison) -> str:
    return "yes" if c.significant else "no"


def _repeat_scores(results: list[ItemResult], report: ABReport) -> str:
    values = [metric_value(r, report.metric, report.kind) for r in results]
    return " ".join(format_score(v, report.kind) for v in values)


def _clip(text: str, limit: int = _CELL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ------------------------------------------------------------------------------------ pairwise pieces


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


def pairwise_cells(c: PairwiseComparison, holm: bool) -> list[tuple[str, str]]:
    """(column, value) for one pairwise comparison: the same columns in every report format."""
    interval = "–" if c.ci_low is None or c.ci_high is None else f"[{_rate(c.ci_low)}, {_rate(c.ci_high)}]"
    cells = [
        ("A", c.a),
        ("B", c.b),
        ("n", str(c.n)),
        ("B wins", str(c.wins_b)),
        ("A wins", str(c.wins_a)),
        ("ties (orders disagree)", f"{c.ties} ({c.disagreements})"),
        ("B win rate (ties excluded)", _rate(c.win_rate_b)),
        ("Wilson CI", interval),
        ("sign test p", format_p(c.p_value)),
    ]
    if holm:
        cells.append(("Holm p", format_p(c.adjusted_p)))
    cells += [
        ("orders agree", _rate(c.agreement_rate)),
        ("first shown won", _rate(c.first_position_rate)),
        ("significant", "yes" if c.significant else "no"),
    ]
    return cells


def order_pick(judgement: PairwiseJudgement, order: str) -> str:
    """What the judge picked with A shown first (``order="ab"``) or B shown first (``"ba"``)."""
    verdict = judgement.verdict
    if verdict is None:
        return "–"
    side = verdict.order_ab if order == "ab" else verdict.order_ba
    return "tie" if side == "tie" else (judgement.a if side == "a" else judgement.b)


def judgement_summary(judgement: PairwiseJudgement) -> str:
    """One judgement in a few words: the agreed winner, a tie, or a disagreement between the orders."""
    if judgement.verdict is None:
        return f"judge failed: {judgement.error or 'no answer'}"
    if judgement.winner is not None:
        return f"{judgement.winner} (both orders)"
    if judgement.verdict.agree:
        return "tie (both orders)"
    return "tie: the orders disagree"


def _pairwise_meta(pairwise: PairwiseReport) -> str:
    parts = [f"judge {', '.join(pairwise.judges) or '–'}", f"{pairwise.n_judgements} comparisons"]
    parts += [f"orders agreed {_rate(pairwise.agreement_rate)}"]
    parts += [f"first shown won {_rate(pairwise.first_position_rate)} of decisive answers"]
    if pairwise.errors:
        parts.append(f"{pairwise.errors} failed")
    parts.append(f"judge cost {_usd(pairwise.cost_usd)}")
    return " · ".join(parts)


# ------------------------------------------------------------------------------------------- markdown


def _md(text: object) -> str:
    """A Markdown table cell holding untrusted text: HTML-escaped, no pipes or line breaks, no code ticks."""
    escaped = html.escape(str(text), quote=False)
    return " ".join(escaped.replace("|", "\\|").replace("`", "&#96;").split())


def to_markdown(report: ABReport, log: EvalLog) -> str:
    """The report as GitHub-flavoured Markdown: verdict, variants, comparisons, gates and failing items."""
    kind = report.kind
    conf = f"{100 * report.confidence:g}% CI"
    lines = [
        f"# A/B report: {_md(report.suite)}",
        "",
        f"**Verdict:** {_md(report.verdict)}",
        "",
        f"- Metric: `{_md(report.metric)}` ({kind}{', majority vote over repeats' if kind == 'binary' else ', mean over repeats'})",
        f"- Paired items: {report.n_units}"
        + (
            f" ({report.dropped_units} dropped: not scored for every variant)" if report.dropped_units else ""
        ),
        f"- Models: {_md(', '.join(report.models))}; repeats: {report.repeats}; α = {report.alpha:g}"
        + ("; Holm-corrected" if report.holm else ""),
        f"- Run: `{_md(report.run_id)}`" + (f"; winner: **{_md(report.winner)}**" if report.winner else ""),
        "",
        "## Variants",
        "",
        f"| variant | template | {_metric_label(report)} | {conf} | flip rate | errors | cost | mean latency |",
        "|---|---|---:|---|---:|---:|---:|---:|",
    ]
    for v in report.variants:
        flips = (
            "–"
            if v.flip_rate is None
            else f"{100 * v.flip_rate:.1f}%"
            if kind == "binary"
            else f"{v.flip_rate:.3g}"
        )
        lines.append(
            f"| {_md(v.name)} | {_md(v.template)} | {format_score(v.mean, kind)} | "
            f"{_interval(v.ci_low, v.ci_high, kind)} | {flips} | {v.errors} | {_usd(v.cost_usd)} | "
            f"{v.mean_latency_s:.2f} s |"
        )
    lines += [
        "",
        "## Comparisons",
        "",
        f"| A | B | n | B − A | {conf} | test | p | {'Holm p' if report.holm else 'p used'} | significant | items for 80% power |",
        "|---|---|---:|---:|---|---|---:|---:|---|---:|",
    ]
    for c in report.comparisons:
        lines.append(
            f"| {_md(c.a)} | {_md(c.b)} | {c.n} | {format_diff(c.diff, kind)} | "
            f"{_interval(c.ci_low, c.ci_high, kind, diff=True)} | {c.test} | {format_p(c.p_value)} | "
            f"{format_p(c.adjusted_p)} | {_significance(c)} | "
            f"{'–' if c.needed_items is None else c.needed_items} |"
        )
    lines.append("")
    lines += [f"- {_md(c.verdict)}" for c in report.comparisons]
    if report.pairwise is not None:
        lines += _markdown_pairwise(report.pairwise)
    if report.thresholds:
        lines += [
            "",
            "## CI gates",
            "",
            "| gate | variant | value | limit | result |",
            "|---|---|---:|---:|---|",
        ]
        for t in report.thresholds:
            bound = "≥" if t.direction == "min" else "≤"
            lines.append(
                f"| {_md(t.name)} | {_md(t.variant)} | {_threshold_value(t)} | {bound} {t.limit:g} | "
                f"{'pass' if t.passed else '**FAIL**'} |"
            )
    lines += _markdown_failures(report, log)
    return "\n".join(lines) + "\n"


def _markdown_pairwise(pairwise: PairwiseReport) -> list[str]:
    heads = [name for name, _ in pairwise_cells(pairwise.comparisons[0], pairwise.holm)]
    lines = [
        "",
        "## Judge (pairwise, both orders)",
        "",
        f"**Judge verdict:** {_md(pairwise.verdict)}",
        "",
        f"- {_md(_pairwise_meta(pairwise))}",
    ]
    lines += [f"- **Warning:** {_md(w)}" for w in pairwise.warnings]
    lines += ["", "| " + " | ".join(heads) + " |", "|" + "|".join("---" for _ in heads) + "|"]
    for c in pairwise.comparisons:
        lines.append("| " + " | ".join(_md(value) for _, value in pairwise_cells(c, pairwise.holm)) + " |")
    lines.append("")
    lines += [f"- {_md(c.verdict)}" for c in pairwise.comparisons]
    shown = pairwise.judgements[:_MARKDOWN_JUDGEMENTS]
    more = len(pairwise.judgements) - len(shown)
    lines += [
        "",
        f"### Judge verdicts per item ({len(pairwise.judgements)}"
        + (f", first {len(shown)} shown" if more else "")
        + ")",
        "",
        "| item | model | A vs B | verdict | A first → | B first → | rationale (A first) | rationale (B first) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for j in shown:
        v = j.verdict
        lines.append(
            f"| {_md(j.item_id)} | {_md(j.model)} | {_md(j.a)} vs {_md(j.b)} | {_md(judgement_summary(j))} | "
            f"{_md(order_pick(j, 'ab'))} | {_md(order_pick(j, 'ba'))} | "
            f"{_md(_clip(v.rationale_ab if v else ''))} | {_md(_clip(v.rationale_ba if v else ''))} |"
        )
    return lines


def _markdown_failures(report: ABReport, log: EvalLog) -> list[str]:
    failing = [
        (row, name, r)
        for row in item_rows(report, log)
        for name, results in row.cells.items()
        for r in results
        if result_failed(r, report.metric, report.kind)
    ]
    if not failing:
        return ["", "## Failures", "", "None: every result passed."]
    lines = [
        "",
        f"## Failures ({len(failing)}"
        + (f", first {_MARKDOWN_FAILURES} shown" if len(failing) > _MARKDOWN_FAILURES else "")
        + ")",
        "",
        "| item | model | variant | repeat | score | why | output |",
        "|---|---|---|---:|---:|---|---|",
    ]
    for row, name, r in failing[:_MARKDOWN_FAILURES]:
        why = r.error or "; ".join(
            f"{s.scorer}: {s.rationale}" for s in r.scores if s.rationale and s.passed is not True
        )
        lines.append(
            f"| {_md(row.item_id)} | {_md(row.model)} | {_md(name)} | {r.repeat} | "
            f"{format_score(metric_value(r, report.metric, report.kind), report.kind)} | {_md(_clip(why or ''))} | "
            f"{_md(_clip(r.output or ''))} |"
        )
    return lines


# ------------------------------------------------------------------------------------------- terminal


def render_terminal(report: ABReport, log: EvalLog) -> RenderableType:
    """Rich renderables for the terminal: the verdict, the variants table, the comparisons, the gates."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    kind = report.kind
    conf = f"{100 * report.confidence:g}% CI"
    head = Text()
    head.append(f"{report.suite}", style="bold")
    head.append(
        f"  metric {report.metric} ({kind}) · {report.n_units} paired items · models {', '.join(report.models)}"
        f" · repeats {report.repeats} · α={report.alpha:g}" + (" · Holm" if report.holm else "")
    )
    if report.dropped_units:
        head.append(f" · {report.dropped_units} items dropped (not scored for every variant)", style="yellow")

    variants = Table(title="variants", title_justify="left")
    for name, justify in [
        ("variant", "left"),
        (_metric_label(report), "right"),
        (conf, "left"),
        ("flip rate", "right"),
        ("errors", "right"),
        ("cost", "right"),
        ("latency", "right"),
    ]:
        variants.add_column(name, justify=justify, no_wrap=name != "variant")  # type: ignore[arg-type]
    for v in report.variants:
        flips = (
            "–"
            if v.flip_rate is None
            else f"{100 * v.flip_rate:.1f}%"
            if kind == "binary"
            else f"{v.flip_rate:.3g}"
        )
        style = "bold green" if v.name == report.winner else ""
        variants.add_row(
            Text(v.name, style=style),
            format_score(v.mean, kind),
            _interval(v.ci_low, v.ci_high, kind),
            flips,
            str(v.errors),
            _usd(v.cost_usd),
            f"{v.mean_latency_s:.2f}s",
        )

    comparisons = Table(title="comparisons", title_justify="left")
    for name, justify in [
        ("A", "left"),
        ("B", "left"),
        ("n", "right"),
        ("B − A", "right"),
        (conf, "left"),
        ("test", "left"),
        ("p", "right"),
        ("Holm p" if report.holm else "p used", "right"),
        ("significant", "left"),
        ("items needed", "right"),
    ]:
        comparisons.add_column(name, justify=justify, no_wrap=name not in ("A", "B"))  # type: ignore[arg-type]
    for c in report.comparisons:
        comparisons.add_row(
            Text(c.a),
            Text(c.b),
            str(c.n),
            format_diff(c.diff, kind),
            _interval(c.ci_low, c.ci_high, kind, diff=True),
            c.test,
            format_p(c.p_value),
            format_p(c.adjusted_p),
            Text("yes", style="green") if c.significant else Text("no", style="yellow"),
            "–" if c.needed_items is None else str(c.needed_items),
        )

    parts: list[RenderableType] = [head, variants, comparisons]
    if report.pairwise is not None:
        parts += _terminal_pairwise(report.pairwise)
    if report.thresholds:
        gates = Table(title="CI gates", title_justify="left")
        for name, justify in [
            ("gate", "left"),
            ("variant", "left"),
            ("value", "right"),
            ("limit", "right"),
            ("", "left"),
        ]:
            gates.add_column(name, justify=justify)  # type: ignore[arg-type]
        for t in report.thresholds:
            gates.add_row(
                Text(t.name),
                Text(t.variant),
                _threshold_value(t),
                f"{'≥' if t.direction == 'min' else '≤'} {t.limit:g}",
                Text("pass", style="green") if t.passed else Text("FAIL", style="bold red"),
            )
        parts.append(gates)
    verdict = Text("verdict: ", style="bold")
    verdict.append(report.verdict, style="bold green" if report.winner else "yellow")
    parts.append(verdict)
    return Group(*parts)


def _terminal_pairwise(pairwise: PairwiseReport) -> list[RenderableType]:
    from rich.table import Table
    from rich.text import Text

    table = Table(
        title="judge (pairwise, both orders)", title_justify="left", caption=_pairwise_meta(pairwise)
    )
    for name, _ in pairwise_cells(pairwise.comparisons[0], pairwise.holm):
        table.add_column(name, justify="left" if name in ("A", "B", "significant") else "right")
    for c in pairwise.comparisons:
        cells = pairwise_cells(c, pairwise.holm)
        row: list[Text] = [Text(value) for _, value in cells[:-1]]
        row.append(Text("yes", style="green") if c.significant else Text("no", style="yellow"))
        table.add_row(*row)
    verdict = Text("judge verdict: ", style="bold")
    verdict.append(pairwise.verdict, style="bold green" if pairwise.winner else "yellow")
    parts: list[RenderableType] = [table, verdict]
    parts += [Text(f"warning: {w}", style="bold yellow") for w in pairwise.warnings]
    return parts


def print_report(report: ABReport, log: EvalLog, console: Console | None = None) -> None:
    """Print :func:`render_terminal` to ``console`` (default: a new stdout console)."""
    if console is None:
        from rich.console import Console

        console = Console(highlight=False, soft_wrap=True)
    console.print(render_terminal(report, log))

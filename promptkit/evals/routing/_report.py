"""Tables and plots for ``route eval``: Markdown, JSON and a quality-vs-strong-share PNG per benchmark."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from promptkit.errors import EvalError
from promptkit.evals.routing._evaluate import IN_DOMAIN_NOTE, BenchmarkReport, RouterResult

__all__ = ["format_pct", "markdown_report", "markdown_table", "report_rows", "write_json", "plot_report"]


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A Markdown table's lines: the header, its rule, one line per row."""
    return [
        "| " + " | ".join(headers) + " |",
        "|" + "---|" * len(headers),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def format_pct(value: float | None, ci: Sequence[float | None] | None = None) -> str:
    """A share as a percentage with its CI, e.g. ``19.1% [16.4, 21.7]``."""
    if value is None:
        return "—"
    text = f"{value * 100:.1f}%"
    if ci and ci[0] is not None and ci[1] is not None:
        text += f" [{ci[0] * 100:.1f}, {ci[1] * 100:.1f}]"
    return text


def _apgr(row: dict[str, Any]) -> str:
    if row.get("apgr") is None:
        return "—"
    text = f"{row['apgr']:.3f}"
    ci = row.get("apgr_ci")
    if ci and ci[0] is not None:
        text += f" [{ci[0]:.3f}, {ci[1]:.3f}]"
    return text


def report_rows(report: BenchmarkReport) -> list[list[str]]:
    """One row per router: name, kind, APGR [CI], CPT(20/50/80) [CI]; then the RouteLLM reference."""
    rows: list[list[str]] = []
    for result in report.results:
        d = result.as_dict()
        if result.metrics is None:
            quality = f"quality {d['quality']:.3f} at {format_pct(d['strong_share'])} strong"
            rows.append([result.name, result.kind, "—", quality, "", ""])
            continue
        rows.append(
            [
                result.name,
                result.kind,
                _apgr(d),
                format_pct(d.get("cpt_20"), d.get("cpt_20_ci")),
                format_pct(d.get("cpt_50"), d.get("cpt_50_ci")),
                format_pct(d.get("cpt_80"), d.get("cpt_80_ci")),
            ]
        )
    ref = report.reference
    if ref:
        rows.append(
            [
                f"{ref['router']} (published)",
                "reference",
                f"{ref['apgr']:.3f}",
                format_pct(ref.get("cpt_20")),
                format_pct(ref.get("cpt_50")),
                format_pct(ref.get("cpt_80")),
            ]
        )
    return rows


HEADERS = ["router", "kind", "APGR [95% CI]", "CPT(20%)", "CPT(50%)", "CPT(80%)"]


def markdown_report(reports: Sequence[BenchmarkReport]) -> str:
    lines = ["# Routing evaluation on RouteLLM's recorded outcomes", ""]
    for report in reports:
        d = report.data
        lines.append(f"## {report.benchmark}")
        lines.append("")
        sample = d["queries"] < d["total"] - d["excluded_contaminated"]
        lines.append(
            f"{d['queries']} queries{' (a seeded sample)' if sample else ''} "
            f"({d['excluded_contaminated']} contaminated excluded of {d['total']}); "
            f"weak quality {d['weak_quality']:.3f}, strong {d['strong_quality']:.3f}; "
            f"{report.folds}-fold CV, {report.bootstrap} bootstrap resamples, seed {report.seed}."
        )
        lines.append("")
        lines.extend(markdown_table(HEADERS, report_rows(report)))
        if report.skipped:
            lines.append("")
            for name, why in report.skipped.items():
                lines.append(f"- `{name}` not run: {why}")
        best = report.best()
        ref = report.reference
        if best is not None and best.metrics is not None and ref:
            verdict = "beats" if best.metrics.apgr > ref["apgr"] else "does not beat"
            lines.append("")
            lines.append(
                f"Best learned router: `{best.name}` (APGR {best.metrics.apgr:.3f}) {verdict} "
                f"{ref['router']} ({ref['apgr']:.3f})."
            )
        lines.append("")
    lines.append(f"> {IN_DOMAIN_NOTE}")
    lines.append("")
    return "\n".join(lines)


def write_json(reports: Sequence[BenchmarkReport], path: Path) -> Path:
    payload = {"benchmarks": [r.as_dict(curves=True) for r in reports], "note": IN_DOMAIN_NOTE}
    path.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    return path


def plot_report(report: BenchmarkReport, path: Path) -> Path:
    """Quality against the share of strong calls for every router with a curve, plus both models' lines."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        from promptkit.errors import BackendUnavailable

        raise BackendUnavailable("plots need matplotlib: pip install matplotlib", location="--out") from None
    fig, ax = plt.subplots(figsize=(8, 5))
    curves: list[RouterResult] = [r for r in report.results if r.curve]
    for result in curves:
        xs = [100 * s for s, _ in result.curve]
        ys = [q for _, q in result.curve]
        style = {"linestyle": "--"} if result.kind in ("baseline", "oracle") else {}
        ax.plot(xs, ys, label=result.name, **style)
    d = report.data
    weak, strong = (str(d.get(k, "?")).split("/")[-1] for k in ("weak_model", "strong_model"))
    ax.axhline(d["weak_quality"], color="grey", linestyle=":", label=f"weak ({weak})")
    ax.axhline(d["strong_quality"], color="red", linestyle=":", label=f"strong ({strong})")
    ax.set_xlabel("strong model calls (%)")
    ax.set_ylabel("mean grade" if d.get("graded") else "accuracy")
    ax.set_title(f"{report.benchmark}: quality vs strong-model share (held-out, {report.folds}-fold CV)")
    return save_plot(fig, ax, path)


def save_plot(fig: Any, ax: Any, path: Path) -> Path:
    """Finish a quality-vs-cost plot (legend, grid) and write it; the figure is closed either way."""
    import matplotlib.pyplot as plt

    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=110)
    except OSError as exc:
        raise EvalError(f"cannot write the plot: {exc.strerror}", location=str(path)) from None
    finally:
        plt.close(fig)
    return path

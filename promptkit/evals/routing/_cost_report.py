"""Tables and plots of the dollar quality–cost evaluation: Markdown rows and a quality-vs-dollars PNG."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from promptkit.evals.routing._cost_eval import CostReport
from promptkit.evals.routing._report import markdown_table, save_plot

__all__ = ["COST_HEADERS", "CROSS_DOMAIN_NOTE", "cost_rows", "markdown_cost_report", "plot_cost_report"]

COST_HEADERS = ["router / model", "kind", "AIQ [95% CI]", "best quality", "$ / 1k prompts", "saving"]
CROSS_DOMAIN_NOTE = (
    "AIQ: mean quality of the router's non-decreasing convex hull (random mixing of its operating points) over "
    "the cost range from the cheapest to the dearest single model (RouterBench). '$ / 1k prompts': for a model, "
    "its price; for a router, the least it pays to match the best single model's quality (saving: against that "
    "model). In-domain routers are cross-validated on the data's own prompts; cross-domain ones are scored on "
    "each domain by predictors trained on the other domains only. The cascade's verifier is the recorded score "
    "itself (a perfect check), so it bounds what a cascade with a real verifier can reach."
)


def _usd_per_1k(value: float) -> str:
    if value is None or math.isnan(value):
        return "never"
    return f"${value * 1000:.4g}"


def cost_rows(report: CostReport) -> list[list[str]]:
    """Single models (quality, price) then routers (AIQ with CI, best quality, cost to match the best model)."""
    rows: list[list[str]] = []
    best_model, best_cost, _ = report.best_single
    for model, cost, quality in report.singles:
        tag = " (best)" if model == best_model else ""
        rows.append([model + tag, "single model", "—", f"{quality:.4f}", _usd_per_1k(cost), ""])
    for r in report.results:
        aiq = f"{r.aiq:.4f}"
        if r.aiq_ci:
            aiq += f" [{r.aiq_ci[0]:.4f}, {r.aiq_ci[1]:.4f}]"
        match = r.cost_to_best_single
        saving = ""
        if not math.isnan(match) and best_cost > 0:
            saving = f"{max(0.0, (1 - match / best_cost) * 100):.1f}%"  # no negative zero from rounding
        rows.append([r.name, r.kind, aiq, f"{r.best_quality:.4f}", _usd_per_1k(match), saving])
    return rows


def markdown_cost_report(reports: Sequence[CostReport]) -> str:
    lines = ["# Routing by quality and dollars", ""]
    for report in reports:
        d = report.data
        lines.append(f"## {report.name} ({report.split})")
        lines.append("")
        folds = (
            f"{report.folds} held-out {'domains' if report.split == 'cross-domain' else 'folds'}"
            if report.folds
            else "no learned router"
        )
        lines.append(
            f"{d['prompts']} prompts, {len(report.singles)} models, {len(d['domains'])} domain(s); "
            f"features: {report.features}; {folds}; {report.bootstrap} bootstrap resamples, seed {report.seed}. "
            f"Costs: {d['cost_note']}."
        )
        lines.append("")
        lines.extend(markdown_table(COST_HEADERS, cost_rows(report)))
        for name, why in report.skipped.items():
            lines.append(f"\n- `{name}` not run: {why}")
        lines.append("")
    lines.append(f"> {CROSS_DOMAIN_NOTE}")
    lines.append("")
    return "\n".join(lines)


def plot_cost_report(report: CostReport, path: Path) -> Path:
    """Quality against dollars per 1,000 prompts (log axis): each router's hull, each model as a point."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        from promptkit.errors import BackendUnavailable

        raise BackendUnavailable("plots need matplotlib: pip install matplotlib", location="--out") from None
    import numpy as np

    log = all(c > 0 for _, c, _ in report.singles) and all(r.hull[0][0] > 0 for r in report.results)
    fig, ax = plt.subplots(figsize=(8, 5))
    for r in report.results:
        hc, hq = [c for c, _ in r.hull], [q for _, q in r.hull]
        lo, hi = hc[0], max(hc[-1], report.cost_range[1])
        # Mixing is linear in dollars: sample the hull densely so a log axis draws it as it is, not as chords;
        # past its best point it stays flat (paying more cannot hurt).
        xs = np.geomspace(lo, hi, 300) if log and hi > lo else np.linspace(lo, hi, 300)
        ys = np.interp(xs, hc, hq)
        style = {"linestyle": "--"} if r.kind in ("baseline", "oracle") else {}
        ax.plot(xs * 1000, ys, label=f"{r.name} (AIQ {r.aiq:.3f})", **style)
    for model, cost, quality in report.singles:
        ax.scatter([cost * 1000], [quality], marker="o", color="black", zorder=3)
        ax.annotate(
            model.split("/")[-1],
            (cost * 1000, quality),
            fontsize=7,
            xytext=(4, -10),
            textcoords="offset points",
        )
    if log:
        ax.set_xscale("log")
    ax.set_xlabel("dollars per 1,000 prompts")
    ax.set_ylabel("mean quality")
    ax.set_title(f"{report.name} ({report.split}): quality vs cost")
    return save_plot(fig, ax, path)

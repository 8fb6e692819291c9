"""Prompt A/B comparisons: which variant is better on the same items, with paired statistics.

``compare_variants(log)`` turns an :class:`~promptkit.evals._eval_log.EvalLog` into an :class:`ABReport`:

- **Pairing.** The unit of comparison is one dataset item on one model, ``(model, item_id)``. Only units
  that every compared variant has a value for are used, so every test is paired; the others are counted
  in ``ABReport.dropped_units``.
- **Repeats.** Repeats of a unit are aggregated into one value per unit and variant: the mean for graded
  metrics, and the majority vote for pass/fail metrics (more than half of the repeats passed; an exact tie
  counts as a fail, the conservative choice). Repeats also give each variant's flip rate: how often a
  unit's outcome is not the same on every repeat (binary), or the mean within-unit range (graded).
- **Evidence.** A paired bootstrap (BCa) interval for the difference of means; exact McNemar for pass/fail
  metrics, Wilcoxon signed-rank for graded ones; Holm's correction when more than two variants are compared.
- **Decision.** A winner is declared only when a difference is significant after Holm; otherwise the
  verdict says there is not enough evidence and about how many paired items would settle it (80% power
  for the observed effect).
- **Errors.** A result whose generation errored is not evidence about its prompt: it counts as a fail of
  a binary metric (as before) but is reported apart from real failures, and a variant with no successful
  result at all gets no verdict (``run_problems`` says why the run is not a clean one).
- **Judge.** Optionally, an LLM judge's pairwise preferences (``judgements=``, from ``judge_pairs``) are
  summarised into ``ABReport.pairwise``: sign tests with the positions swapped (see ``_pairwise.py``).

The statistics themselves live in ``_stats.py``; this module only gathers the data and phrases the answer.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

from promptkit.errors import EvalError
from promptkit.evals._eval_log import EvalLog, ItemResult
from promptkit.evals._pairwise import PairwiseJudgement, PairwiseReport, compare_pairwise, dominant_variants
from promptkit.evals._stats import (
    Comparison,
    McNemarResult,
    compare_many,
    compare_paired,
    flip_rate,
    paired_bootstrap,
)

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "PASS_METRIC",
    "AB_SCHEMA_VERSION",
    "ABReport",
    "VariantSummary",
    "PairComparison",
    "ThresholdCheck",
    "compare_variants",
    "check_thresholds",
    "resolve_metric",
    "metric_value",
    "result_failed",
    "run_problems",
]

# The metric named after ItemResult.passed: "all thresholded scorers passed".
PASS_METRIC = "pass"
AB_SCHEMA_VERSION = 1

Kind = Literal["binary", "graded"]
Unit = tuple[str, str]  # (model, item_id)


# ---------------------------------------------------------------------------------------------- models


class VariantSummary(BaseModel):
    """One variant's score on the metric (over the paired units) and its run statistics (over all results)."""

    name: str
    template: str = ""
    template_hash: str = ""
    mean: float  # mean of the per-unit values on the paired units: a pass rate for binary metrics
    ci_low: float  # bootstrap interval for that mean, at the report's confidence
    ci_high: float
    n_units: int
    n_results: int
    pass_rate: float | None  # share of all results with passed=True (None when no result has a verdict)
    failures: int = 0  # results that ran and failed (errors are counted apart, in ``errors``)
    flip_rate: float | None  # None when no unit was repeated
    flipped_units: int | None  # binary metrics: units whose outcome changed between repeats
    errors: int
    cached: int
    cost_usd: float
    mean_latency_s: float
    input_tokens: int
    output_tokens: int


class PairComparison(BaseModel):
    """Variant ``a`` against variant ``b``; ``diff = mean_b - mean_a`` (positive: b is better)."""

    a: str
    b: str
    n: int
    mean_a: float
    mean_b: float
    diff: float
    ci_low: float
    ci_high: float
    ci_method: str
    test: Literal["McNemar", "Wilcoxon"]
    statistic: float
    # McNemar: b01 = units a failed and b passed, b10 the reverse. Wilcoxon: rank sums in favour of b / a.
    b01: int | None = None
    b10: int | None = None
    w_plus: float | None = None
    w_minus: float | None = None
    p_value: float
    adjusted_p: float
    holm: bool
    significant: bool
    winner: str | None
    needed_items: int | None  # paired units for 80% power at the observed effect (when not significant)
    more_items: int | None  # needed_items minus the units already compared, never below 0
    verdict: str


class ThresholdCheck(BaseModel):
    """One CI gate from ``EvalLog.thresholds`` checked against one variant."""

    name: str
    variant: str
    limit: float
    value: float | None
    direction: Literal["min", "max"]
    passed: bool


class ABReport(BaseModel):
    """The answer to "which prompt is better?", with its evidence. Serialised as versioned JSON."""

    schema_version: Literal[1] = 1
    suite: str
    run_id: str
    metric: str
    kind: Kind
    alpha: float
    confidence: float
    baseline: str | None
    holm: bool
    models: list[str]
    repeats: int
    n_units: int
    dropped_units: int
    variants: list[VariantSummary]
    comparisons: list[PairComparison]
    winner: str | None
    verdict: str
    thresholds: list[ThresholdCheck] = []
    # The LLM judge's pairwise preferences, when it was asked. Optional, so version 1 reports still load.
    pairwise: PairwiseReport | None = None

    @property
    def thresholds_passed(self) -> bool:
        return all(check.passed for check in self.thresholds)

    def variant(self, name: str) -> VariantSummary:
        for summary in self.variants:
            if summary.name == name:
                return summary
        raise EvalError(f"no variant {name!r} in this report", location=f"suite {self.suite!r}")


# ------------------------------------------------------------------------------------------ the metric


def _where(log: EvalLog) -> str:
    return f"{log.suite_path or 'suite ' + repr(log.suite)} (run {log.run_id})"


def resolve_metric(log: EvalLog, metric: str | None = None) -> tuple[str, Kind]:
    """The metric to compare on and its kind.

    ``"pass"`` is ``ItemResult.passed`` (binary); any other name is a scorer's value, of that scorer's
    kind. Without a metric: ``"pass"`` when any result carries a verdict, else the log's first scorer.
    """
    where = _where(log)
    names = _scorer_kinds(log)
    if metric is None:
        if any(r.passed is not None for r in log.results):
            return PASS_METRIC, "binary"
        if not log.scorers and not names:
            raise EvalError(
                "the log has no pass/fail verdicts and no scorers: nothing to compare", location=where
            )
        metric = log.scorers[0] if log.scorers else next(iter(names))
    if metric == PASS_METRIC:
        return PASS_METRIC, "binary"
    if metric not in names:
        if metric in log.scorers:
            raise EvalError(f"metric {metric!r}: no result has a score from that scorer", location=where)
        known = sorted({PASS_METRIC, *log.scorers, *names})
        raise EvalError(
            f"metric {metric!r} is not a scorer of this log; known: {', '.join(known)}", location=where
        )
    kinds = names[metric]
    if len(kinds) > 1:
        raise EvalError(f"metric {metric!r}: scorer reports both binary and graded scores", location=where)
    return metric, next(iter(kinds))


def _scorer_kinds(log: EvalLog) -> dict[str, set[Kind]]:
    kinds: dict[str, set[Kind]] = defaultdict(set)
    for result in log.results:
        for score in result.scores:
            kinds[score.scorer].add(score.kind)
    return kinds


def metric_value(result: ItemResult, metric: str, kind: Kind) -> float | None:
    """One result's value on the metric, or ``None`` when it has none.

    A failed generation (``error`` set) with no score counts as a fail for binary metrics and as missing
    for graded ones (no grade is invented). A binary scorer's outcome is its ``passed`` when set, else
    ``value >= 0.5``.
    """
    if metric == PASS_METRIC:
        if result.passed is not None:
            return 1.0 if result.passed else 0.0
        return 0.0 if result.error is not None else None
    for score in result.scores:
        if score.scorer == metric:
            if kind == "graded":
                return float(score.value)
            passed = score.passed if score.passed is not None else score.value >= 0.5
            return 1.0 if passed else 0.0
    if result.error is not None and kind == "binary":
        return 0.0
    return None


def result_failed(result: ItemResult, metric: str = PASS_METRIC, kind: Kind = "binary") -> bool:
    """Whether a result counts as a failure in reports: an error, a failed verdict or a failed binary metric."""
    if result.error is not None or result.passed is False:
        return True
    return kind == "binary" and metric_value(result, metric, kind) == 0.0


# -------------------------------------------------------------------------------------------- gathering


def _variant_order(log: EvalLog) -> list[str]:
    names = [v.name for v in log.variants]
    seen = set(names)
    for result in log.results:
        if result.variant not in seen:
            seen.add(result.variant)
            names.append(result.variant)
    return names


def _repeat_values(
    results: Iterable[ItemResult], metric: str, kind: Kind, model: str | None
) -> dict[str, dict[Unit, list[float]]]:
    """variant -> unit -> the metric's values over repeats (in repeat order)."""
    ordered: dict[str, dict[Unit, list[tuple[int, float]]]] = defaultdict(lambda: defaultdict(list))
    for result in results:
        if model is not None and result.model != model:
            continue
        value = metric_value(result, metric, kind)
        if value is not None:
            ordered[result.variant][(result.model, result.item_id)].append((result.repeat, value))
    return {
        variant: {unit: [v for _, v in sorted(pairs)] for unit, pairs in units.items()}
        for variant, units in ordered.items()
    }


def _aggregate(values: Sequence[float], kind: Kind) -> float:
    if kind == "graded":
        return math.fsum(values) / len(values)
    # Majority vote; a tie is a fail.
    return 1.0 if 2 * sum(values) > len(values) else 0.0


def _flip(units: dict[Unit, list[float]], kind: Kind) -> tuple[float | None, int | None]:
    """Flip rate over the repeated units (rows grouped by repeat count for the rectangular stats helper)."""
    import numpy as np

    by_length: dict[int, list[list[float]]] = defaultdict(list)
    for values in units.values():
        if len(values) >= 2:
            by_length[len(values)].append(values)
    total = sum(len(rows) for rows in by_length.values())
    if total == 0:
        return None, None
    rate = math.fsum(flip_rate(np.asarray(rows)) * len(rows) for rows in by_length.values()) / total
    flipped = None
    if kind == "binary":
        flipped = sum(1 for rows in by_length.values() for row in rows if min(row) != max(row))
    return rate, flipped


def _mean_ci(values: np.ndarray, confidence: float, seed: int, n_resamples: int) -> tuple[float, float]:
    import numpy as np

    # The paired bootstrap of (values - 0) is the bootstrap of the mean itself.
    ci = paired_bootstrap(
        np.zeros_like(values), values, confidence=confidence, seed=seed, n_resamples=n_resamples
    )
    return ci.low, ci.high


def _run_stats(results: list[ItemResult], metric: str, kind: Kind) -> dict[str, float | int | None]:
    verdicts = [r.passed for r in results if r.passed is not None or r.error is not None]
    return {
        "n_results": len(results),
        "pass_rate": (sum(1 for v in verdicts if v) / len(verdicts)) if verdicts else None,
        "failures": sum(1 for r in results if r.error is None and result_failed(r, metric, kind)),
        "errors": sum(1 for r in results if r.error is not None),
        "cached": sum(1 for r in results if r.cached),
        "cost_usd": math.fsum(r.cost_usd for r in results),
        "mean_latency_s": (math.fsum(r.latency_s for r in results) / len(results)) if results else 0.0,
        "input_tokens": sum(r.input_tokens for r in results),
        "output_tokens": sum(r.output_tokens for r in results),
    }


# ----------------------------------------------------------------------------------------- comparisons


def _pair_comparison(comparison: Comparison, holm_applied: bool) -> PairComparison:
    test = comparison.test
    extra: dict[str, float | int] = {}
    if isinstance(test, McNemarResult):
        extra = {"b01": test.b01, "b10": test.b10}
    else:
        extra = {"w_plus": test.w_plus, "w_minus": test.w_minus}
    needed = comparison.needed_items
    return PairComparison(
        a=comparison.name_a,
        b=comparison.name_b,
        n=comparison.n,
        mean_a=comparison.mean_a,
        mean_b=comparison.mean_b,
        diff=comparison.diff,
        ci_low=comparison.ci.low,
        ci_high=comparison.ci.high,
        ci_method=comparison.ci.method,
        test=comparison.test_name,  # type: ignore[arg-type]
        statistic=float(test.statistic),
        p_value=comparison.p_value,
        adjusted_p=comparison.adjusted_p,
        holm=holm_applied,
        significant=comparison.significant,
        winner=comparison.winner_name,
        needed_items=needed,
        more_items=None if needed is None else max(0, needed - comparison.n),
        verdict=comparison.verdict,
        **extra,  # type: ignore[arg-type]
    )


def _sentence(text: str) -> str:
    return text if text.endswith((".", "!", "?")) else text + "."


def _join(names: Sequence[str]) -> str:
    if len(names) <= 2:
        return " and ".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _verdict(
    comparisons: list[PairComparison], names: list[str], baseline: str | None, metric: str
) -> tuple[str | None, str]:
    """The overall winner (if exactly one variant beats everything it was compared with) and one sentence."""
    if len(comparisons) == 1:
        only = comparisons[0]
        return only.winner, _sentence(only.verdict)

    dominant, opponents = dominant_variants(comparisons, names)

    if len(dominant) == 1:
        winner = dominant[0]
        if baseline is not None and winner != baseline:
            (c,) = [c for c in comparisons if winner in (c.a, c.b)]
            return winner, _sentence(f"{c.verdict}; no other variant beats the baseline {baseline}")
        worst = max(c.adjusted_p for c in comparisons if c.winner == winner)
        return winner, (
            f"{winner} is best on {metric}: it beats {_join(sorted(opponents[winner], key=names.index))} "
            f"(every Holm-adjusted p ≤ {worst:.2g})."
        )

    unsettled = [c for c in comparisons if not c.significant]
    closest = min(unsettled, key=lambda c: c.adjusted_p) if unsettled else None
    if closest is not None and closest.needed_items is not None:
        tail = f"about {closest.needed_items} paired items would settle {closest.b} vs {closest.a}"
    elif closest is not None:
        tail = f"{closest.b} vs {closest.a} showed no difference at all"
    else:
        tail = ""
    wins = [f"{c.winner} beats {c.b if c.winner == c.a else c.a}" for c in comparisons if c.winner]
    if not wins:
        return None, _sentence(
            f"Not enough evidence that any variant is better on {metric} after Holm's correction; {tail}"
        )
    if len(dominant) > 1:
        lead = f"{_join(dominant)} each beat the baseline {baseline} but were not compared with each other"
        return None, _sentence(lead + (f"; {tail}" if tail else ""))
    return None, _sentence(
        f"No single winner on {metric}: {'; '.join(wins)}"
        + (f"; otherwise not enough evidence, {tail}" if tail else "")
    )


# ------------------------------------------------------------------------------------------- run health


def _first_error(results: Iterable[ItemResult]) -> str | None:
    return next((r.error for r in results if r.error is not None), None)


def run_problems(log: EvalLog, *, model: str | None = None) -> list[str]:
    """Why the run is not a clean one (empty when it is): errors outnumber the successful results, or a
    variant has no successful result at all. Such a run says nothing about its prompts either way."""
    results = [r for r in log.results if model is None or r.model == model]
    errors = sum(1 for r in results if r.error is not None)
    problems: list[str] = []
    if errors and errors > len(results) - errors:
        problems.append(f"{errors} of {len(results)} results errored, more than succeeded")
    by_variant: dict[str, list[ItemResult]] = defaultdict(list)
    for result in results:
        by_variant[result.variant].append(result)
    for name in _variant_order(log):
        own = by_variant.get(name, [])
        if not any(r.error is None for r in own):
            what = f"all {len(own)} of its results errored" if own else "it has no results"
            problems.append(f"variant {name!r} has no successful result ({what})")
    first = _first_error(results)
    if problems and first is not None:
        problems.append(f"first error: {first[:300]}")
    return problems


# ----------------------------------------------------------------------------------------- thresholds


def check_thresholds(log: EvalLog) -> list[ThresholdCheck]:
    """Check every gate in ``log.thresholds`` against every variant (all models and repeats pooled).

    Gates: ``pass_rate`` (minimum share of results with ``passed=True``; errors count as fails),
    ``error_rate`` (maximum share of results that errored), ``<scorer name>`` (minimum mean value of
    that scorer; for a binary scorer, its pass rate), and the name of an aggregate in ``log.aggregates``
    such as ``pass@1`` (minimum of its item-weighted mean over models). An unknown gate raises
    :class:`EvalError` rather than passing silently.
    """
    where = _where(log)
    checks: list[ThresholdCheck] = []
    kinds = _scorer_kinds(log)
    by_variant: dict[str, list[ItemResult]] = defaultdict(list)
    for result in log.results:
        by_variant[result.variant].append(result)
    aggregates: dict[str, dict[str, list[tuple[float, int]]]] = defaultdict(lambda: defaultdict(list))
    for aggregate in getattr(log, "aggregates", None) or []:  # added by the runner; absent in older logs
        aggregates[aggregate.metric][aggregate.variant].append((aggregate.value, max(1, aggregate.n_items)))
    for name, limit in log.thresholds.items():
        known = (
            name in ("pass_rate", "error_rate") or name in kinds or name in log.scorers or name in aggregates
        )
        if not known:
            raise EvalError(
                f"threshold {name!r} is not pass_rate, error_rate, a scorer or an aggregate of this log",
                location=f"{where}: thresholds.{name}",
            )
        for variant in _variant_order(log):
            results = by_variant.get(variant, [])
            direction: Literal["min", "max"] = "max" if name == "error_rate" else "min"
            value: float | None
            if name == "error_rate":
                value = sum(1 for r in results if r.error is not None) / len(results) if results else None
            elif name == "pass_rate":
                value = sum(1 for r in results if r.passed) / len(results) if results else None
            elif name in aggregates and name not in kinds:
                weighted = aggregates[name].get(variant, [])
                total = sum(n for _, n in weighted)
                value = math.fsum(v * n for v, n in weighted) / total if total else None
            else:
                kind = next(iter(kinds.get(name, {"graded"})))
                values = [v for r in results if (v := metric_value(r, name, kind)) is not None]
                value = math.fsum(values) / len(values) if values else None
            ok = value is not None and (value >= limit if direction == "min" else value <= limit)
            checks.append(
                ThresholdCheck(
                    name=name, variant=variant, limit=limit, value=value, direction=direction, passed=ok
                )
            )
    return checks


# ----------------------------------------------------------------------------------------- entry point


def compare_variants(
    log: EvalLog,
    *,
    metric: str | None = None,
    baseline: str | None = None,
    alpha: float = 0.05,
    model: str | None = None,
    seed: int | None = None,
    n_resamples: int = 10_000,
    judgements: Sequence[PairwiseJudgement] | None = None,
) -> ABReport:
    """Compare the log's prompt variants on the same items and decide which (if any) is better.

    ``metric``: ``"pass"`` or a scorer name (default: see :func:`resolve_metric`). ``baseline``: compare
    every other variant against it; without one, every pair is compared. ``model`` restricts the
    comparison to one model's results (default: all models, each (model, item) a paired unit).
    ``seed`` (default: the log's) fixes the bootstrap. ``judgements`` (from
    :func:`~promptkit.evals._pairwise.judge_pairs`) add the judge's pairwise preferences as
    ``ABReport.pairwise``, with the same ``alpha``, ``baseline`` and ``model``. See the module docstring
    for the method.
    """
    import numpy as np

    where = _where(log)
    if not 0.0 < alpha < 1.0:
        raise EvalError(f"alpha must be strictly between 0 and 1, got {alpha!r}", location=where)
    if model is not None and model not in {r.model for r in log.results}:
        raise EvalError(f"model {model!r} has no results in this log", location=where)
    metric_name, kind = resolve_metric(log, metric)
    names = _variant_order(log)
    if baseline is not None and baseline not in names:
        raise EvalError(
            f"baseline {baseline!r} is not a variant; variants: {', '.join(names)}", location=where
        )

    repeats = _repeat_values(log.results, metric_name, kind, model)
    present = [n for n in names if repeats.get(n)]
    missing = [n for n in names if not repeats.get(n)]
    if missing:
        raise EvalError(
            f"variant(s) {', '.join(missing)} have no results with a value for metric {metric_name!r}",
            location=where,
        )
    if len(present) < 2:
        raise EvalError(f"need at least two variants to compare, got {len(present)}", location=where)

    all_units = set().union(*(repeats[n].keys() for n in present))
    shared = sorted(set.intersection(*(set(repeats[n].keys()) for n in present)))
    if not shared:
        raise EvalError("no (model, item) has a result from every variant: nothing is paired", location=where)
    per_unit = {n: np.array([_aggregate(repeats[n][u], kind) for u in shared]) for n in present}

    seed = log.seed if seed is None else seed
    holm_applied = len(present) > 2
    if holm_applied:
        raw = compare_many(
            per_unit, baseline=baseline, kind=kind, alpha=alpha, seed=seed, n_resamples=n_resamples
        )
    else:
        first, second = present
        if baseline is not None and baseline == second:
            first, second = second, first
        raw = [
            compare_paired(
                per_unit[first],
                per_unit[second],
                kind=kind,
                alpha=alpha,
                seed=seed,
                n_resamples=n_resamples,
                name_a=first,
                name_b=second,
            )
        ]
    comparisons = [_pair_comparison(c, holm_applied) for c in raw]
    winner, verdict = _verdict(comparisons, present, baseline, metric_name)

    # Errors are not failures of a prompt: a variant none of whose results succeeded gets no verdict.
    scoped = [r for r in log.results if model is None or r.model == model]
    broken = [n for n in present if not any(r.error is None for r in scoped if r.variant == n)]
    if broken:
        errored = sum(1 for r in scoped if r.variant in broken)
        first = _first_error(r for r in scoped if r.variant in broken) or ""
        refusal = (
            f"No verdict: {_join(broken)} {'has' if len(broken) == 1 else 'have'} no successful result "
            f"({errored} errored, e.g. {first[:160]!r}); errors are not evidence about a prompt, "
            "so fix them and run again"
        )
        comparisons = [
            c.model_copy(update={"winner": None, "significant": False, "verdict": refusal})
            if c.a in broken or c.b in broken
            else c
            for c in comparisons
        ]
        winner, verdict = None, _sentence(refusal)
    elif kind == "binary":
        # An errored result counts as a fail: "no difference" between two sets of errors is no finding.
        errors = {n: sum(1 for r in scoped if r.variant == n and r.error is not None) for n in present}
        tail = "no difference was observed, so more items would not settle it"
        for i, c in enumerate(comparisons):
            count = errors[c.a] + errors[c.b]
            if count and tail in c.verdict:
                note = f"{count} of their results errored and count as fails: fix the errors and run again"
                comparisons[i] = c.model_copy(update={"verdict": c.verdict.replace(tail, note)})
                if len(comparisons) == 1:
                    verdict = _sentence(comparisons[i].verdict)

    info = {v.name: v for v in log.variants}
    by_variant: dict[str, list[ItemResult]] = defaultdict(list)
    for result in log.results:
        if model is None or result.model == model:
            by_variant[result.variant].append(result)
    summaries = []
    for name in present:
        low, high = _mean_ci(per_unit[name], 1 - alpha, seed, n_resamples)
        rate, flipped = _flip(repeats[name], kind)
        variant_info = info.get(name)
        summaries.append(
            VariantSummary(
                name=name,
                template=variant_info.template if variant_info else "",
                template_hash=variant_info.template_hash if variant_info else "",
                mean=float(np.mean(per_unit[name])),
                ci_low=low,
                ci_high=high,
                n_units=len(shared),
                flip_rate=rate,
                flipped_units=flipped,
                **_run_stats(by_variant[name], metric_name, kind),  # type: ignore[arg-type]
            )
        )

    return ABReport(
        suite=log.suite,
        run_id=log.run_id,
        metric=metric_name,
        kind=kind,
        alpha=alpha,
        confidence=1 - alpha,
        baseline=baseline,
        holm=holm_applied,
        models=[model] if model is not None else (log.models or sorted({r.model for r in log.results})),
        repeats=log.repeats,
        n_units=len(shared),
        dropped_units=len(all_units) - len(shared),
        variants=summaries,
        comparisons=comparisons,
        winner=winner,
        verdict=verdict,
        thresholds=check_thresholds(log),
        pairwise=None
        if judgements is None
        else compare_pairwise(judgements, alpha=alpha, baseline=baseline, model=model),
    )

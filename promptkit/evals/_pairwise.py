"""Pairwise LLM-as-judge comparison of prompt variants, with the positions swapped to cancel order bias.

``judge_pairs(log, judge)`` shows a judge, for every (model, item) where two variants both have an output,
the two outputs twice: variant A's first, then variant B's first. An item is a win only when both orders
name the same variant; a tie from the judge and a disagreement between the orders both count as ties, and
disagreements are reported. ``compare_pairwise(judgements)`` turns the judgements into statistics per pair
of variants:

- wins, losses and ties; B's win rate against A over the decisive items (ties excluded) with a Wilson
  interval;
- an exact two-sided sign test of B's wins against A's (ties excluded). It is the exact McNemar test on
  discordant pairs, so ``mcnemar_exact`` computes it; Holm's correction across pairs when more than two
  variants are compared;
- the **order-agreement rate**: how often the two orders named the same winner (or both a tie), and the
  **first-position rate**: how often a decisive answer picked the answer shown first (0.5 is unbiased).
  A low agreement rate says the judge is position-biased and the comparison is weak; the verdict says so.

Each item is judged once per pair: on each variant's first repeat that has an output.
"""

from __future__ import annotations

import asyncio
import copy
import math
from collections import defaultdict
from collections.abc import Sequence
from itertools import combinations
from statistics import NormalDist
from typing import Any, Literal

from pydantic import BaseModel

from promptkit.errors import (
    AttemptsExhausted,
    BackendError,
    EvalError,
    OutputValidationError,
    RoutingError,
)
from promptkit.evals._eval_log import EvalLog, ItemResult
from promptkit.evals._judge_scorers import PairwiseJudge, PairwiseVerdict
from promptkit.evals._stats import holm, mcnemar_exact, required_pairs_mcnemar

__all__ = [
    "DEFAULT_RUBRIC",
    "LOW_AGREEMENT",
    "PairwiseJudgement",
    "PairwiseComparison",
    "PairwiseReport",
    "judge_pairs",
    "ajudge_pairs",
    "compare_pairwise",
    "wilson_interval",
]

DEFAULT_RUBRIC = (
    "Which answer does the task better: correct, complete and directly useful, with nothing invented. "
    "Length, tone and the order of the answers do not count."
)
# Below this share of items on which the two orders agree, the judge is called position-biased.
LOW_AGREEMENT = 0.7
_SIZING_POWER = 0.8
# Errors of one judge call that should not stop the others; the judgement records them instead.
_CALL_ERRORS = (AttemptsExhausted, RoutingError, BackendError, OutputValidationError)

Side = Literal["a", "b", "tie"]


# ---------------------------------------------------------------------------------------------- models


class PairwiseJudgement(BaseModel):
    """The judge on one (model, item) for variants ``a`` and ``b``; ``verdict`` is None when the calls failed."""

    model: str  # the model whose outputs were compared
    item_id: str
    a: str
    b: str
    repeat_a: int = 0
    repeat_b: int = 0
    verdict: PairwiseVerdict | None = None
    error: str | None = None

    @property
    def winner(self) -> str | None:
        """The variant both orders preferred, or None for a tie, a disagreement or an error."""
        if self.verdict is None or self.verdict.winner == "tie":
            return None
        return self.a if self.verdict.winner == "a" else self.b

    def swapped(self) -> PairwiseJudgement:
        """The same judgement with ``a`` and ``b`` exchanged (so that a baseline can be ``a``)."""
        flip: dict[str, Side] = {"a": "b", "b": "a", "tie": "tie"}
        verdict = None
        if self.verdict is not None:
            v = self.verdict
            # The old "B first" order is the new "A first" order.
            verdict = v.model_copy(
                update={
                    "winner": flip[v.winner],
                    "order_ab": flip[v.order_ba],
                    "order_ba": flip[v.order_ab],
                    "rationale_ab": v.rationale_ba,
                    "rationale_ba": v.rationale_ab,
                }
            )
        return self.model_copy(
            update={
                "a": self.b,
                "b": self.a,
                "repeat_a": self.repeat_b,
                "repeat_b": self.repeat_a,
                "verdict": verdict,
            }
        )


class PairwiseComparison(BaseModel):
    """The judge's preferences between variants ``a`` and ``b`` over the judged items."""

    a: str
    b: str
    n: int  # items judged without error
    errors: int
    wins_a: int
    wins_b: int
    ties: int  # the judge's ties plus the disagreements
    disagreements: int  # items whose two orders named different winners
    win_rate_b: float | None  # B's wins / decisive items; None when no item was decisive
    ci_low: float | None  # Wilson interval for win_rate_b at the report's confidence
    ci_high: float | None
    agreement_rate: float | None  # share of items whose two orders agreed; None when n == 0
    first_position_rate: float | None  # share of decisive answers that picked the answer shown first
    position_bias: bool
    p_value: float  # exact two-sided sign test, wins_b against wins_a
    adjusted_p: float
    holm: bool
    significant: bool
    winner: str | None
    needed_items: int | None  # judged items for 80% power at the observed split (when not significant)
    verdict: str


class PairwiseReport(BaseModel):
    """Every judgement and the statistics over them; the ``pairwise`` section of an ABReport."""

    judges: list[str]
    alpha: float
    confidence: float
    baseline: str | None = None
    holm: bool
    n_judgements: int
    errors: int
    agreement_rate: float | None
    first_position_rate: float | None
    position_bias: bool
    cost_usd: float
    comparisons: list[PairwiseComparison]
    winner: str | None
    verdict: str
    warnings: list[str] = []
    judgements: list[PairwiseJudgement]

    def comparison(self, a: str, b: str) -> PairwiseComparison:
        for c in self.comparisons:
            if (c.a, c.b) == (a, b):
                return c
        raise EvalError(f"no pairwise comparison of {a!r} and {b!r} in this report", location="pairwise")


# ------------------------------------------------------------------------------------------- judging


def _variant_names(log: EvalLog) -> list[str]:
    names = [v.name for v in log.variants]
    for result in log.results:
        if result.variant not in names:
            names.append(result.variant)
    return names


def _first_outputs(log: EvalLog, model: str | None) -> dict[tuple[str, str], dict[str, ItemResult]]:
    """(model, item) -> variant -> its lowest-repeat result with an output, in the log's item order."""
    units: dict[tuple[str, str], dict[str, ItemResult]] = {}
    for result in sorted(log.frame().values(), key=lambda r: r.repeat):
        if model is not None and result.model != model:
            continue
        unit = units.setdefault((result.model, result.item_id), {})
        if result.output is not None and result.error is None and result.variant not in unit:
            unit[result.variant] = result
    order: dict[tuple[str, str], int] = {}
    for result in log.results:
        order.setdefault((result.model, result.item_id), len(order))
    return dict(sorted(units.items(), key=lambda kv: order[kv[0]]))


def _pairs(names: list[str], baseline: str | None) -> list[tuple[str, str]]:
    if baseline is not None:
        return [(baseline, name) for name in names if name != baseline]
    return list(combinations(names, 2))


def _judge_for(
    judge: PairwiseJudge | Any, rubric: str | None, cache: Any, ledger: Any, run_id: str | None
) -> PairwiseJudge:
    if isinstance(judge, PairwiseJudge):
        if rubric is None:
            return judge
        made = copy.copy(judge)
        made.rubric = rubric
        return made
    return PairwiseJudge(judge, rubric or DEFAULT_RUBRIC, cache=cache, ledger=ledger, run_id=run_id)


async def ajudge_pairs(
    log: EvalLog,
    judge: PairwiseJudge | Any,
    *,
    variants: Sequence[str] | None = None,
    rubric: str | None = None,
    baseline: str | None = None,
    model: str | None = None,
    reference: bool = True,
    concurrency: int = 8,
    cache: Any = True,
    ledger: Any = True,
    run_id: str | None = None,
) -> list[PairwiseJudgement]:
    """The async form of :func:`judge_pairs`."""
    where = f"{log.suite_path or 'suite ' + repr(log.suite)} (run {log.run_id})"
    if concurrency < 1:
        raise EvalError(f"concurrency must be at least 1, got {concurrency}", location=where)
    known = _variant_names(log)
    names = list(variants) if variants is not None else known
    unknown = [n for n in names if n not in known]
    if unknown:
        raise EvalError(
            f"variant(s) {', '.join(unknown)} not in the log; variants: {', '.join(known)}", location=where
        )
    if baseline is not None and baseline not in names:
        raise EvalError(
            f"baseline {baseline!r} is not a compared variant: {', '.join(names)}", location=where
        )
    if len(set(names)) < 2:
        raise EvalError(f"need at least two variants to judge, got {len(set(names))}", location=where)
    if model is not None and model not in {r.model for r in log.results}:
        raise EvalError(f"model {model!r} has no results in this log", location=where)

    the_judge = _judge_for(judge, rubric, cache, ledger, run_id)
    units = _first_outputs(log, model)
    pairs = _pairs(list(dict.fromkeys(names)), baseline)
    for a, b in pairs:
        if not any(a in outputs and b in outputs for outputs in units.values()):
            raise EvalError(
                f"no item has an output from both {a!r} and {b!r}: nothing to judge", location=where
            )

    limit = asyncio.Semaphore(concurrency)

    async def one(ra: ItemResult, rb: ItemResult) -> PairwiseJudgement:
        judgement = PairwiseJudgement(
            model=ra.model,
            item_id=ra.item_id,
            a=ra.variant,
            b=rb.variant,
            repeat_a=ra.repeat,
            repeat_b=rb.repeat,
        )
        expected = ra.expected if reference else None
        try:
            verdict = await the_judge.compare(
                ra.inputs, ra.output or "", rb.output or "", reference=expected, limit=limit
            )
        except _CALL_ERRORS as exc:
            judgement.error = str(exc)
            return judgement
        judgement.verdict = verdict
        return judgement

    tasks = [
        one(outputs[a], outputs[b])
        for outputs in units.values()
        for a, b in pairs
        if a in outputs and b in outputs
    ]
    judgements = list(await asyncio.gather(*tasks))
    failed = [j for j in judgements if j.error is not None]
    if len(failed) == len(judgements):
        raise EvalError(
            f"every one of the {len(judgements)} judge comparisons failed; the first: {failed[0].error}",
            location=f"{where}: item {failed[0].item_id!r}",
        )
    return judgements


def judge_pairs(
    log: EvalLog,
    judge: PairwiseJudge | Any,
    *,
    variants: Sequence[str] | None = None,
    rubric: str | None = None,
    baseline: str | None = None,
    model: str | None = None,
    reference: bool = True,
    concurrency: int = 8,
    cache: Any = True,
    ledger: Any = True,
    run_id: str | None = None,
) -> list[PairwiseJudgement]:
    """Ask ``judge`` which of two variants' outputs is better, for every item, in both orders.

    ``judge`` is a :class:`PairwiseJudge` or a model (a model string, alias or Backend) to build one with
    ``rubric`` (default :data:`DEFAULT_RUBRIC`; a rubric given with a PairwiseJudge replaces its own).
    ``variants`` (default: all, in the log's order) are compared pairwise, or each against ``baseline``.
    ``model`` restricts the items to one model's outputs; ``reference`` shows the judge the item's expected
    answer when it has one. At most ``concurrency`` judge calls are in flight. Calls go through
    ``promptkit.generation`` (``cache``/``ledger`` as there), so they are cached, recorded and re-asked on an
    invalid answer. A comparison whose calls fail is kept with its ``error``; when every one fails, raises
    :class:`EvalError`.
    """
    from promptkit.backends import run_sync

    return run_sync(  # type: ignore[no-any-return]
        ajudge_pairs(
            log,
            judge,
            variants=variants,
            rubric=rubric,
            baseline=baseline,
            model=model,
            reference=reference,
            concurrency=concurrency,
            cache=cache,
            ledger=ledger,
            run_id=run_id,
        )
    )


# ---------------------------------------------------------------------------------------- statistics


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion ``successes / n`` (n > 0)."""
    if n <= 0 or not 0 <= successes <= n:
        raise EvalError(
            f"need 0 <= successes <= n and n > 0, got {successes} of {n}", location="wilson_interval"
        )
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def _p(p: float) -> str:
    return "<0.0001" if p < 1e-4 else f"={p:.2g}"


def _pct(value: float) -> str:
    return f"{100 * value:.0f}%"


def dominant_variants(
    comparisons: Sequence[Any], names: Sequence[str]
) -> tuple[list[str], dict[str, set[str]]]:
    """The variants that beat every variant they were compared with, and who each was compared with.

    ``comparisons`` have ``a``, ``b`` and ``winner`` (None when not significant): metric or judge pairs alike.
    """
    beats: dict[str, set[str]] = defaultdict(set)
    opponents: dict[str, set[str]] = defaultdict(set)
    for c in comparisons:
        opponents[c.a].add(c.b)
        opponents[c.b].add(c.a)
        if c.winner is not None:
            beats[c.winner].add(c.b if c.winner == c.a else c.a)
    return [n for n in names if opponents[n] and beats[n] == opponents[n]], opponents


def _agreement(verdicts: Sequence[PairwiseVerdict]) -> float | None:
    return sum(v.agree for v in verdicts) / len(verdicts) if verdicts else None


def _first_position(verdicts: Sequence[PairwiseVerdict]) -> float | None:
    """Share of decisive answers (either order) that picked the answer shown first."""
    decisive = [(v.order_ab, "a") for v in verdicts if v.order_ab != "tie"]
    decisive += [(v.order_ba, "b") for v in verdicts if v.order_ba != "tie"]
    if not decisive:
        return None
    return sum(1 for picked, shown_first in decisive if picked == shown_first) / len(decisive)


def _biased(agreement: float | None) -> bool:
    return agreement is not None and agreement < LOW_AGREEMENT


def _bias_note(first: float | None) -> str:
    seen = f" (the answer shown first won {_pct(first)} of decisive answers)" if first is not None else ""
    return f"the judge is position-biased{seen}, so this is weak evidence"


def _sign_test(wins_a: int, wins_b: int) -> float:
    if wins_a + wins_b == 0:
        return 1.0
    # The sign test on decisive items is McNemar's exact test on discordant pairs, with b01 = B's wins.
    return mcnemar_exact([1] * wins_a + [0] * wins_b, [0] * wins_a + [1] * wins_b).p_value


class _Tally:
    """One pair's judgements, gathered before the p-values of all pairs are Holm-adjusted together."""

    def __init__(self, a: str, b: str) -> None:
        self.a, self.b = a, b
        self.judged: list[PairwiseVerdict] = []
        self.errors = 0

    @property
    def wins_a(self) -> int:
        return sum(1 for v in self.judged if v.winner == "a")

    @property
    def wins_b(self) -> int:
        return sum(1 for v in self.judged if v.winner == "b")

    def comparison(
        self, p_value: float, adjusted_p: float, holm_applied: bool, alpha: float, sizing_alpha: float
    ) -> PairwiseComparison:
        a, b, n = self.a, self.b, len(self.judged)
        wins_a, wins_b = self.wins_a, self.wins_b
        decisive = wins_a + wins_b
        ties = n - decisive
        rate = low = high = None
        if decisive:
            rate = wins_b / decisive
            low, high = wilson_interval(wins_b, decisive, 1 - alpha)
        agreement = _agreement(self.judged)
        first = _first_position(self.judged)
        significant = decisive > 0 and adjusted_p <= alpha and wins_a != wins_b
        winner = (b if wins_b > wins_a else a) if significant else None
        needed = None
        if not significant and wins_a != wins_b:
            needed = required_pairs_mcnemar(wins_b / n, wins_a / n, sizing_alpha, _SIZING_POWER)

        stats = f"sign test p{_p(p_value)}" + (f", Holm p{_p(adjusted_p)}" if holm_applied else "")
        if agreement is not None:
            stats += f"; orders agreed {_pct(agreement)}"
        if n == 0:
            verdict = f"No judgement of {b} vs {a} succeeded ({self.errors} failed)"
        elif winner is not None:
            loser = a if winner == b else b
            won, lost = (wins_b, wins_a) if winner == b else (wins_a, wins_b)
            verdict = (
                f"Judge prefers {winner} over {loser} in {won} of {n} items "
                f"({loser} in {lost}, {ties} ties; {stats})"
            )
        else:
            verdict = (
                f"Not enough evidence that the judge prefers {b} or {a}: {b} won {wins_b}, {a} won {wins_a}, "
                f"{ties} ties in {n} items ({stats})"
            )
            if needed is not None:
                verdict += f"; about {needed} judged items would settle it"
        if _biased(agreement):
            verdict += "; " + _bias_note(first)
        return PairwiseComparison(
            a=a,
            b=b,
            n=n,
            errors=self.errors,
            wins_a=wins_a,
            wins_b=wins_b,
            ties=ties,
            disagreements=sum(1 for v in self.judged if not v.agree),
            win_rate_b=rate,
            ci_low=low,
            ci_high=high,
            agreement_rate=agreement,
            first_position_rate=first,
            position_bias=_biased(agreement),
            p_value=p_value,
            adjusted_p=adjusted_p,
            holm=holm_applied,
            significant=significant,
            winner=winner,
            needed_items=needed,
            verdict=verdict + ".",
        )


def _overall(
    comparisons: list[PairwiseComparison],
    names: list[str],
    baseline: str | None,
    agreement: float | None,
    first: float | None,
) -> tuple[str | None, str]:
    """The judge's overall favourite (one variant that beats every variant it was compared with) and a sentence."""
    if len(comparisons) == 1:
        return comparisons[0].winner, comparisons[0].verdict
    tail = f" (orders agreed {_pct(agreement)})" if agreement is not None else ""
    if _biased(agreement):
        tail += "; " + _bias_note(first)
    dominant, opponents = dominant_variants(comparisons, names)
    if len(dominant) == 1:
        winner = dominant[0]
        worst = max(c.adjusted_p for c in comparisons if c.winner == winner)
        beaten = ", ".join(sorted(opponents[winner], key=names.index))
        extra = f"; no other variant beats the baseline {baseline}" if baseline not in (None, winner) else ""
        return winner, (
            f"Judge prefers {winner} over {beaten} (Holm-adjusted sign-test p ≤ {worst:.2g}){extra}{tail}."
        )
    wins = [f"{c.winner} over {c.b if c.winner == c.a else c.a}" for c in comparisons if c.winner]
    if not wins:
        return None, f"Not enough evidence that the judge prefers any variant after Holm's correction{tail}."
    return None, f"No single judge favourite: the judge prefers {'; '.join(wins)}{tail}."


def compare_pairwise(
    judgements: Sequence[PairwiseJudgement],
    *,
    alpha: float = 0.05,
    baseline: str | None = None,
    model: str | None = None,
) -> PairwiseReport:
    """Statistics over :func:`judge_pairs`' judgements, per pair of variants (see the module docstring).

    With ``baseline``, only pairs with it are kept, oriented as (baseline, other); ``model`` keeps one
    model's items. Holm's correction applies when more than one pair is compared.
    """
    where = "compare_pairwise"
    if not 0.0 < alpha < 1.0:
        raise EvalError(f"alpha must be strictly between 0 and 1, got {alpha!r}", location=where)
    kept: list[PairwiseJudgement] = []
    for j in judgements:
        if model is not None and j.model != model:
            continue
        if baseline is not None:
            if baseline not in (j.a, j.b):
                continue
            if j.b == baseline:
                j = j.swapped()
        kept.append(j)
    if not kept:
        what = f" with baseline {baseline!r}" if baseline else ""
        what += f" for model {model!r}" if model else ""
        raise EvalError(f"no pairwise judgements{what} to compare", location=where)

    tallies: dict[tuple[str, str], _Tally] = {}
    names: list[str] = []
    for j in kept:
        tally = tallies.setdefault((j.a, j.b), _Tally(j.a, j.b))
        names += [n for n in (j.a, j.b) if n not in names]
        if j.verdict is None:
            tally.errors += 1
        else:
            tally.judged.append(j.verdict)

    raw = [_sign_test(t.wins_a, t.wins_b) for t in tallies.values()]
    holm_applied = len(tallies) > 1
    adjusted = [h.adjusted_p for h in holm(raw, alpha)] if holm_applied else raw
    sizing_alpha = alpha / len(tallies)  # Bonferroni: a slight overestimate for Holm, as in compare_many
    comparisons = [
        t.comparison(p, q, holm_applied, alpha, sizing_alpha)
        for t, p, q in zip(tallies.values(), raw, adjusted, strict=True)
    ]

    verdicts = [j.verdict for j in kept if j.verdict is not None]
    agreement = _agreement(verdicts)
    first = _first_position(verdicts)
    winner, verdict = _overall(comparisons, names, baseline, agreement, first)
    warnings = []
    if _biased(agreement):
        warnings.append(
            f"Position bias: the two orders agreed on only {_pct(agreement or 0.0)} of items (below "
            f"{_pct(LOW_AGREEMENT)})"
            + (
                f" and the answer shown first won {_pct(first)} of decisive answers"
                if first is not None
                else ""
            )
            + ". Disagreements count as ties, so the comparison is weak; a stronger judge or a sharper rubric "
            "would help."
        )
    failed = [j for j in kept if j.error is not None]
    if failed:
        warnings.append(
            f"{len(failed)} of {len(kept)} judge comparisons failed and are left out; "
            f"the first (item {failed[0].item_id!r}): {failed[0].error}"
        )
    return PairwiseReport(
        judges=sorted({v.judge for v in verdicts if v.judge}),
        alpha=alpha,
        confidence=1 - alpha,
        baseline=baseline,
        holm=holm_applied,
        n_judgements=len(kept),
        errors=len(failed),
        agreement_rate=agreement,
        first_position_rate=first,
        position_bias=_biased(agreement),
        cost_usd=math.fsum(v.cost_usd for v in verdicts),
        comparisons=comparisons,
        winner=winner,
        verdict=verdict,
        warnings=warnings,
        judgements=kept,
    )

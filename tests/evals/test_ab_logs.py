"""Synthetic eval logs with known effects, shared by the A/B, report, HTML and CLI tests (and their checks)."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence

from promptkit.evals._eval_log import EvalLog, ItemResult, Score, VariantInfo

Outcomes = Mapping[str, Sequence[Sequence[float]]]  # variant -> item -> value per repeat


def build_log(
    values: Outcomes,
    *,
    kind: str = "binary",
    scorer: str | None = None,
    models: Sequence[str] = ("cheap",),
    thresholds: Mapping[str, float] | None = None,
    output: Callable[[str, int, int], str] | None = None,
    rationale: Callable[[str, int, int], str | None] | None = None,
    seed: int = 0,
) -> EvalLog:
    """An EvalLog whose results carry exactly ``values`` (one score per result) for every model.

    Binary values are pass/fail (the result's ``passed`` follows them); graded values are grades with no
    threshold (``passed`` stays None).
    """
    scorer = scorer or ("exact" if kind == "binary" else "judge")
    results = []
    for model in models:
        for variant, items in values.items():
            for i, repeats in enumerate(items):
                for r, value in enumerate(repeats):
                    passed = bool(value) if kind == "binary" else None
                    results.append(
                        ItemResult(
                            item_id=f"item-{i:03d}",
                            variant=variant,
                            model=model,
                            repeat=r,
                            inputs={"question": f"question {i}"},
                            expected=f"answer {i}",
                            output=output(variant, i, r) if output else f"{variant} says answer {i}",
                            scores=[
                                Score(
                                    scorer=scorer,
                                    value=float(value),
                                    passed=passed,
                                    kind=kind,  # type: ignore[arg-type]
                                    rationale=rationale(variant, i, r) if rationale else None,
                                )
                            ],
                            passed=passed,
                            latency_s=0.5,
                            cost_usd=0.001,
                            input_tokens=100,
                            output_tokens=20,
                        )
                    )
    n_repeats = max(len(rep) for items in values.values() for rep in items)
    return EvalLog(
        suite="synthetic",
        suite_path=None,
        suite_hash="0" * 16,
        run_id="run-test",
        started_at=1_700_000_000.0,
        finished_at=1_700_000_100.0,
        status="complete",
        seed=seed,
        repeats=n_repeats,
        variants=[VariantInfo(name=v, template=f"tpl_{v}", template_hash="h" + v) for v in values],
        models=list(models),
        scorers=[scorer],
        results=results,
        thresholds=dict(thresholds or {}),
    )


def bernoulli(n: int, rate: float, rng: random.Random) -> list[list[float]]:
    return [[1.0 if rng.random() < rate else 0.0] for _ in range(n)]


def from_pairs(a: Sequence[int], b: Sequence[int]) -> dict[str, list[list[float]]]:
    return {"A": [[float(x)] for x in a], "B": [[float(y)] for y in b]}


def discordant(n: int, b01: int, b10: int, both_pass: int) -> tuple[list[int], list[int]]:
    """Paired pass/fail vectors with exactly b01 (A fails, B passes) and b10 (A passes, B fails) items."""
    a = [0] * b01 + [1] * b10 + [1] * both_pass
    b = [1] * b01 + [0] * b10 + [1] * both_pass
    rest = n - len(a)
    assert rest >= 0
    return a + [0] * rest, b + [0] * rest


def test_build_log_round_trips_through_json():
    log = build_log(from_pairs(*discordant(10, 3, 1, 4)))
    again = EvalLog.model_validate_json(log.model_dump_json())
    assert again == log
    assert len(again.frame()) == 20
    assert again.frame()[("B", "cheap", "item-000", 0)].passed is True
    assert again.frame()[("A", "cheap", "item-000", 0)].passed is False


def test_discordant_counts_are_what_they_say():
    a, b = discordant(30, 7, 2, 11)
    assert sum(1 for x, y in zip(a, b, strict=True) if x == 0 and y == 1) == 7
    assert sum(1 for x, y in zip(a, b, strict=True) if x == 1 and y == 0) == 2
    assert sum(1 for x, y in zip(a, b, strict=True) if x == y == 1) == 11

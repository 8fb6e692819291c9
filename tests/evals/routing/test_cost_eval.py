"""N-model routing by quality and dollars: the hull and AIQ, the λ choice, cascades, in- and cross-domain."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from promptkit.errors import EvalError
from promptkit.evals.routing import (
    OutcomeMatrix,
    area_under_hull,
    cascade_outcomes,
    cost_to_reach,
    evaluate_outcomes,
    load_outcomes,
    nondecreasing_hull,
    run_route_eval,
)
from tests.evals.routing.routerbench_fixture import write_wide


def _matrix(
    scores: list[list[float]], costs: list[list[float]], domains: list[str] | None = None
) -> OutcomeMatrix:
    n = len(scores)
    return OutcomeMatrix(
        models=[f"m{j}" for j in range(len(scores[0]))],
        prompts=[f"prompt {i}" for i in range(n)],
        scores=np.asarray(scores, dtype=float),
        costs=np.asarray(costs, dtype=float),
        domains=domains or ["d"] * n,
        ids=[str(i) for i in range(n)],
        source="hand",
    )


def test_hull_and_aiq_on_a_hand_checked_case() -> None:
    # (2, 0.6) lies under the line from (1, 0.5) to (3, 0.9); (4, 0.8) costs more for less: both leave the hull.
    hc, hq = nondecreasing_hull([1, 2, 3, 4, 3], [0.5, 0.6, 0.9, 0.8, 0.7])
    assert hc == [1.0, 3.0] and hq == [0.5, 0.9]
    # Over [1, 4]: the ramp from 0.5 to 0.9 (area 1.4) then 0.9 flat for one unit: 2.3 / 3.
    assert area_under_hull(hc, hq, 1.0, 4.0) == pytest.approx(2.3 / 3)
    assert cost_to_reach(hc, hq, 0.7) == pytest.approx(2.0)
    assert cost_to_reach(hc, hq, 0.5) == 1.0
    assert np.isnan(cost_to_reach(hc, hq, 0.95))
    assert area_under_hull(hc, hq, 3.0, 3.0) == pytest.approx(0.9)


def test_cascade_pays_for_every_model_it_tries() -> None:
    scores = np.array([[1.0, 1.0, 1.0], [0.0, 1.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    costs = np.array([[1.0, 10.0, 100.0]] * 4)
    quality, spent = cascade_outcomes(scores, costs, [0, 1, 2], threshold=0.5)
    assert quality.tolist() == [1.0, 1.0, 1.0, 0.0]
    assert spent.tolist() == [1.0, 11.0, 111.0, 111.0]
    quality, spent = cascade_outcomes(scores, costs, [0, 2], threshold=0.5)
    assert quality.tolist() == [1.0, 1.0, 1.0, 0.0] and spent.tolist() == [1.0, 101.0, 101.0, 101.0]


def test_oracle_and_single_models_on_a_hand_checked_matrix() -> None:
    # Three prompts: m0 ($1) solves the first, m1 ($2) the first two, m2 ($4) all three.
    m = _matrix([[1, 1, 1], [0, 1, 1], [0, 0, 1]], [[1, 2, 4]] * 3)
    report = evaluate_outcomes(m, routers=["random-mix", "oracle", "cascade"], bootstrap=0)
    assert report.singles == [("m0", 1.0, 1 / 3), ("m1", 2.0, 2 / 3), ("m2", 4.0, 1.0)]
    rows = {r.name: r for r in report.results}
    # λ = 0: each prompt goes to its cheapest solver, $(1 + 2 + 4) / 3 for quality 1.
    oracle = rows["oracle"]
    assert (pytest.approx(7 / 3), 1.0) in [(pytest.approx(c), q) for c, q in oracle.points]
    assert oracle.best_quality == 1.0 and oracle.cost_to_best_single == pytest.approx(7 / 3)
    # Random mixes of single models: the hull through (1, 1/3), (2, 2/3), (4, 1); mean over [1, 4].
    mix = rows["random-mix"]
    assert mix.aiq == pytest.approx((0.5 * (1 / 3 + 2 / 3) + 2 * 0.5 * (2 / 3 + 1)) / 3)
    assert mix.cost_to_best_single == pytest.approx(4.0)
    # A perfect verifier: m0 -> m1 -> m2 pays 1, 3, 7 for full quality, m1 -> m2 pays 2, 2, 6: the cheaper.
    assert rows["cascade"].best_quality == 1.0
    assert rows["cascade"].cost_to_best_single == pytest.approx((2 + 2 + 6) / 3)
    assert ((1 + 3 + 7) / 3, 1.0) in [(pytest.approx(c), q) for c, q in rows["cascade"].points]
    assert oracle.aiq >= rows["cascade"].aiq >= mix.aiq


def test_learned_routers_choose_by_willingness_to_pay(tmp_path: Path) -> None:
    m = load_outcomes(write_wide(tmp_path / "rb", n=60))
    report = evaluate_outcomes(m, routers=["random-mix", "knn", "linear", "oracle"], bootstrap=100, folds=3)
    rows = {r.name: r for r in report.results}
    best_model, best_cost, best_quality = report.best_single
    assert best_model == "big/large"
    for name in ("knn", "linear"):
        r = rows[name]
        # λ sweeps from quality-only to cost-only: points run from the cheapest model to about the best quality.
        assert min(c for c, _ in r.points) == pytest.approx(report.singles[0][1])
        assert r.aiq > rows["random-mix"].aiq
        assert r.aiq_ci is not None and r.aiq_ci[0] <= r.aiq <= r.aiq_ci[1]
        # Reading "easy"/"medium"/"hard" lets it match the big model's quality for much less.
        assert r.cost_to_best_single < 0.7 * best_cost
        assert rows["oracle"].aiq >= r.aiq
    doc = report.as_dict(curves=True)
    assert doc["split"] == "in-domain" and doc["routers"][1]["hull"][0][0] == pytest.approx(
        report.singles[0][1]
    )


def test_cross_domain_trains_only_on_other_domains() -> None:
    # Domain "a": only m1 is right; domain "b": only m0 is. The prompts' words differ by domain, so a router
    # trained on one domain has nothing to go on in the other: cross-domain falls to the random mix.
    scores, costs, domains, prompts = [], [], [], []
    rng = np.random.default_rng(0)
    for i in range(60):
        d = "a" if i < 30 else "b"
        scores.append([0.0, 1.0] if d == "a" else [1.0, 0.0])
        costs.append([1.0, 2.0])
        domains.append(d)
        prompts.append(f"{'alpha' if d == 'a' else 'beta'} case {rng.integers(1000)}")
    m = _matrix(scores, costs, domains)
    m.prompts = prompts
    inside = evaluate_outcomes(m, routers=["knn"], split="in-domain", bootstrap=0, folds=5)
    across = evaluate_outcomes(m, routers=["knn"], split="cross-domain", bootstrap=0)
    assert across.folds == 2 and inside.folds == 5
    assert inside.results[0].best_quality == pytest.approx(1.0)
    assert across.results[0].best_quality < 0.6
    one = evaluate_outcomes(
        _matrix([[1, 0], [0, 1]], [[1, 2]] * 2), routers=["knn", "oracle"], split="cross-domain"
    )
    assert "knn" in one.skipped and [r.name for r in one.results] == ["oracle"]


def test_errors_are_named() -> None:
    m = _matrix([[1, 0], [0, 1]], [[1, 2]] * 2)
    with pytest.raises(EvalError, match="unknown router"):
        evaluate_outcomes(m, routers=["telepathy"])
    with pytest.raises(EvalError, match="unknown split"):
        evaluate_outcomes(m, split="sideways")  # type: ignore[arg-type]


def test_run_route_eval_on_a_routerbench_folder(tmp_path: Path) -> None:
    folder = write_wide(tmp_path / "rb", n=60)
    out = tmp_path / "report"
    result = run_route_eval(
        folder, cost_routers=["random-mix", "linear", "cascade"], bootstrap=20, folds=3, out=out
    )
    assert result.apgr == [] and any("no APGR/CPT" in n for n in result.notes)
    assert [(r.split, [x.name for x in r.results]) for r in result.cost] == [
        ("in-domain", ["random-mix", "linear", "cascade"]),
        ("cross-domain", ["random-mix", "linear", "cascade"]),
    ]
    md = (out / "route_eval.md").read_text(encoding="utf-8")
    assert "| big/large (best) | single model |" in md and "AIQ" in md
    png = (out / "rb_in-domain_cost.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    # Two models: APGR/CPT come back beside the dollar table (the cheaper model is the weak one).
    two = tmp_path / "two.csv"
    lines = (folder / "arith.csv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    keep = [i for i, h in enumerate(header) if not h.startswith("mid/")]
    two.write_text(
        "\n".join(",".join(line.split(",")[i] for i in keep) for line in lines) + "\n", encoding="utf-8"
    )
    result = run_route_eval(two, routers=["random", "oracle"], cost_routers=["oracle"], bootstrap=0, folds=3)
    (apgr,) = result.apgr
    assert apgr.data["weak_quality"] < apgr.data["strong_quality"]
    assert (apgr.data["weak_model"], apgr.data["strong_model"]) == ("cheap/small", "big/large")
    assert {r.name for r in apgr.results} == {"random", "oracle"}

"""``run_route_eval``: the one entry point behind ``promptkit route eval`` and ``bench/route_eval.py``.

``data`` is either RouteLLM's folder (``gsm8k/``, ``mmlu/``, ``mt_bench/``: two models, the APGR/CPT table
as the paper reports it, plus the dollar table with estimated prices) or outcome data in RouterBench's format
(a file or a folder of JSONL/CSV/Parquet files: the dollar table for N models, and APGR/CPT when it holds
exactly two).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptkit.errors import BackendUnavailable, EvalError
from promptkit.evals.routing._cost_eval import DEFAULT_COST_ROUTERS, SPLITS, CostReport, evaluate_outcomes
from promptkit.evals.routing._cost_report import CROSS_DOMAIN_NOTE, markdown_cost_report, plot_cost_report
from promptkit.evals.routing._embed import embed_texts
from promptkit.evals.routing._evaluate import (
    DEFAULT_ROUTERS,
    IN_DOMAIN_NOTE,
    ROUTERS,
    BenchmarkReport,
    evaluate_benchmark,
)
from promptkit.evals.routing._outcomes import OutcomeMatrix, load_outcomes, outcomes_from_routellm
from promptkit.evals.routing._report import markdown_report, plot_report
from promptkit.evals.routing._routellm import BENCHMARKS, RouteLLMData, default_data_dir, load_routellm

__all__ = ["RouteEvalResult", "is_routellm_folder", "run_route_eval", "two_model_view"]


@dataclass
class RouteEvalResult:
    """The two-model APGR reports, the dollar quality–cost reports, and the files written."""

    apgr: list[BenchmarkReport] = field(default_factory=list)
    cost: list[CostReport] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def as_dict(self, *, curves: bool = False) -> dict[str, Any]:
        return {
            "benchmarks": [r.as_dict(curves=curves) for r in self.apgr],
            "cost": [r.as_dict(curves=curves) for r in self.cost],
            "notes": self.notes,
            "files": self.files,
        }

    def markdown(self) -> str:
        parts = []
        if self.apgr:
            parts.append(markdown_report(self.apgr))
        if self.cost:
            parts.append(markdown_cost_report(self.cost))
        if self.notes:
            parts.append("\n".join(f"- {n}" for n in self.notes) + "\n")
        return "\n".join(parts)


def is_routellm_folder(path: Path) -> bool:
    """Whether ``path`` is laid out as RouteLLM's evals data (a benchmark sub-folder with its files)."""
    return path.is_dir() and (
        (path / "gsm8k" / "gsm8k_responses.csv").is_file()
        or (path / "mmlu" / "responses").is_dir()
        or (path / "mt_bench" / "judgements.jsonl").is_file()
    )


def two_model_view(matrix: OutcomeMatrix) -> RouteLLMData:
    """A two-model matrix as RouteLLM-style data: the cheaper model is the weak one (for APGR/CPT)."""
    import numpy as np

    if len(matrix.models) != 2:
        raise EvalError(f"APGR/CPT need exactly two models, got {len(matrix.models)}", location=matrix.source)
    weak, strong = (0, 1) if matrix.costs[:, 0].mean() <= matrix.costs[:, 1].mean() else (1, 0)
    answers = [row[weak] for row in matrix.answers] if matrix.answers is not None else None
    if answers is not None and any(a is None for a in answers):
        answers = None
    return RouteLLMData(
        benchmark=Path(matrix.source).stem,  # type: ignore[arg-type]
        prompts=list(matrix.prompts),
        weak=np.asarray(matrix.scores[:, weak]),
        strong=np.asarray(matrix.scores[:, strong]),
        weak_answers=answers,  # type: ignore[arg-type]
        groups=list(matrix.domains),
        graded=not matrix.binary,
        total=len(matrix),
        excluded=0,
        source=Path(matrix.source),
        ids=list(matrix.ids),
        weak_model=matrix.models[weak],
        strong_model=matrix.models[strong],
    )


def run_route_eval(
    data: str | Path | None = None,
    *,
    benchmarks: Sequence[str] | None = None,
    routers: Sequence[str] | None = None,
    cost_routers: Sequence[str] | None = None,
    splits: Sequence[str] = SPLITS,
    columns: Mapping[str, str] | None = None,
    dollars: bool = True,
    folds: int = 5,
    bootstrap: int = 1000,
    seed: int = 0,
    limit: int | None = None,
    embedder: Callable[[], Any] | None = None,
    out: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> RouteEvalResult:
    """Evaluate routers on recorded outcomes; write ``route_eval.md``, ``route_eval.json`` and plots to ``out``.

    ``routers``: the two-model (APGR) routers, default all; ``cost_routers``: the N-model dollar routers,
    default all; ``embedder``: called once to load the prompt embedder when a chosen router needs it (a router
    named explicitly fails without it; one from the defaults is listed as skipped).
    """
    say = progress or (lambda msg: None)
    names = list(routers) if routers else list(DEFAULT_ROUTERS)
    unknown = [n for n in names if n not in ROUTERS]
    if unknown:
        raise EvalError(
            f"unknown router(s) {unknown}; expected some of {list(ROUTERS)}", location="--routers"
        )
    bad_splits = [s for s in splits if s not in SPLITS]
    if bad_splits:
        raise EvalError(f"unknown split(s) {bad_splits}; expected some of {list(SPLITS)}", location="--split")
    if bootstrap < 0:
        raise EvalError("--bootstrap must be >= 0", location="--bootstrap")
    root = Path(data) if data is not None else default_data_dir()
    if root.name in BENCHMARKS and not benchmarks and is_routellm_folder(root.parent):
        root, benchmarks = root.parent, [root.name]  # one RouteLLM benchmark's folder
    result = RouteEvalResult()

    loaded: Any = None
    embed_error: str | None = None
    if any(ROUTERS[n].needs_embeddings for n in names):
        if embedder is None:
            embed_error = "no prompt embedder was given"
        else:
            try:
                loaded = embedder()
            except BackendUnavailable as exc:
                if routers:
                    raise  # asked for by name: fail, do not quietly drop it
                embed_error = str(exc)
                say(f"prompt-embedding routers skipped: {exc}")

    def apgr(two: RouteLLMData) -> BenchmarkReport:
        embeddings = None
        if loaded is not None:
            began = time.perf_counter()
            embeddings = embed_texts(two.prompts, loaded)
            say(f"{two.benchmark}: {len(two)} prompts embedded in {time.perf_counter() - began:.1f} s")
        report = evaluate_benchmark(
            two,
            routers=names,
            embeddings=embeddings,
            folds=min(folds, len(two)),
            bootstrap=bootstrap,
            seed=seed,
            progress=say,
        )
        for n in names:
            if ROUTERS[n].needs_embeddings and n not in report.skipped and loaded is None:
                report.skipped[n] = embed_error or "no prompt embeddings"
        return report

    def cost(matrix: OutcomeMatrix, label: str) -> None:
        for split in splits:
            if split == "cross-domain" and len(set(matrix.domains)) < 2:
                result.notes.append(f"{label}: one domain only, so no cross-domain evaluation")
                continue
            result.cost.append(
                evaluate_outcomes(
                    matrix,
                    routers=list(cost_routers) if cost_routers else list(DEFAULT_COST_ROUTERS),
                    split=split,  # type: ignore[arg-type]
                    folds=folds,
                    bootstrap=bootstrap,
                    seed=seed,
                    name=label,
                    progress=say,
                )
            )

    if is_routellm_folder(root) or benchmarks:
        chosen = list(benchmarks) if benchmarks else [b for b in BENCHMARKS if (root / b).is_dir()]
        for name in chosen:
            two = load_routellm(name, root, limit=limit, seed=seed)
            result.apgr.append(apgr(two))
            if dollars:
                cost(outcomes_from_routellm(two), name)
    else:
        matrix = load_outcomes(root, columns=columns, limit=limit, seed=seed)
        say(f"{root}: {len(matrix)} prompts x {len(matrix.models)} models")
        label = root.name
        if len(matrix.models) == 2:
            result.apgr.append(apgr(two_model_view(matrix)))
        else:
            result.notes.append(f"{label}: {len(matrix.models)} models, so no APGR/CPT (they compare two)")
        cost(matrix, label)
    if out is not None:
        write_outputs(result, out)
    return result


def write_outputs(result: RouteEvalResult, out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "route_eval.md").write_text(result.markdown(), encoding="utf-8")
        result.files["markdown"] = str(out / "route_eval.md")
        payload = result.as_dict(curves=True)
        payload["note"] = IN_DOMAIN_NOTE
        payload["cost_note"] = CROSS_DOMAIN_NOTE
        (out / "route_eval.json").write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    except OSError as exc:
        raise EvalError(f"cannot write the report: {exc.strerror}", location=str(out)) from None
    result.files["json"] = str(out / "route_eval.json")
    for report in result.apgr:
        result.files[f"plot_{report.benchmark}"] = str(plot_report(report, out / f"{report.benchmark}.png"))
    for report in result.cost:
        stem = f"{report.name}_{report.split}_cost"
        result.files[f"plot_{stem}"] = str(plot_cost_report(report, out / f"{stem}.png"))

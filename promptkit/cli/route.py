"""``promptkit route eval`` / ``route train``: measure routers on recorded outcomes, learn a routing policy."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from promptkit.cli._common import console, print_json
from promptkit.config import load_config
from promptkit.errors import EvalError, RoutingError

__all__ = ["command"]


@click.group("route")
def command() -> None:
    """Evaluate and train routers on recorded outcomes."""


def _router_list(values: tuple[str, ...]) -> list[str] | None:
    names = [n.strip() for v in values for n in v.split(",") if n.strip()]
    return names or None


def _embedder(cache: Path | None, threads: int) -> Any:
    from promptkit.evals.routing import load_router_embedder

    return load_router_embedder(cache_path=cache, n_threads=threads)


_THREADS_HELP = (
    "llama.cpp threads for embedding. 1 by default: on a busy machine more threads stall on ggml's barriers."
)


def _columns(values: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        role, sep, name = value.partition("=")
        if not sep or not role.strip() or not name.strip():
            raise click.UsageError(f"--column {value!r}: expected ROLE=NAME, e.g. prompt=question")
        out[role.strip()] = name.strip()
    return out


@command.command("eval")
@click.option(
    "--benchmark",
    type=click.Choice(["gsm8k", "mmlu", "mt_bench", "all"]),
    default="all",
    show_default=True,
    help="Which RouteLLM benchmark to evaluate on (RouteLLM data only).",
)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="RouteLLM's data folder (default: ../shared/data/routellm beside the project), or outcome data in "
    "RouterBench's format: a JSONL/CSV/Parquet file or a folder of them (see docs/routing.md).",
)
@click.option(
    "--column",
    "columns",
    multiple=True,
    help="Map a column role to the file's name, ROLE=NAME (roles: prompt, model, score, cost, answer, domain, "
    "id); repeatable.",
)
@click.option(
    "--routers",
    multiple=True,
    help="Two-model routers for APGR/CPT (comma-separated or repeated; default: all).",
)
@click.option(
    "--cost-routers",
    multiple=True,
    help="N-model routers for the dollar table (random-mix, oracle, knn, linear, mlp, cascade; default: all).",
)
@click.option(
    "--split",
    "splits",
    type=click.Choice(["in-domain", "cross-domain", "both"]),
    default="both",
    show_default=True,
    help="Dollar table: cross-validated on all prompts, trained on other domains, or both.",
)
@click.option("--no-dollars", is_flag=True, help="RouteLLM data: only the APGR/CPT table.")
@click.option("--folds", default=5, show_default=True, help="Cross-validation folds for learned routers.")
@click.option(
    "--bootstrap", default=1000, show_default=True, help="Bootstrap resamples for the CIs (0 = none)."
)
@click.option("--seed", default=0, show_default=True, help="Seed for folds, bootstrap and the random router.")
@click.option(
    "--limit", type=int, default=None, help="Evaluate a seeded sample of N prompts (per benchmark)."
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write route_eval.md, route_eval.json and the plots here.",
)
@click.option(
    "--embed-cache",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Embedding cache file (default: <state dir>/embeddings.sqlite).",
)
@click.option("--threads", default=1, show_default=True, help=_THREADS_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def eval_command(
    benchmark: str,
    data_dir: Path | None,
    columns: tuple[str, ...],
    routers: tuple[str, ...],
    cost_routers: tuple[str, ...],
    splits: str,
    no_dollars: bool,
    folds: int,
    bootstrap: int,
    seed: int,
    limit: int | None,
    out_dir: Path | None,
    embed_cache: Path | None,
    threads: int,
    as_json: bool,
) -> None:
    """Route-eval tables: quality against dollars for N models (AIQ), APGR/CPT for two, with bootstrap CIs."""
    from promptkit.evals.routing import (
        COST_HEADERS,
        CROSS_DOMAIN_NOTE,
        IN_DOMAIN_NOTE,
        cost_rows,
        report_rows,
        run_route_eval,
    )

    say = (lambda msg: None) if as_json else (lambda msg: click.echo(msg, err=True))
    result = run_route_eval(
        data_dir,
        benchmarks=None if benchmark == "all" else [benchmark],
        routers=_router_list(routers),
        cost_routers=_router_list(cost_routers),
        splits=("in-domain", "cross-domain") if splits == "both" else (splits,),
        columns=_columns(columns),
        dollars=not no_dollars,
        folds=folds,
        bootstrap=bootstrap,
        seed=seed,
        limit=limit,
        embedder=lambda: _embedder(embed_cache, threads),
        out=out_dir,
        progress=say,
    )
    if as_json:
        print_json(result.as_dict())
        return
    from rich.table import Table

    out = console()
    for report in result.apgr:
        d = report.data
        table = Table(
            title=f"{report.benchmark}: {d['queries']} queries, weak {d['weak_quality']:.3f}, "
            f"strong {d['strong_quality']:.3f} ({report.folds}-fold CV, {report.bootstrap} bootstrap)"
        )
        for header in ("router", "kind", "APGR [95% CI]", "CPT(20%)", "CPT(50%)", "CPT(80%)"):
            table.add_column(header)
        for row in report_rows(report):
            table.add_row(*row)
        out.print(table)
        for skipped, why in report.skipped.items():
            out.print(f"  {skipped}: not run ({why})")
    if result.apgr:
        out.print(IN_DOMAIN_NOTE)
    for report in result.cost:
        d = report.data
        table = Table(
            title=f"{report.name} ({report.split}): {d['prompts']} prompts, {len(report.singles)} models; "
            f"costs {d['cost_note']}"
        )
        for header in COST_HEADERS:
            table.add_column(header)
        for row in cost_rows(report):
            table.add_row(*row)
        out.print(table)
        for skipped, why in report.skipped.items():
            out.print(f"  {skipped}: not run ({why})")
    if result.cost:
        out.print(CROSS_DOMAIN_NOTE)
    for note in result.notes:
        out.print(note)
    for kind, path in result.files.items():
        out.print(f"{kind}: {path}")


@command.command("train")
@click.option(
    "--ledger",
    "ledger_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Ledger to learn from (default: <state dir>/ledger.sqlite).",
)
@click.option(
    "--routellm",
    default=None,
    help="Learn from recorded outcomes instead: a benchmark name (gsm8k, mmlu, mt_bench), its folder, or a CSV.",
)
@click.option("--run", "run_ref", default=None, help="Only this ledger run (an id, a prefix, or `latest`).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option(
    "--classifier",
    "model",
    type=click.Choice(["logreg", "knn"]),
    default="logreg",
    show_default=True,
    help="The policy's classifier (-m/--model names an LLM on every other command).",
)
@click.option(
    "--features",
    type=click.Choice(["embedding", "lexical"]),
    default="embedding",
    show_default=True,
    help="With --routellm: MiniLM prompt embeddings, or lexical features of the prompt text (hashed TF-IDF + "
    "prompt statistics; deciding needs no embedding model and takes well under a millisecond).",
)
@click.option(
    "--policy",
    "policy_kind",
    type=click.Choice(["tiers", "skip"]),
    default=None,
    help="From a ledger: a tier policy (P(accepted) per tier and its mean cost; the call starts where "
    "quality - cost_weight x cost peaks; the default) or a skip policy (skip the cheap tier below --threshold; "
    "the default with --threshold or --routellm).",
)
@click.option(
    "--cost-weight",
    type=float,
    default=None,
    help=(
        "Tier policy: λ, the quality one dollar is worth, or one compute second when the ledger records no "
        "dollars (local models) (default: 1 / (2 x the dearest tier's mean cost))."
    ),
)
@click.option(
    "--min-calls",
    default=None,
    type=int,
    help="Tier policy: judged calls a tier needs before its features are learned (default: MIN_CALLS_PER_TIER, "
    "20); below it the tier's pass rate is used, with a warning.",
)
@click.option(
    "--threshold", type=float, default=None, help="Skip policy: skip the cheap tier below this P(pass) [0.2]."
)
@click.option("--cheap-tier", default=0, show_default=True, help="The tier whose passing is predicted.")
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--limit", type=int, default=None, help="Train on a seeded sample of N RouteLLM queries.")
@click.option("--embed-cache", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--threads", default=1, show_default=True, help=_THREADS_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def train_command(
    ledger_path: Path | None,
    routellm: str | None,
    run_ref: str | None,
    out_path: Path,
    model: str,
    features: str,
    policy_kind: str | None,
    cost_weight: float | None,
    min_calls: int | None,
    threshold: float | None,
    cheap_tier: int,
    data_dir: Path | None,
    limit: int | None,
    embed_cache: Path | None,
    threads: int,
    as_json: bool,
) -> None:
    """Learn where calls should start: from the ledger's outcomes and prices, or from recorded benchmarks."""
    from promptkit.routing.learned import MIN_CALLS_PER_TIER, train_from_ledger, train_tier_policy

    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise RoutingError(f"--threshold must be within [0, 1], got {threshold}", location="--threshold")
    if ledger_path is not None and routellm is not None:
        raise click.UsageError("give --ledger or --routellm, not both")
    if features != "embedding" and routellm is None:
        raise click.UsageError(
            "--features applies to --routellm; a ledger policy uses the recorded call features"
        )
    kind = policy_kind or ("skip" if threshold is not None or routellm is not None else "tiers")
    if kind == "tiers" and routellm is not None:
        raise click.UsageError("--routellm trains a skip policy; tier policies learn from a ledger's prices")
    if kind == "tiers" and threshold is not None:
        raise click.UsageError("--threshold applies to a skip policy (--policy skip)")
    if kind == "skip" and (cost_weight is not None or min_calls is not None):
        raise click.UsageError("--cost-weight and --min-calls apply to a tier policy (--policy tiers)")
    skip_threshold = 0.2 if threshold is None else threshold
    started = time.perf_counter()
    warnings: list[str] = []
    if routellm is not None:
        policy: Any = _train_routellm(
            routellm, data_dir, limit, model, features, skip_threshold, embed_cache, threads
        )
    else:
        from promptkit.ledger import LEDGER_FILE, Ledger

        path = ledger_path or load_config().state_dir / LEDGER_FILE
        if not path.is_file():
            raise RoutingError("ledger not found: run some calls first, or pass --ledger", location=str(path))
        with Ledger(path) as ledger:
            run_id = ledger.resolve_run(run_ref) if run_ref else None
            entries = ledger.entries(run_id)
        source = str(path) + (f"#{run_id}" if run_id else "")
        if kind == "tiers":
            policy, warnings = train_tier_policy(
                entries,
                model=model,
                cost_weight=cost_weight,
                source=source,
                min_calls=MIN_CALLS_PER_TIER if min_calls is None else min_calls,
            )
        else:
            policy = train_from_ledger(
                entries, cheap_tier=cheap_tier, model=model, threshold=skip_threshold, source=source
            )
    saved = policy.save(out_path)
    info: dict[str, Any] = {
        "policy": str(saved),
        "kind": kind,
        "bytes": saved.stat().st_size,
        "seconds": round(time.perf_counter() - started, 3),
        "features": [b.get("field") for b in policy.features],
        "trained": policy.trained,
        "warnings": warnings,
    }
    if kind == "tiers":
        info["cost_weight"] = policy.cost_weight
        info["tiers"] = [{k: v for k, v in t.to_dict().items() if k != "model"} for t in policy.tiers]
        info["cost_unit"] = policy.cost_unit
    else:
        info["threshold"] = policy.threshold
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    if as_json:
        print_json(info)
        return
    t = policy.trained
    if kind == "tiers":
        from promptkit.routing.learned import tier_summary

        click.echo(
            f"tier policy: {saved} ({info['bytes']} bytes) from {t.get('source')}: {t.get('calls')} judged "
            f"tier outcomes; starts where P(accepted) - {policy.cost_weight:.4g} x "
            f"{'seconds' if policy.cost_unit == 'seconds' else 'dollars'} peaks"
        )
        for line in tier_summary(policy):
            click.echo(f"  {line}")
        return
    click.echo(
        f"policy: {saved} ({info['bytes']} bytes) from {t.get('source')}: {t.get('rows')} calls, "
        f"{t.get('passed')} passed on the cheap tier; skips it below P(pass) = {policy.threshold}"
    )


def _train_routellm(
    ref: str,
    data_dir: Path | None,
    limit: int | None,
    model: str,
    features: str,
    threshold: float,
    embed_cache: Path | None,
    threads: int,
) -> Any:
    from promptkit.evals.routing import (
        BENCHMARKS,
        embed_texts,
        load_routellm,
        load_routellm_csv,
        train_from_routellm,
    )

    path = Path(ref)
    if ref in BENCHMARKS:
        data = load_routellm(ref, data_dir, limit=limit)
    elif path.is_dir():
        data = load_routellm(path.name, path.parent, limit=limit)
    elif path.suffix.lower() == ".csv":
        data = load_routellm_csv(path)
        if limit is not None and limit < len(data):
            import numpy as np

            data = data.subset(np.sort(np.random.default_rng(0).choice(len(data), size=limit, replace=False)))
    else:
        raise EvalError(
            f"--routellm {ref!r}: expected one of {list(BENCHMARKS)}, a benchmark folder, or a CSV file",
            location="--routellm",
        )
    if features == "lexical":
        return train_from_routellm(data, features="lexical", model=model, threshold=threshold)
    embedder = _embedder(embed_cache, threads)
    embeddings = embed_texts(data.prompts, embedder)
    return train_from_routellm(
        data, embeddings, embedder_id=embedder.model_id, model=model, threshold=threshold
    )

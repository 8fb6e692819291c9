"""``promptkit route eval`` / ``route train``: measure routers on recorded outcomes, learn a routing policy."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from promptkit.cli._common import console, print_json
from promptkit.config import load_config
from promptkit.errors import BackendUnavailable, EvalError, RoutingError

__all__ = ["command"]


@click.group("route")
def command() -> None:
    """Evaluate and train routers on recorded outcomes."""


def _router_list(values: tuple[str, ...]) -> list[str] | None:
    names = [n.strip() for v in values for n in v.split(",") if n.strip()]
    return names or None


def _embedder(cache: Path | None, threads: int) -> Any:
    from promptkit.routing.learned import load_router_embedder

    return load_router_embedder(cache_path=cache, n_threads=threads)


_THREADS_HELP = (
    "llama.cpp threads for embedding. 1 by default: on a busy machine more threads stall on ggml's barriers."
)


@command.command("eval")
@click.option(
    "--benchmark",
    type=click.Choice(["gsm8k", "mmlu", "mt_bench", "all"]),
    default="all",
    show_default=True,
    help="Which RouteLLM benchmark to evaluate on.",
)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="RouteLLM data folder (default: ../shared/data/routellm beside the project).",
)
@click.option(
    "--routers", multiple=True, help="Routers to compare (comma-separated or repeated; default: all)."
)
@click.option("--folds", default=5, show_default=True, help="Cross-validation folds for learned routers.")
@click.option(
    "--bootstrap", default=1000, show_default=True, help="Bootstrap resamples for the CIs (0 = none)."
)
@click.option("--seed", default=0, show_default=True, help="Seed for folds, bootstrap and the random router.")
@click.option("--limit", type=int, default=None, help="Evaluate a seeded sample of N queries per benchmark.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write route_eval.md, route_eval.json and a <benchmark>.png plot here.",
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
    routers: tuple[str, ...],
    folds: int,
    bootstrap: int,
    seed: int,
    limit: int | None,
    out_dir: Path | None,
    embed_cache: Path | None,
    threads: int,
    as_json: bool,
) -> None:
    """APGR and CPT(20/50/80%) with bootstrap CIs for each router, beside RouteLLM's published figures."""
    from promptkit.routing.learned import (
        BENCHMARKS,
        DEFAULT_ROUTERS,
        ROUTERS,
        embed_texts,
        evaluate_benchmark,
        load_routellm,
        markdown_report,
        plot_report,
        report_rows,
        write_json,
    )

    chosen = _router_list(routers)
    names = chosen or list(DEFAULT_ROUTERS)
    unknown = [n for n in names if n not in ROUTERS]
    if unknown:
        raise EvalError(
            f"unknown router(s) {unknown}; expected some of {list(ROUTERS)}", location="--routers"
        )
    if bootstrap < 0:
        raise EvalError("--bootstrap must be >= 0", location="--bootstrap")
    benchmarks = list(BENCHMARKS) if benchmark == "all" else [benchmark]
    say = (lambda msg: None) if as_json else (lambda msg: click.echo(msg, err=True))
    embedder: Any = None
    embed_error: str | None = None
    if any(ROUTERS[n].needs_embeddings for n in names):
        try:
            embedder = _embedder(embed_cache, threads)
        except BackendUnavailable as exc:
            if chosen is not None:
                raise  # asked for by name: fail, do not quietly drop it
            embed_error = str(exc)
            say(f"prompt-embedding routers skipped: {exc}")
    reports = []
    for name in benchmarks:
        data = load_routellm(name, data_dir, limit=limit, seed=seed)
        embeddings = None
        if embedder is not None:
            started = time.perf_counter()
            embeddings = embed_texts(data.prompts, embedder)
            say(f"{name}: {len(data)} prompts embedded in {time.perf_counter() - started:.1f} s")
        report = evaluate_benchmark(
            data,
            routers=names,
            embeddings=embeddings,
            folds=min(folds, len(data)),
            bootstrap=bootstrap,
            seed=seed,
            progress=say,
        )
        if embed_error:
            for n in names:
                if ROUTERS[n].needs_embeddings and n not in report.skipped:
                    report.skipped[n] = embed_error
        reports.append(report)
    written: dict[str, str] = {}
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "route_eval.md").write_text(markdown_report(reports), encoding="utf-8")
        written["markdown"] = str(out_dir / "route_eval.md")
        written["json"] = str(write_json(reports, out_dir / "route_eval.json"))
        for report in reports:
            written[f"plot_{report.benchmark}"] = str(
                plot_report(report, out_dir / f"{report.benchmark}.png")
            )
    if as_json:
        print_json({"benchmarks": [r.as_dict() for r in reports], "files": written})
        return
    from rich.table import Table

    out = console()
    for report in reports:
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
    from promptkit.routing.learned import IN_DOMAIN_NOTE

    out.print(IN_DOMAIN_NOTE)
    for kind, path in written.items():
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
@click.option("--model", type=click.Choice(["logreg", "knn"]), default="logreg", show_default=True)
@click.option(
    "--features",
    type=click.Choice(["embedding", "lexical"]),
    default="embedding",
    show_default=True,
    help="With --routellm: MiniLM prompt embeddings, or lexical features of the prompt text (hashed TF-IDF + "
    "prompt statistics; deciding needs no embedding model and takes well under a millisecond).",
)
@click.option("--threshold", default=0.2, show_default=True, help="Skip the cheap tier below this P(pass).")
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
    threshold: float,
    cheap_tier: int,
    data_dir: Path | None,
    limit: int | None,
    embed_cache: Path | None,
    threads: int,
    as_json: bool,
) -> None:
    """Fit a policy predicting whether the cheap tier will pass, and save it as a versioned JSON file."""
    from promptkit.routing.learned import train_from_ledger

    if not 0.0 <= threshold <= 1.0:
        raise RoutingError(f"--threshold must be within [0, 1], got {threshold}", location="--threshold")
    if ledger_path is not None and routellm is not None:
        raise click.UsageError("give --ledger or --routellm, not both")
    if features != "embedding" and routellm is None:
        raise click.UsageError(
            "--features applies to --routellm; a ledger policy uses the recorded call features"
        )
    started = time.perf_counter()
    if routellm is not None:
        policy = _train_routellm(routellm, data_dir, limit, model, features, threshold, embed_cache, threads)
    else:
        from promptkit.ledger import LEDGER_FILE, Ledger

        path = ledger_path or load_config().state_dir / LEDGER_FILE
        if not path.is_file():
            raise RoutingError("ledger not found: run some calls first, or pass --ledger", location=str(path))
        with Ledger(path) as ledger:
            run_id = ledger.resolve_run(run_ref) if run_ref else None
            entries = ledger.entries(run_id)
        policy = train_from_ledger(
            entries,
            cheap_tier=cheap_tier,
            model=model,
            threshold=threshold,
            source=str(path) + (f"#{run_id}" if run_id else ""),
        )
    saved = policy.save(out_path)
    info = {
        "policy": str(saved),
        "bytes": saved.stat().st_size,
        "seconds": round(time.perf_counter() - started, 3),
        "threshold": policy.threshold,
        "features": [b.get("field") for b in policy.features],
        "trained": policy.trained,
    }
    if as_json:
        print_json(info)
        return
    t = policy.trained
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
    from promptkit.routing.learned import (
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

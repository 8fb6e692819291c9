"""The eval runner: every (item, variant, model, repeat) through ``generate``, scored, committed, resumable.

- Models run one after another: every call on one model finishes before the next model is touched, so a
  local GGUF is loaded once per run, never per prompt. Within a model, ``concurrency`` workers pull work.
- Deterministic under the suite's seed: temperature 0 unless a variant says otherwise, seeded example
  selection, and a per-call seed derived from (seed, item, repeat), identical across variants and models
  so that their results pair up.
- Results are committed to the SQLite run log in small batches as they are scored (within
  ``COMMIT_INTERVAL_S``, see ``_runlog``); ``resume=RUN_ID`` skips the ones already there. The returned
  EvalLog is built from the results the run holds, not parsed back from the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import promptkit.tracing as tracing
from promptkit.backends import Backend, run_sync
from promptkit.errors import ConfigError, EvalError, InputValidationError, PromptkitError
from promptkit.evals._dataset import Item
from promptkit.evals._eval_log import Aggregate, AttemptInfo, EvalLog, ItemResult, Score, VariantInfo
from promptkit.evals._passk import pass_at_k_array
from promptkit.evals._runlog import BatchCommitter, RunLog, find_run_log, record_location, run_log_path
from promptkit.evals._scorers import Generation, Scorer, ScorerEnv
from promptkit.evals._suite import Suite, VariantSpec, load_suite
from promptkit.evals._tracing import run_attributes, trace_item
from promptkit.ledger import scrub_secrets
from promptkit.prompts import ExampleSelection, Template
from promptkit.routing import Deployment, Router, Tier

if TYPE_CHECKING:
    from promptkit.evals._ab import ThresholdCheck
    from promptkit.evals._ray import RayOptions, RaySession

__all__ = [
    "run_suite",
    "arun_suite",
    "assert_suite",
    "failed_gates",
    "describe_gate",
    "derive_seed",
    "new_eval_run_id",
]


def derive_seed(seed: int, item_id: str, repeat: int) -> int:
    """A per-call seed from (suite seed, item, repeat): stable across processes, variants and models."""
    digest = hashlib.sha256(f"{seed}\x00{item_id}\x00{repeat}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def new_eval_run_id(suite: str) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in suite)[:40]
    return f"{safe}-{stamp}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class _Variant:
    spec: VariantSpec
    template: Template
    examples: ExampleSelection | str | None
    temperature: float
    max_tokens: int | None


@dataclass(frozen=True)
class _Unit:
    item: Item
    variant: _Variant
    repeat: int


def _examples(spec: VariantSpec, seed: int) -> ExampleSelection | str | None:
    selection = spec.examples
    if isinstance(selection, str):
        selection = ExampleSelection.parse(selection)
    # random_k without its own seed draws with the suite's, so a run is reproducible from the suite alone.
    if (
        isinstance(selection, ExampleSelection)
        and selection.strategy == "random_k"
        and "seed" not in (selection.model_fields_set)
    ):
        selection = selection.model_copy(update={"seed": seed})
    return selection


def _attempts(attempts: Sequence[Any], output: str | None) -> list[AttemptInfo]:
    """What the viewer shows of each attempt; the last one's answer, when it is the output, is not stored twice."""
    out = []
    last = len(attempts) - 1
    for i, a in enumerate(attempts):
        usage = getattr(a, "usage", None)
        raw = getattr(a, "raw_output", None)
        error = getattr(a, "error", None)
        out.append(
            AttemptInfo.model_construct(
                attempt=a.attempt,
                model=a.model,
                tier=a.tier_name,
                reason=a.reason,
                outcome=a.outcome,
                raw_output=None if i == last and raw == output else raw,
                error=scrub_secrets(error) if error else None,
                input_tokens=getattr(usage, "input_tokens", 0) or 0,
                output_tokens=getattr(usage, "output_tokens", 0) or 0,
                cost_usd=a.cost_usd or 0.0,
                latency_s=a.latency_s or 0.0,
            )
        )
    return out


def _jsonable(output: Any) -> Any:
    """A typed answer as JSON data for scorers and the log: models, lists of models, enums, dates."""
    if output is None or isinstance(output, (str, int, float, bool)):
        return output
    from pydantic_core import to_jsonable_python

    return to_jsonable_python(output)


class _Runner:
    def __init__(
        self,
        suite: Suite,
        *,
        backends: Mapping[str, Backend],
        cache: Any,
        ledger: Any,
        run_log: RunLog | None,
        run_id: str,
        progress: bool,
        ray: RaySession | None = None,
    ) -> None:
        from promptkit.generation import current_config, resolve_cache, resolve_ledger

        self.suite = suite
        self.spec = suite.spec
        self.backends = backends
        self.config = current_config()
        self.cache = resolve_cache(cache if cache is not None else self.spec.cache)
        self.ledger = resolve_ledger(ledger)
        self.run_log = run_log
        self.run_id = run_id
        self.ledger_run = f"eval-{run_id}"
        self.show_progress = progress
        self.ray = ray  # None: every unit runs here; else the Ray session that runs them on a cluster
        self.scorers: list[Scorer] = suite.build_scorers(
            ScorerEnv(
                backends=backends,
                cache=self.cache if self.cache is not None else False,
                ledger=self.ledger if self.ledger is not None else False,
                run_id=self.ledger_run,
                base_dir=suite.base_dir,
            )
        )
        self.variants = [
            _Variant(
                spec=v,
                template=suite.template(v),
                examples=_examples(v, self.spec.seed),
                temperature=v.temperature if v.temperature is not None else self.spec.temperature,
                max_tokens=v.max_tokens if v.max_tokens is not None else self.spec.max_tokens,
            )
            for v in self.spec.variants
        ]
        self.cost = 0.0

    # -- set-up ---------------------------------------------------------------------------------------------

    def check_inputs(self, items: Sequence[Item]) -> None:
        """Every item renders with every variant's inputs, or the run does not start."""
        for variant in self.variants:
            for item in items:
                try:
                    variant.template.validate_inputs({**item.inputs, **variant.spec.inputs})
                except InputValidationError as exc:
                    raise EvalError(
                        f"item {item.id!r} does not fit variant {variant.spec.name!r} "
                        f"(template {variant.template.name!r}): input {exc.field!r}: {exc.problem}",
                        location=item.location,
                    ) from None

    def router_for(self, model: str) -> Router:
        spec = self.spec
        if spec.router is not None:
            from promptkit.config import load_config

            path = Path(spec.router)
            config = load_config(path=path if path.is_absolute() else self.suite.base_dir / path)
            return Router.from_config(config, max_attempts_per_tier=spec.max_attempts)
        target: str | Backend = self.backends.get(model, model)
        concurrency: int | None = spec.concurrency
        if isinstance(target, str):
            alias = self.config.raw.get("models", {}).get(target)
            # A configured in-flight limit (a provider's rate limit) wins over the suite's concurrency.
            if isinstance(alias, dict) and "concurrency" in alias:
                concurrency = None
        deployment = Deployment(target, name=model, concurrency=concurrency, config=self.config)
        if deployment.is_local:
            deployment = Deployment(target, name=model, config=self.config)  # one call at a time on a GGUF
        return Router(
            [Tier(model, [deployment])], max_attempts_per_tier=spec.max_attempts, config=self.config
        )

    # -- one unit -------------------------------------------------------------------------------------------

    async def run_unit(self, unit: _Unit, model: str, router: Router) -> ItemResult:
        from promptkit.generation import agenerate

        variant, item = unit.variant, unit.item
        inputs = {**item.inputs, **variant.spec.inputs}
        started = time.perf_counter()
        try:
            result = await agenerate(
                variant.template,
                inputs,
                router=router,
                cache=self.cache if self.cache is not None else False,
                ledger=self.ledger if self.ledger is not None else False,
                run_id=self.ledger_run,
                max_attempts=self.spec.max_attempts,
                temperature=variant.temperature,
                max_tokens=variant.max_tokens,
                examples=variant.examples,
                budget_tokens=variant.spec.budget_tokens,
                stop=variant.spec.stop,
                seed=derive_seed(self.spec.seed, item.id, unit.repeat),
            )
        except (EvalError, ConfigError):
            raise  # a broken suite or setup (a missing API key) fails every item alike: stop at once
        except PromptkitError as exc:
            attempts = list(getattr(exc, "attempts", None) or [])
            raw = next((a.raw_output for a in reversed(attempts) if getattr(a, "raw_output", None)), None)
            usage = getattr(exc, "usage", None)
            return ItemResult(
                **self._identity(item, variant, model, unit),
                output=raw,
                error=scrub_secrets(f"{type(exc).__name__}: {exc}"),
                passed=False,
                latency_s=time.perf_counter() - started,
                cost_usd=sum(getattr(a, "cost_usd", 0.0) or 0.0 for a in attempts),
                input_tokens=getattr(usage, "input_tokens", 0) or 0,
                output_tokens=getattr(usage, "output_tokens", 0) or 0,
                attempts=_attempts(attempts, raw),
            )
        latency = sum(a.latency_s for a in result.attempts) or (time.perf_counter() - started)
        generation = Generation(
            text=result.text,
            model=model,
            variant=variant.spec.name,
            repeat=unit.repeat,
            latency_s=latency,
            cost_usd=result.cost_usd,
            input_tokens=result.usage.input_tokens,
            output_tokens=result.usage.output_tokens,
            cached=result.cached,
            output_model=variant.template.output_model,
        )
        parsed = _jsonable(result.output)
        if len(self.scorers) == 1:  # gather() would wrap the one call in a task: ~15 µs per item for nothing
            scores = [await self.score(self.scorers[0], item, generation, parsed)]
        else:
            scores = list(
                await asyncio.gather(*(self.score(s, item, generation, parsed) for s in self.scorers))
            )
        verdicts = [s.passed for s in scores if s.passed is not None]
        return ItemResult(
            **self._identity(item, variant, model, unit),
            output=result.text,
            parsed=parsed,
            scores=scores,
            passed=all(verdicts) if verdicts else None,
            latency_s=latency,
            cost_usd=result.cost_usd,
            input_tokens=result.usage.input_tokens,
            output_tokens=result.usage.output_tokens,
            cached=result.cached,
            attempts=_attempts(result.attempts, result.text),
        )

    @staticmethod
    def _identity(item: Item, variant: _Variant, model: str, unit: _Unit) -> dict[str, Any]:
        """The fields that say which result this is, shared by answers and failures."""
        return {
            "item_id": item.id,
            "variant": variant.spec.name,
            "model": model,
            "repeat": unit.repeat,
            "inputs": item.inputs,
            "expected": item.expected,
        }

    async def score(self, scorer: Scorer, item: Item, output: Generation, parsed: Any) -> Score:
        try:
            return await scorer(item, output, parsed)
        except EvalError:
            raise  # a suite or dataset bug: stop rather than score every item wrong
        except PromptkitError as exc:
            # The scorer itself failed (a judge with no valid answer): a failed score, never a silent pass.
            return Score(
                scorer=scorer.name,
                value=0.0,
                passed=False,
                rationale=scrub_secrets(f"scorer failed: {type(exc).__name__}: {exc}")[-600:],
                meta={"scorer_error": True},
            )

    # -- the run --------------------------------------------------------------------------------------------

    def unit(self, item: Item, variant_index: int, repeat: int) -> _Unit:
        return _Unit(item, self.variants[variant_index], repeat)

    def units(
        self, items: Sequence[Item], model: str, done: set[tuple[str, str, str, int]]
    ) -> Iterator[_Unit]:
        for item in items:
            for repeat in range(self.spec.repeats):
                for variant in self.variants:
                    if (variant.spec.name, model, item.id, repeat) not in done:
                        yield _Unit(item, variant, repeat)

    async def run(
        self, items: Sequence[Item], done: set[tuple[str, str, str, int]], committer: BatchCommitter
    ) -> None:
        models = self.suite.model_names()
        total = len(items) * self.spec.repeats * len(self.variants) * len(models)
        with (
            tracing.span(
                f"promptkit.eval {self.suite.name}", run_attributes(self.suite, self.run_id, total, len(done))
            ),
            _Progress(self.show_progress, total, len(done), self.suite.name) as bar,
        ):
            try:
                for model in models:
                    if self.ray is not None:
                        await self.ray.run_model(self, items, model, done, committer, bar)
                    else:
                        await self.run_model(items, model, done, committer, bar)
            except BaseException:
                # Keep what finished (Ctrl-C, a failed scorer...); the error in flight is the one to report.
                with contextlib.suppress(Exception):
                    committer.flush()
                raise
            committer.flush()

    async def run_model(
        self,
        items: Sequence[Item],
        model: str,
        done: set[tuple[str, str, str, int]],
        committer: BatchCommitter,
        bar: _Progress,
    ) -> None:
        router = self.router_for(model)
        work = self.units(items, model, done)
        bar.describe(f"{self.suite.name} · {model}")

        async def worker() -> None:
            for unit in work:  # a shared iterator: each unit goes to exactly one worker
                with tracing.span("promptkit.eval.item") as span:
                    result = await self.run_unit(unit, model, router)
                    if span:
                        trace_item(span, result)
                committer.put(result)
                self.cost += result.cost_usd
                bar.advance(self.cost)

        tasks: list[asyncio.Future[None]] = []
        try:
            for _ in range(self.spec.concurrency):
                tasks.append(asyncio.ensure_future(worker()))
                # One loop turn between starts: the first calls (and their connections) get going while later
                # workers are still rendering, instead of every worker's set-up running before any call leaves.
                await asyncio.sleep(0)
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    def aggregates(self, results: Sequence[ItemResult]) -> list[Aggregate]:
        """pass@k for every scorer that asks for it, per (variant, model), from the run's results."""
        wanted = {s.name: list(getattr(s, "ks", [])) for s in self.scorers if getattr(s, "ks", None)}
        if not wanted:
            return []
        counts: dict[tuple[str, str, str], dict[str, list[int]]] = defaultdict(
            lambda: defaultdict(lambda: [0, 0])
        )
        for result in results:
            passed = {s.scorer: bool(s.passed) for s in result.scores}
            for name in wanted:
                cell = counts[(name, result.variant, result.model)][result.item_id]
                cell[0] += 1
                cell[1] += 1 if passed.get(name, False) and result.error is None else 0
        out: list[Aggregate] = []
        for (name, variant, model), per_item in sorted(counts.items()):
            ns = [n for n, _ in per_item.values()]
            cs = [c for _, c in per_item.values()]
            for k in wanted[name]:
                if min(ns) < k:
                    continue  # pass@k is undefined with fewer than k samples of a problem
                out.append(
                    Aggregate(
                        scorer=name,
                        metric=f"pass@{k}",
                        variant=variant,
                        model=model,
                        value=pass_at_k_array(ns, cs, k),
                        n_items=len(ns),
                        n_samples=min(ns),
                    )
                )
        return out


class _Progress:
    """A rich progress bar with ETA and running cost, or nothing."""

    def __init__(self, enabled: bool, total: int, completed: int, name: str) -> None:
        self.enabled = enabled
        self.total = total
        self.completed = completed
        self.name = name
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                TextColumn("${task.fields[cost]:.4f}"),
                console=Console(stderr=True),
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.name, total=self.total, completed=self.completed, cost=0.0)
        return self

    def describe(self, text: str) -> None:
        if self._bar is not None:
            self._bar.update(self._task, description=text)

    def note(self, text: str) -> None:
        """A line above the bar (a retried item, the cluster in use); nothing without a bar."""
        if self._bar is not None:
            self._bar.console.print(text)

    def advance(self, cost: float) -> None:
        if self._bar is not None:
            self._bar.update(self._task, advance=1, cost=cost)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


def _header(suite: Suite, runner: _Runner, run_id: str, suite_hash: str) -> EvalLog:
    return EvalLog(
        suite=suite.name,
        suite_path=str(suite.path) if suite.path else None,
        suite_hash=suite_hash,
        run_id=run_id,
        started_at=time.time(),
        status="running",
        seed=suite.spec.seed,
        repeats=suite.spec.repeats,
        variants=[
            VariantInfo(
                name=v.spec.name,
                template=v.template.name,
                template_hash=v.template.hash,
                options=v.spec.options(),
            )
            for v in runner.variants
        ],
        models=suite.model_names(),
        scorers=[s.name for s in runner.scorers],
        results=[],
        thresholds=dict(suite.spec.thresholds),
    )


def _recorded_overrides(suite: Suite, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """The overrides as the run log keeps them: only those given, the data file made absolute."""
    out: dict[str, Any] = {}
    for key, value in (overrides or {}).items():
        if key not in ("models", "limit", "data", "variants"):
            raise EvalError(
                f"unknown suite override {key!r} (models, limit, data, variants)", location=suite.name
            )
        if value is None or (key in ("models", "variants") and not value):
            continue
        if key in ("models", "variants"):
            out[key] = list(value)
        else:
            out[key] = str(Path(value).resolve()) if key == "data" else value
    return out


async def arun_suite(
    suite: Suite | str | Path,
    *,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    progress: bool = True,
    backends: Mapping[str, Backend] | None = None,
    run_id: str | None = None,
    cache: Any = None,
    ledger: Any = True,
    state_dir: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    ray: RayOptions | str | bool | None = None,
) -> EvalLog:
    """Run ``suite`` (a Suite or a YAML path) and return its :class:`EvalLog`; write it to ``out`` if given.

    ``resume``: a run id (or run-log path) whose finished results are kept and not redone. A resumed run
    reuses the ``overrides`` and ``out`` it was started with unless new ones are given.
    ``backends`` maps a model name of the suite to a ready Backend (scripted, function, a shared server).
    ``cache``: None follows the suite's ``cache:``; True/False or an ExactCache override it.
    ``overrides``: ``models``, ``limit``, ``data``, ``variants`` for :meth:`Suite.with_overrides`, recorded in the
    run log.
    ``ray``: run the items on a Ray cluster (True or "" for a local one, an address, or a ``RayOptions``);
    the run log, the results and the report are the same as a local run's.
    The run log is ``<state_dir>/evals/<run_id>.sqlite``, or next to ``out`` (noted in the state dir).
    """
    if not isinstance(suite, Suite):
        suite = load_suite(suite)
    from promptkit.generation import current_config

    out_path = Path(out) if out is not None else None
    state = Path(state_dir) if state_dir is not None else current_config().state_dir
    given = _recorded_overrides(suite, overrides)
    if resume is not None:
        log_path = find_run_log(resume, state_dir=state, out=out_path)
        run_log = RunLog(log_path)
        header = run_log.header()
        if header is None:
            run_log.close()
            raise EvalError("the run log has no header: it is not an eval run", location=str(log_path))
        recorded = run_log.options()
        applied = given if overrides is not None else dict(recorded.get("overrides") or {})
        if applied:
            suite = suite.with_overrides(**applied)
        if out_path is None and recorded.get("out"):
            out_path = Path(recorded["out"])  # the resumed run rewrites the log it was started to write
        suite_hash = suite.hash
        if header.suite_hash != suite_hash:
            run_log.close()
            started = ", ".join(f"{k}={v}" for k, v in sorted((recorded.get("overrides") or {}).items()))
            raise EvalError(
                f"the suite or its dataset changed since run {header.run_id!r}; "
                "resuming would mix results of two different evals"
                + (f" (it was started with {started})" if started else ""),
                location=str(suite.path or suite.name),
            )
        the_run = header.run_id
    else:
        if given:
            suite = suite.with_overrides(**given)
        suite_hash = suite.hash
        the_run = run_id or new_eval_run_id(suite.name)
        log_path = run_log_path(the_run, state_dir=state, out=out_path)
        if log_path.exists():
            raise EvalError(f"run {the_run!r} already exists; resume it instead", location=str(log_path))
        run_log = RunLog(log_path)
        run_log.write_options(
            {"overrides": given, "out": str(out_path.resolve()) if out_path is not None else None}
        )
        if out_path is not None:
            record_location(the_run, log_path, state_dir=state)
        header = None
    session: RaySession | None = None
    try:
        if ray is not None and ray is not False:
            from promptkit.evals._ray import RaySession

            session = RaySession.start(
                ray, backends=backends or {}, cache=cache, ledger=ledger, progress=progress
            )
        runner = _Runner(
            suite,
            backends=backends or {},
            cache=cache,
            ledger=ledger,
            run_log=run_log,
            run_id=the_run,
            progress=progress,
            ray=session,
        )
        items = suite.items()
        runner.check_inputs(items)
        if header is None:
            run_log.write_header(_header(suite, runner, the_run, suite_hash))
        else:
            run_log.update_header(status="running", finished_at=None)
        done = run_log.done()
        committer = BatchCommitter(run_log)
        try:
            await runner.run(items, done, committer)
        except (KeyboardInterrupt, asyncio.CancelledError):
            run_log.update_header(status="interrupted")
            raise
        except BaseException:
            run_log.update_header(status="failed")
            raise
        results = committer.results()
        header = run_log.update_header(
            status="complete", finished_at=time.time(), aggregates=runner.aggregates(results)
        )
        if out_path is not None:
            run_log.write_json(out_path)
        return header.model_copy(update={"results": results})
    finally:
        if session is not None:
            session.close()
        run_log.close()


def run_suite(
    suite: Suite | str | Path,
    *,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    progress: bool = True,
    backends: Mapping[str, Backend] | None = None,
    run_id: str | None = None,
    cache: Any = None,
    ledger: Any = True,
    state_dir: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    ray: RayOptions | str | bool | None = None,
) -> EvalLog:
    """The synchronous form of :func:`arun_suite`, with the same arguments (works inside a running event loop
    too)."""
    log: EvalLog = run_sync(
        arun_suite(
            suite,
            out=out,
            resume=resume,
            progress=progress,
            backends=backends,
            run_id=run_id,
            cache=cache,
            ledger=ledger,
            state_dir=state_dir,
            overrides=overrides,
            ray=ray,
        )
    )
    return log


def failed_gates(log: EvalLog) -> list[ThresholdCheck]:
    """The CI gates of ``log`` that did not pass (every variant is checked)."""
    from promptkit.evals._ab import check_thresholds

    return [check for check in check_thresholds(log) if not check.passed]


def describe_gate(check: ThresholdCheck) -> str:
    value = "no results" if check.value is None else f"{check.value:.4g}"
    op = ">=" if check.direction == "min" else "<="
    return f"{check.name} of variant {check.variant!r} is {value}, needs {op} {check.limit:g}"


def assert_suite(
    suite: Suite | str | Path,
    *,
    out: str | Path | None = None,
    progress: bool = False,
    backends: Mapping[str, Backend] | None = None,
    cache: Any = None,
    ledger: Any = True,
    state_dir: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> EvalLog:
    """Run ``suite`` (arguments as :func:`run_suite`) and raise ``AssertionError`` listing every CI gate that
    failed; return the log."""
    log = run_suite(
        suite,
        out=out,
        progress=progress,
        backends=backends,
        cache=cache,
        ledger=ledger,
        state_dir=state_dir,
        overrides=overrides,
    )
    failed = failed_gates(log)
    if failed:
        raise AssertionError(f"suite {log.suite!r}: " + "; ".join(describe_gate(c) for c in failed))
    return log

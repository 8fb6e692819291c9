"""``distill``: a few-shot bank of verified answers, for a template, from a suite's development items.

DSPy's BootstrapFewShot keeps the strong program's traces that a metric accepts; here the metric is the
suite's own scorers (for code: the tests, run in the sandbox), so every example in the bank is known to work.
The answers come from a model (``model=``, usually the strong tier) or from a reference column of the
dataset (``reference=``, e.g. HumanEval's canonical solutions), verified the same way.

Only the suite's ``dev`` items are used: the suite's dataset must have a ``split:``, so that a bank never
holds an item that the report part scores. The run behind a bank is an ordinary resumable eval run, kept
next to the bank; a killed distillation resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promptkit.errors import EvalError
from promptkit.evals._bank import write_bank
from promptkit.evals._eval_log import EvalLog
from promptkit.evals._suite import Suite, SuiteSpec, load_suite

__all__ = ["DistillResult", "distill"]


@dataclass(frozen=True)
class DistillResult:
    bank: Path
    run_log: EvalLog
    kept: int  # examples in the bank
    tried: int  # dev items answered
    source: str


def distill(
    suite: Suite | str | Path,
    *,
    out: str | Path,
    variant: str | None = None,
    model: str | None = None,
    reference: str | None = None,
    progress: bool = True,
    backends: Any = None,
    state_dir: str | Path | None = None,
) -> DistillResult:
    """Answer the suite's dev items with ``variant``'s template, keep the answers its scorers pass, and write
    them to ``out`` as a few-shot bank. ``model`` defaults to the suite's first model; ``reference`` names
    a dataset column to use as the answer instead (no model is called)."""
    from promptkit.evals._runlog import run_log_path
    from promptkit.evals._runner import run_suite

    if not isinstance(suite, Suite):
        suite = load_suite(suite)
    spec = suite.spec
    if spec.dataset.split is None:
        raise EvalError(
            "distilling needs a dev/report split, so that a bank never holds an item the report scores: add"
            " split: {part: report, report_fraction: 0.3} to the dataset",
            location=suite.where("dataset"),
        )
    chosen = _variant(suite, variant)
    template = suite.template(chosen)
    if reference is not None and model is not None:
        raise EvalError("give a model or a reference column, not both", location="--reference")
    if reference is None:
        model = model or (spec.models[0] if spec.models else None)
        if model is None:
            raise EvalError(
                "the suite has a router, not models: name the model to distill from", location="--model"
            )
        source = f"model:{model}"
    else:
        model = f"reference:{reference}"
        source = model
    derived = SuiteSpec.model_validate(
        {
            **spec.model_dump(exclude={"variants", "models", "router", "dataset", "repeats", "thresholds"}),
            "variants": [chosen.model_dump(exclude={"example_bank"}, exclude_none=True)],
            "models": [model],
            "dataset": spec.dataset.model_copy(
                update={"split": spec.dataset.split.model_copy(update={"part": "dev"})}
            ),
            "repeats": 1,
        }
    )
    dev_suite = Suite(derived, path=suite.path, base_dir=suite.base_dir)
    out_path = Path(out)
    if reference is not None:
        backends = {model: _reference_backend(dev_suite, reference)}
    run_id = (
        "distill-"
        + hashlib.sha256(f"{out_path.resolve()}\0{source}\0{dev_suite.hash}".encode()).hexdigest()[:12]
    )
    log_file = out_path.with_name(out_path.name + ".run.json")
    existing = run_log_path(run_id, state_dir=Path("."), out=log_file)
    log = run_suite(
        dev_suite,
        out=log_file,
        run_id=None if existing.exists() else run_id,
        resume=run_id if existing.exists() else None,
        progress=progress,
        backends=backends,
        cache=False,
        state_dir=state_dir,
    )
    items = {item.id: item for item in dev_suite.items()}
    position = {item_id: i for i, item_id in enumerate(items)}  # the bank keeps the dataset's order
    rows = []
    for result in sorted(log.results, key=lambda r: position[r.item_id]):
        if not result.passed or result.output is None:
            continue
        item = items[result.item_id]
        inputs = {**item.inputs, **chosen.inputs}  # as the runner rendered it
        rows.append(
            {"id": item.id, "inputs": inputs, "output": _continuation(template, inputs, result.output)}
        )
    meta = {
        "answered_with": template.name,
        "template_hash": template.hash,
        "source": source,
        "suite": spec.name,
        "split": derived.dataset.split.model_dump() if derived.dataset.split else None,
        "verified_by": list(log.scorers),
        "tried": len(log.results),
        "created_at": time.time(),
    }
    kept = write_bank(out_path, meta, rows)
    return DistillResult(bank=out_path, run_log=log, kept=kept, tried=len(log.results), source=source)


def _variant(suite: Suite, name: str | None) -> Any:
    if name is None:
        return suite.spec.variants[0]
    for variant in suite.spec.variants:
        if variant.name == name:
            return variant
    names = ", ".join(v.name for v in suite.spec.variants)
    raise EvalError(f"the suite has no variant {name!r} (it has: {names})", location="--variant")


def _prefill(messages: Any) -> str:
    """The text a rendered prompt puts at the start of the answer (a prefilled last assistant turn), or ''."""
    return messages[-1].content if messages and messages[-1].role == "assistant" else ""  # type: ignore[no-any-return]


def _continuation(template: Any, inputs: dict[str, Any], output: str) -> str:
    """What the model wrote after the prefill: what an example's answer turn adds to the same prefill."""
    prefill = _prefill(template.render(inputs, examples="first_k:0").messages)
    text = output[len(prefill) :] if prefill and output.startswith(prefill) else output
    stripped = text.rstrip()
    if stripped.endswith("```") and "```" in prefill:  # the prefill opened the fence; the example closes it
        text = stripped[:-3]
    return text.rstrip() + "\n"


def _reference_backend(suite: Suite, column: str) -> Any:
    """A backend that answers each item with its reference column, after the template's prefill (so the
    answer is scored exactly as a model's would be)."""
    from promptkit.backends import Capabilities, FunctionBackend
    from promptkit.evals._dataset import get_field

    variant = suite.spec.variants[0]
    template = suite.template(variant)
    by_prompt: dict[str, str] = {}
    for item in suite.items():
        inputs = {**item.inputs, **variant.inputs}
        try:
            answer = get_field(item.row, column)
        except KeyError:
            raise EvalError(
                f"the item has no field {column!r}", location=f"{item.location}: {column}"
            ) from None
        messages = template.render(inputs, examples=variant.examples).messages
        by_prompt[_key(messages)] = _prefill(messages) + str(answer)

    def answer(request: Any) -> str:
        found = by_prompt.get(_key(request.messages))
        if found is None:
            raise EvalError("the reference backend got a prompt that no dev item renders to", location=column)
        return found

    return FunctionBackend(answer, name=f"reference:{column}", capabilities=Capabilities(prefill=True))


def _key(messages: Any) -> str:
    return hashlib.sha256(repr([(m.role, m.content) for m in messages]).encode()).hexdigest()

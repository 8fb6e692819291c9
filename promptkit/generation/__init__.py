"""``generate()``: render a template, route it to the cheapest model whose answer passes, and record it all.

    result = generate("debug", inputs, model="cheap")                       # one model, re-asked up to 3 times
    result = generate("debug", inputs, router=Router.from_config(), accept=lambda out: bool(out.fix))
    result = generate("debug", inputs, model="cheap", output=MyFix)          # result.output: a MyFix

``run_cascade`` is the one cascade (cheap tier first, check, repair with the errors fed back, escalate), with
``repair_loop`` as its per-tier loop: generate() runs it with parse + validate + ``accept`` as the check, the
executor with apply-edits + verify.
"""

from promptkit.generation._cascade import (
    CascadeSteps,
    Failed,
    Passed,
    Served,
    Skipped,
    TierEnded,
    Try,
    route_features,
    run_cascade,
)
from promptkit.generation._defaults import (
    current_config,
    reset_defaults,
    resolve_cache,
    resolve_ledger,
    template_for,
)
from promptkit.generation._generate import agenerate, generate
from promptkit.generation._loop import Feedback, LoopAttempt, LoopResult, repair_loop
from promptkit.generation._parse import (
    Accept,
    check_acceptance,
    feedback_messages,
    parse_output,
    strip_fences,
)
from promptkit.generation._result import GenerateResult

__all__ = [
    "current_config",
    "resolve_cache",
    "resolve_ledger",
    "template_for",
    "Accept",
    "CascadeSteps",
    "Failed",
    "Feedback",
    "GenerateResult",
    "LoopAttempt",
    "LoopResult",
    "Passed",
    "Served",
    "Skipped",
    "TierEnded",
    "Try",
    "agenerate",
    "check_acceptance",
    "feedback_messages",
    "generate",
    "parse_output",
    "repair_loop",
    "reset_defaults",
    "route_features",
    "run_cascade",
    "strip_fences",
]

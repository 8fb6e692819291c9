"""``generate()``: render a template, route it to the cheapest model whose answer passes, and record it all.

    result = generate("debug", inputs, model="cheap")                       # one model, re-asked up to 3 times
    result = generate("debug", inputs, router=Router.from_config(), accept=lambda out: bool(out.fix))
    result = generate("debug", inputs, model="cheap", output=MyFix)          # result.output: a MyFix

``repair_loop`` is the one attempt → validate → feedback loop; the executor reuses it for verify-and-repair.
"""

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
    "Feedback",
    "GenerateResult",
    "LoopAttempt",
    "LoopResult",
    "agenerate",
    "check_acceptance",
    "feedback_messages",
    "generate",
    "parse_output",
    "repair_loop",
    "reset_defaults",
    "strip_fences",
]

"""Fit a render into a token budget: drop examples and cut trimmable inputs, lowest priority first."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from promptkit.errors import ContextBudgetError
from promptkit.prompts._examples import Example
from promptkit.prompts._tokens import count_text_tokens, count_tokens_detailed
from promptkit.types import Message

if TYPE_CHECKING:
    from promptkit.prompts._template import Template

__all__ = ["fit_to_budget", "cut_text", "trim_marker", "examples_marker"]


def trim_marker(tokens: int) -> str:
    return f"[… {tokens} tokens trimmed to fit the context budget …]"


def examples_marker(dropped: int, total: int) -> str:
    noun = "example" if total == 1 else "examples"
    return f"[… {dropped} of {total} {noun} omitted to fit the context budget …]"


def cut_text(value: str, keep: int, side: str, model: str | None) -> tuple[str, int]:
    """Keep ``keep`` characters of ``value`` (head and tail for ``middle``, head for ``tail``), with a marker.

    Returns the new text and how many tokens were removed.
    """
    if keep >= len(value):
        return value, 0
    if side == "tail":
        head, removed, tail = value[:keep], value[keep:], ""
    else:
        front = math.ceil(keep / 2)
        back = keep - front
        head, removed, tail = value[:front], value[front : len(value) - back], value[len(value) - back :]
    removed_tokens = count_text_tokens(removed, model)
    parts = [p for p in (head.rstrip(), trim_marker(removed_tokens), tail.lstrip()) if p]
    return "\n".join(parts), removed_tokens


class _Fitter:
    def __init__(
        self,
        template: Template,
        values: dict[str, Any],
        chosen: list[Example],
        budget: int,
        model: str | None,
    ) -> None:
        self.template = template
        self.values = dict(values)  # never mutate the caller's validated inputs
        self.chosen = chosen
        self.kept = len(chosen)
        self.budget = budget
        self.model = model
        self.exact = True

    def render(self) -> list[Message]:
        note = (
            examples_marker(len(self.chosen) - self.kept, len(self.chosen))
            if self.kept < len(self.chosen)
            else None
        )
        return self.template.render_messages(self.values, self.chosen[: self.kept], note)

    def measure(self) -> tuple[list[Message], int]:
        messages = self.render()
        count, exact = count_tokens_detailed(messages, self.model)
        self.exact = exact
        return messages, count

    def largest_fitting(
        self, low: int, high: int, apply: Callable[[int], None]
    ) -> tuple[int, list[Message], int]:
        """The largest n in [low, high] whose render fits (tokens grow with n); low if none does."""
        apply(low)
        messages, count = self.measure()
        if count > self.budget or low == high:
            return low, messages, count
        best = (low, messages, count)
        lo, hi = low + 1, high
        while lo <= hi:
            mid = (lo + hi) // 2
            apply(mid)
            messages, count = self.measure()
            if count <= self.budget:
                best = (mid, messages, count)
                lo = mid + 1
            else:
                hi = mid - 1
        apply(best[0])
        return best


def fit_to_budget(
    template: Template, values: dict[str, Any], chosen: list[Example], budget: int, model: str | None
) -> tuple[list[Message], int, bool, list[str], list[Example]]:
    """``(messages, token_count, exact, trimmed_notes, examples_kept)`` within ``budget`` tokens.

    Order: units sorted by priority (examples use ``examples_trim_priority``, dropped before any input when
    it is unset; inputs use ``trim_priority``); each unit is cut only as far as needed, found by binary search.
    Inputs without ``trim_priority`` and the template's own text are never touched.
    """
    fitter = _Fitter(template, values, chosen, budget, model)
    messages, count = fitter.measure()
    if count <= budget:
        return messages, count, fitter.exact, [], chosen

    units: list[tuple[tuple[float, int, int], str]] = []
    if chosen and template.uses_examples:
        priority = template.examples_trim_priority
        units.append(((priority if priority is not None else -math.inf, 0, 0), ""))
    for order, (name, field) in enumerate(template.inputs.items()):
        value = values.get(name)
        if field.trim_priority is not None and isinstance(value, str) and value:
            units.append(((field.trim_priority, 1, order), name))
    units.sort(key=lambda u: u[0])

    trimmed: list[str] = []
    for _, name in units:
        if not name:
            total = len(chosen)

            def keep_examples(n: int) -> None:
                fitter.kept = n

            kept, messages, count = fitter.largest_fitting(0, total - 1, keep_examples)
            trimmed.append(f"examples: dropped {total - kept} of {total} (the last ones) to fit the budget")
        else:
            field = template.inputs[name]
            original: str = values[name]
            removed_tokens = 0

            def keep_chars(
                n: int, original: str = original, side: str = field.trim, name: str = name
            ) -> None:
                nonlocal removed_tokens
                fitter.values[name], removed_tokens = cut_text(original, n, side, model)

            _, messages, count = fitter.largest_fitting(0, len(original) - 1, keep_chars)
            where = "end" if field.trim == "tail" else "middle"
            trimmed.append(
                f"input {name!r}: cut {removed_tokens} tokens from the {where} (trim_priority {field.trim_priority})"
            )
        if count <= budget:
            return messages, count, fitter.exact, trimmed, chosen[: fitter.kept]

    what = "after trimming everything allowed" if units else "and nothing in it may be trimmed"
    raise ContextBudgetError(
        f"template {template.name!r} needs {count} tokens, {count - budget} over the budget of {budget}, {what}",
        location=template.source,
    )

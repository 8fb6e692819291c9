"""Fit a render into a token budget: drop examples and cut trimmable inputs, lowest priority first."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from promptkit.errors import ContextBudgetError
from promptkit.prompts._examples import Example
from promptkit.prompts._inputs import InputField
from promptkit.prompts._tokens import count_text_tokens, count_tokens_detailed
from promptkit.types import Message

__all__ = [
    "Fittable",
    "fit_to_budget",
    "fit_examples",
    "largest_fitting",
    "cut_text",
    "trim_marker",
    "examples_marker",
]


class Fittable(Protocol):
    """What fitting needs of a template (``Template`` is one): its inputs, its examples' priority, a render."""

    @property
    def name(self) -> str: ...
    @property
    def source(self) -> str | None: ...
    @property
    def inputs(self) -> Mapping[str, InputField]: ...
    @property
    def uses_examples(self) -> bool: ...
    @property
    def examples_trim_priority(self) -> int | None: ...
    def render_messages(
        self, values: dict[str, Any], chosen: list[Example], note: str | None = None
    ) -> list[Message]: ...


def largest_fitting(low: int, high: int, fits: Callable[[int], bool]) -> int:
    """The largest n in [low, high] with ``fits(n)``, when fitting only gets harder as n grows; ``low`` when
    no n above it fits (``fits(low)`` itself is never asked: callers know it, or have nothing smaller)."""
    while low < high:
        mid = (low + high + 1) // 2
        if fits(mid):
            low = mid
        else:
            high = mid - 1
    return low


def fit_examples(
    template: Fittable, values: dict[str, Any], chosen: list[Example], budget: int, model: str | None
) -> list[Example]:
    """``fit_budget`` against the render budget: the longest prefix of ``chosen`` whose render fits (empty when
    none does: trimming the inputs is :func:`fit_to_budget`'s job)."""

    def fits(n: int) -> bool:
        return count_tokens_detailed(template.render_messages(values, chosen[:n]), model)[0] <= budget

    if not chosen or fits(len(chosen)):
        return chosen
    return chosen[: largest_fitting(0, len(chosen) - 1, fits)]


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
        template: Fittable,
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

    def search(self, low: int, high: int, apply: Callable[[int], None]) -> tuple[int, list[Message], int]:
        """The largest n in [low, high] whose render fits (tokens grow with n); low if none does.

        Returns n with its render and token count, and leaves ``apply(n)`` in effect."""
        measured: dict[int, tuple[list[Message], int]] = {}

        def fits(n: int) -> bool:
            apply(n)
            measured[n] = self.measure()
            return measured[n][1] <= self.budget

        best = low if not fits(low) else largest_fitting(low, high, fits)
        apply(best)
        return best, *measured[best]


def fit_to_budget(
    template: Fittable, values: dict[str, Any], chosen: list[Example], budget: int, model: str | None
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

            kept, messages, count = fitter.search(0, total - 1, keep_examples)
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

            _, messages, count = fitter.search(0, len(original) - 1, keep_chars)
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

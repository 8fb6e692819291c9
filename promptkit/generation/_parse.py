"""Turning a model's raw text into the template's output, and a failed check into feedback for a re-ask."""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from promptkit.errors import OutputValidationError
from promptkit.generation._loop import Feedback
from promptkit.prompts import OutputWrapper, TextFormat, close_open_fence
from promptkit.types import Message

__all__ = ["Accept", "strip_fences", "parse_output", "check_acceptance", "feedback_messages"]

# accept(output) -> True/None (accepted), False or a reason string (rejected); may be async.
Accept = Callable[[Any], bool | str | None | Awaitable[bool | str | None]]

_FENCE = re.compile(r"\A\s*```[A-Za-z0-9_+-]*[ \t]*\r?\n(.*?)\r?\n?[ \t]*```\s*\Z", re.DOTALL)
_MAX_ERRORS = 8


def strip_fences(text: str) -> str:
    """The body of a single ```json ... ``` (or bare ```) block around the whole answer; other text unchanged."""
    match = _FENCE.match(text)
    return match.group(1) if match else text


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors(include_url=False)[:_MAX_ERRORS]:
        where = ".".join(str(p) for p in err["loc"]) or "(answer)"
        lines.append(f"- {where}: {err['msg']}")
    extra = exc.error_count() - _MAX_ERRORS
    if extra > 0:
        lines.append(f"- ... and {extra} more error(s)")
    return "\n".join(lines)


def parse_output(text: str, output_model: type[BaseModel] | None, *, location: str | None = None) -> Any:
    """The validated output: an ``output_model`` instance parsed from JSON, or the text for free-text templates.

    For an ``OutputWrapper`` (an output type such as ``list[Model]`` or ``Literal``), the value inside it: the
    answer ``{"answer": value}``, or the bare value. Raises ``OutputValidationError`` (with the raw text)
    listing every schema problem by field.
    """
    if output_model is None:
        return text
    if issubclass(output_model, TextFormat):
        try:
            return output_model.parse_text(text)
        except (ValueError, ValidationError) as exc:
            detail = _describe(exc) if isinstance(exc, ValidationError) else str(exc)
            raise OutputValidationError(
                f"the answer is not in the {output_model.format_name} format: {detail}",
                raw_output=text,
                location=location,
            ) from None
    body = strip_fences(text)
    try:
        output = output_model.model_validate_json(body)
    except ValidationError as exc:
        if issubclass(output_model, OutputWrapper):
            bare = output_model.from_bare_json(body)
            if bare is not None:
                return bare.unwrap()
        raise OutputValidationError(
            f"the answer does not match the output schema:\n{_describe(exc)}",
            raw_output=text,
            location=location,
        ) from None
    return output.unwrap() if isinstance(output, OutputWrapper) else output


async def check_acceptance(
    accept: Accept | None, output: Any, *, raw: str, location: str | None = None
) -> None:
    """Run the caller's acceptance check; a False/str verdict (or an OutputValidationError) rejects."""
    if accept is None:
        return
    try:
        verdict = accept(output)
        if inspect.isawaitable(verdict):
            verdict = await verdict
    except OutputValidationError as exc:
        if not exc.raw_output:
            exc.raw_output = raw
        raise
    if verdict is None or verdict is True:
        return
    if verdict is False:
        reason = "the answer was rejected by the acceptance check"
    elif isinstance(verdict, str):
        reason = f"the answer was rejected by the acceptance check: {verdict}"
    else:
        raise OutputValidationError(
            f"the acceptance check returned {type(verdict).__name__}; expected bool, str or None",
            raw_output=raw,
            location=location,
        )
    raise OutputValidationError(reason, raw_output=raw, location=location)


def feedback_messages(
    feedback: Sequence[Feedback], *, structured: bool, text_format: type[TextFormat] | None = None
) -> list[Message]:
    """The repair turns appended after the prompt: each failed answer, then exactly what was wrong with it."""
    if text_format is not None:
        instruction = f"Answer again, correctly. {text_format.instructions}"
    elif structured:
        instruction = (
            "Answer again, correctly: reply with only the JSON object that matches the schema, nothing else."
        )
    else:
        instruction = "Answer again, correctly."
    out: list[Message] = []
    for item in feedback:
        out.append(Message(role="assistant", content=close_open_fence(item.raw_output)))
        out.append(
            Message(
                role="user", content=f"Your previous answer was not accepted:\n{item.error}\n\n{instruction}"
            )
        )
    return out

"""What a cascade can see in the cheap model's answer before deciding to escalate.

Cheap, deterministic text checks (no model): is there a final answer, is it a plausible one, do the worked
``a op b = c`` steps actually hold, does the answer hedge, refuse, repeat itself or stop mid-sentence, does it
use the numbers the question gave. Each is a number; a learned cascade weighs them, ``heuristic_risk`` adds
them up with fixed weights for use without training data.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections import Counter
from collections.abc import Callable

__all__ = [
    "ANSWER_FEATURES",
    "answer_features",
    "answer_feature_vector",
    "arithmetic_errors",
    "final_answer",
    "heuristic_risk",
]

_NUM = r"-?\$?\d[\d,]*(?:\.\d+)?"
_NUMBER = re.compile(r"(?<![\w.])-?\$?\d[\d,]*(?:\.\d+)?%?")
# An arithmetic step: numbers joined by operators (and parentheses), then "=", then a number.
_STEP = re.compile(
    r"((?:\(\s*)*" + _NUM + r"(?:\s*\)*\s*[-+*/×x÷]\s*\(*\s*" + _NUM + r")+\s*\)*)\s*=\s*(" + _NUM + r")"
)
_FINAL_PATTERNS = (
    re.compile(r"####\s*(" + _NUM + r")"),
    re.compile(r"answer is[:\s]*\**\s*(" + _NUM + r")", re.IGNORECASE),
    re.compile(r"\\boxed\{\s*(" + _NUM + r")", re.IGNORECASE),
    re.compile(
        r"(?:total|result|therefore|so)[^.\n]{0,80}?(?:is|of|=|are|be)\s*\**\s*(" + _NUM + r")", re.IGNORECASE
    ),
)
_HEDGES = (
    "i think",
    "i believe",
    "approximately",
    "roughly",
    "not sure",
    "unclear",
    "it seems",
    "might be",
    "may be",
    "assuming",
    "assume",
    "however,",
    "wait",
    "let me re",
    "actually",
    "mistake",
    "i apologize",
    "correction",
    "re-evaluate",
    "recheck",
    "not possible",
    "cannot be determined",
    "ambiguous",
)
_REFUSALS = (
    "i cannot",
    "i can't",
    "i'm sorry",
    "i am sorry",
    "as an ai",
    "i'm unable",
    "i am unable",
    "i don't have",
)
_OPS: dict[type, Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}

ANSWER_FEATURES: tuple[str, ...] = (
    "log_chars",
    "log_lines",
    "has_final",
    "final_non_integer",
    "final_negative",
    "final_not_computed",
    "distinct_finals",
    "n_steps",
    "wrong_steps",
    "wrong_step_share",
    "hedges",
    "refusal",
    "repeated_lines",
    "truncated",
    "question_numbers_used",
    "question_numbers_missing",
)


def _to_float(token: str) -> float | None:
    cleaned = token.replace("$", "").replace(",", "").rstrip("%")
    try:
        return float(cleaned)
    except ValueError:
        return None


def _evaluate(expression: str) -> float | None:
    """Evaluate ``+ - * /`` over numbers (and parentheses) without ``eval``; None when it is not that."""
    text = expression.replace("×", "*").replace("÷", "/").replace("$", "").replace(",", "")
    text = re.sub(r"(?<=[\d)])\s*x\s*(?=[\d(])", "*", text)
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return None

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](walk(node.left), walk(node.right))
        raise ValueError("not arithmetic")

    try:
        return walk(tree)
    except (ValueError, ZeroDivisionError, OverflowError):
        return None


def arithmetic_errors(text: str) -> tuple[int, int, list[float]]:
    """(steps checked, steps that are wrong, the computed results) for every ``expr = number`` in ``text``.

    A step is wrong when the stated result differs from the expression's value by more than 1% (and 0.01),
    which forgives rounding in the answer but not a slipped digit.
    """
    checked = wrong = 0
    results: list[float] = []
    for match in _STEP.finditer(text):
        value = _evaluate(match.group(1))
        stated = _to_float(match.group(2))
        if value is None or stated is None:
            continue
        checked += 1
        results.append(stated)
        if abs(value - stated) > max(0.01, 0.01 * abs(value)):
            wrong += 1
    return checked, wrong, results


def final_answer(text: str) -> float | None:
    """The answer the text commits to: ``#### n``, "the answer is n", a boxed n, else the last number."""
    for pattern in _FINAL_PATTERNS:
        found = pattern.findall(text)
        if found:
            return _to_float(found[-1])
    numbers = _NUMBER.findall(text)
    return _to_float(numbers[-1]) if numbers else None


def _finals(text: str) -> set[float]:
    values: set[float] = set()
    for pattern in _FINAL_PATTERNS[:3]:
        for token in pattern.findall(text):
            value = _to_float(token)
            if value is not None:
                values.add(round(value, 4))
    return values


def answer_features(answer: str, question: str | None = None) -> dict[str, float]:
    """Named risk features of one answer (see ``ANSWER_FEATURES``); ``question`` enables number coverage."""
    text = answer or ""
    lower = text.lower()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    final = final_answer(text)
    steps, wrong, results = arithmetic_errors(text)
    explicit = _finals(text)
    counts = Counter(lines)
    repeated = sum(c - 1 for line, c in counts.items() if c > 1 and len(line) > 20)
    stripped = text.rstrip()
    truncated = bool(stripped) and stripped[-1] not in ".!?)]}*\"'`0123456789$%" and len(stripped) > 200
    used = missing = 0.0
    if question:
        asked = {v for v in (_to_float(t) for t in _NUMBER.findall(question)) if v is not None}
        mentioned = {v for v in (_to_float(t) for t in _NUMBER.findall(text)) if v is not None}
        if asked:
            hits = sum(1 for v in asked if v in mentioned)
            used = hits / len(asked)
            missing = float(len(asked) - hits)
    computed = {round(r, 4) for r in results}
    return {
        "log_chars": math.log1p(len(text)),
        "log_lines": math.log1p(len(lines)),
        "has_final": 1.0 if final is not None else 0.0,
        "final_non_integer": 1.0 if final is not None and abs(final - round(final)) > 1e-9 else 0.0,
        "final_negative": 1.0 if final is not None and final < 0 else 0.0,
        "final_not_computed": 1.0
        if final is not None and computed and round(final, 4) not in computed
        else 0.0,
        "distinct_finals": float(max(0, len(explicit) - 1)),
        "n_steps": math.log1p(steps),
        "wrong_steps": float(wrong),
        "wrong_step_share": wrong / steps if steps else 0.0,
        "hedges": float(sum(lower.count(h) for h in _HEDGES)),
        "refusal": 1.0 if any(r in lower for r in _REFUSALS) else 0.0,
        "repeated_lines": float(repeated),
        "truncated": 1.0 if truncated else 0.0,
        "question_numbers_used": used,
        "question_numbers_missing": missing,
    }


def answer_feature_vector(answer: str, question: str | None = None) -> list[float]:
    features = answer_features(answer, question)
    return [features[name] for name in ANSWER_FEATURES]


# Fixed weights for escalating without any training data: each says how much a symptom raises the risk.
_RISK_WEIGHTS: dict[str, float] = {
    "has_final": -1.0,
    "final_non_integer": 1.0,
    "final_negative": 1.0,
    "final_not_computed": 0.5,
    "distinct_finals": 0.7,
    "wrong_steps": 1.5,
    "hedges": 0.3,
    "refusal": 2.0,
    "repeated_lines": 0.3,
    "truncated": 1.0,
    "question_numbers_missing": 0.3,
}


def heuristic_risk(answer: str, question: str | None = None) -> float:
    """A training-free escalation score: higher = more likely wrong."""
    features = answer_features(answer, question)
    return sum(weight * features[name] for name, weight in _RISK_WEIGHTS.items())

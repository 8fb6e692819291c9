"""One item of an eval as people read it: the prompt as a transcript, inputs as text, every attempt, the scores.

The HTML fragments here are shared by the static A/B report (``_html.py``) and the log viewer
(``_viewer.py``), so an item looks the same in both. Everything from a log is untrusted (model output above
all) and is HTML-escaped here, in one place.

The run log records each result's inputs, outputs and attempts but not the rendered prompt (storing it would
repeat every few-shot example in every result). :class:`TranscriptSource` re-renders it from the suite, with
the seeded example selection the runner used, and only when the template's hash still matches the one the
run recorded; otherwise it says why there is no transcript rather than showing a prompt that was not sent.
"""

from __future__ import annotations

import difflib
import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptkit.errors import PromptkitError
from promptkit.evals._eval_log import EvalLog, ItemResult, VariantInfo

__all__ = [
    "Turn",
    "Transcript",
    "TranscriptSource",
    "FRAGMENT_CSS",
    "esc",
    "readable",
    "inputs_html",
    "transcript_html",
    "attempts_html",
    "result_html",
]

FRAGMENT_CSS = """
.transcript { margin: 4px 0; }
.turn { border-left: 3px solid var(--line); padding: 2px 8px; margin: 6px 0; }
.turn.role-system { border-left-color: #8250df; } .turn.role-user { border-left-color: var(--accent); }
.turn.role-assistant { border-left-color: var(--pass); }
.turn.example { border-left-style: dashed; background: #fbfbf4; }
.turn .role { font-size: 11px; font-weight: 700; text-transform: uppercase; color: var(--muted); }
.turn .tag { font-weight: 600; text-transform: none; color: var(--warn); margin-left: 6px; }
.note { color: var(--muted); font-size: 12px; font-style: italic; }
dl.inputs { margin: 4px 0; } dl.inputs dt { font-weight: 600; font-size: 12px; color: var(--muted); }
dl.inputs dd { margin: 0 0 6px; }
table.attempts { font-size: 12px; } table.attempts td, table.attempts th { padding: 2px 6px; }
.metrics { color: var(--muted); font-size: 12px; }
"""

# Placeholder a reference render uses for "no examples", to tell example turns from the rest.
_NO_EXAMPLES = "first_k:0"


def esc(value: object) -> str:
    """Escape untrusted text for element content and attribute values alike."""
    return html.escape(str(value), quote=True)


def readable(value: Any) -> str:
    """Text as text (real newlines), anything else as indented JSON."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return repr(value)


@dataclass(frozen=True)
class Turn:
    role: str
    content: str
    name: str | None = None
    # "turn": a few-shot example's own message; "inline": a message with examples rendered into it.
    example: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"role": self.role, "content": self.content, "name": self.name, "example": self.example}


@dataclass
class Transcript:
    turns: list[Turn] | None  # None when it cannot be shown; ``note`` says why
    note: str
    meta: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        turns = None if self.turns is None else [t.as_dict() for t in self.turns]
        return {"turns": turns, "note": self.note, **self.meta}


def _mark_examples(full: list[Any], bare: list[Any]) -> list[Turn]:
    """Turns of ``full``, with those that a render without examples (``bare``) lacks marked as examples."""
    key = [(m.role, m.content) for m in full]
    matcher = difflib.SequenceMatcher(a=[(m.role, m.content) for m in bare], b=key, autojunk=False)
    marks: list[str | None] = [None] * len(full)
    for op, _a0, _a1, b0, b1 in matcher.get_opcodes():
        if op in ("insert", "replace"):
            for j in range(b0, b1):
                marks[j] = "turn" if op == "insert" else "inline"
    return [Turn(m.role, m.content, m.name, marks[j]) for j, m in enumerate(full)]


class TranscriptSource:
    """Re-renders the prompts of one eval log from its suite (see the module docstring)."""

    def __init__(self, log: EvalLog, log_path: Path | None = None) -> None:
        self.log = log
        self.log_path = log_path
        self._suite: Any = None
        self._problem: str | None = None
        self._loaded = False
        self._variants: dict[str, tuple[Any, Any] | str] = {}

    def _load_suite(self) -> Any:
        if self._loaded:
            return self._suite
        self._loaded = True
        if not self.log.suite_path:
            self._problem = "the log does not name its suite file, so its prompts cannot be re-rendered"
            return None
        from promptkit.evals._suite import load_suite

        recorded = Path(self.log.suite_path)
        candidates = [recorded]
        if not recorded.is_absolute() and self.log_path is not None:
            # The path was relative to where the run started: most often the log's folder or one above it.
            folder = self.log_path.resolve().parent
            candidates += [a / recorded for a in [folder, *folder.parents][:4]] + [folder / recorded.name]
        found = [c for c in dict.fromkeys(candidates) if c.is_file()]
        if not found:
            self._problem = f"the suite {self.log.suite_path} is not there any more: no transcript"
            return None
        problems = []
        for path in found:
            try:
                suite = load_suite(path)
            except PromptkitError as exc:
                problems.append(f"cannot load the suite {path}: {exc}")
                continue
            if suite.name == self.log.suite:  # a file of that name that is another suite is not the one
                self._suite = suite
                return suite
            problems.append(f"{path} is suite {suite.name!r}, not {self.log.suite!r}")
        self._problem = "; ".join(problems) + ": no transcript"
        return None

    def _variant(self, info: VariantInfo | None, name: str) -> tuple[Any, Any] | str:
        """(variant spec, template) of a variant, or why its prompts cannot be re-rendered."""
        if name in self._variants:
            return self._variants[name]
        suite = self._load_suite()
        found: tuple[Any, Any] | str
        if suite is None:
            found = self._problem or "no suite"
        else:
            spec = next((v for v in suite.spec.variants if v.name == name), None)
            if spec is None or info is None:
                found = f"variant {name!r} is no longer in the suite {suite.path}"
            else:
                try:
                    template = suite.template(spec)
                except PromptkitError as exc:
                    template, found = None, f"cannot load template {spec.template!r}: {exc}"
                if template is not None:
                    if template.hash != info.template_hash:
                        found = (
                            f"template {info.template!r} changed since the run (hash {template.hash[:12]}, "
                            f"the run used {info.template_hash[:12]}): not showing a prompt that was not sent"
                        )
                    elif spec.options() != info.options:
                        found = f"variant {name!r} has other options in the suite now than in the run"
                    else:
                        found = (spec, template)
        self._variants[name] = found
        return found

    def for_result(self, result: ItemResult) -> Transcript:
        info = next((v for v in self.log.variants if v.name == result.variant), None)
        found = self._variant(info, result.variant)
        if isinstance(found, str):
            return Transcript(None, found)
        spec, template = found
        from promptkit.evals._runner import _examples

        inputs = {**result.inputs, **spec.inputs}
        try:
            rendered = template.render(
                inputs, examples=_examples(spec, self.log.seed), budget=spec.budget_tokens
            )
            bare = template.render(inputs, examples=_NO_EXAMPLES, budget=spec.budget_tokens)
        except PromptkitError as exc:
            return Transcript(None, f"cannot re-render the prompt: {exc}")
        turns = _mark_examples(list(rendered.messages), list(bare.messages))
        note = (
            f"re-rendered from {self._suite.path} with template {template.name!r} "
            f"(hash {template.hash[:12]}, the one the run used)"
        )
        meta = {"examples_used": rendered.examples_used, "trimmed": list(rendered.trimmed)}
        return Transcript(turns, note, meta)


# ------------------------------------------------------------------------------------------- fragments


def inputs_html(inputs: dict[str, Any], expected: Any = None) -> str:
    parts = ['<dl class="inputs">']
    for key, value in inputs.items():
        parts.append(f'<dt>{esc(key)}</dt><dd><pre class="input">{esc(readable(value))}</pre></dd>')
    if expected is not None:
        parts.append(f'<dt>expected</dt><dd><pre class="expected">{esc(readable(expected))}</pre></dd>')
    parts.append("</dl>")
    return "".join(parts)


def transcript_html(transcript: Transcript) -> str:
    if transcript.turns is None:
        return f'<p class="note transcript-missing">{esc(transcript.note)}</p>'
    parts = ['<div class="transcript">']
    for turn in transcript.turns:
        classes = f"turn role-{esc(turn.role)}" + (" example" if turn.example else "")
        tag = ""
        if turn.example == "turn":
            tag = '<span class="tag">few-shot example</span>'
        elif turn.example == "inline":
            tag = '<span class="tag">includes few-shot examples</span>'
        name = f" ({esc(turn.name)})" if turn.name else ""
        parts.append(
            f'<div class="{classes}"><div class="role">{esc(turn.role)}{name}{tag}</div>'
            f"<pre>{esc(turn.content)}</pre></div>"
        )
    parts.append(f'<p class="note">{esc(transcript.note)}</p></div>')
    return "".join(parts)


def attempts_html(result: ItemResult) -> str:
    if not result.attempts:
        return '<p class="note">attempts: not recorded in this log</p>'
    heads = ["#", "model", "tier", "why", "outcome", "tokens in/out", "cost", "latency"]
    parts = ['<table class="attempts"><thead><tr>' + "".join(f"<th>{h}</th>" for h in heads)]
    parts.append("</tr></thead><tbody>")
    for a in result.attempts:
        parts.append(
            f'<tr class="attempt outcome-{esc(a.outcome)}"><td>{a.attempt}</td><td>{esc(a.model)}</td>'
            f"<td>{esc(a.tier or '–')}</td><td>{esc(a.reason or 'first')}</td><td>{esc(a.outcome)}</td>"
            f'<td class="num">{a.input_tokens} / {a.output_tokens}</td><td class="num">${a.cost_usd:.6f}</td>'
            f'<td class="num">{a.latency_s:.3f} s</td></tr>'
        )
        if a.raw_output is not None or a.error is not None:
            body = ""
            if a.raw_output is not None:
                body += f'<pre class="attempt-output">{esc(a.raw_output)}</pre>'
            elif a is result.attempts[-1] and result.output is not None:
                body += '<p class="note">its answer is the output above</p>'
            if a.error is not None:
                body += f'<pre class="error attempt-error">{esc(a.error)}</pre>'
            parts.append(f'<tr class="attempt-detail"><td></td><td colspan="7">{body}</td></tr>')
    parts.append("</tbody></table>")
    return "".join(parts)


def result_html(result: ItemResult, transcript: Transcript | None = None) -> str:
    """One result in full: the prompt, the raw and parsed output, the error, scores, attempts and costs."""
    parts = []
    if transcript is not None:
        parts.append(f"<h4>prompt</h4>{transcript_html(transcript)}")
    parts.append("<h4>output</h4>")
    if result.output is not None:
        parts.append(f'<pre class="output">{esc(result.output)}</pre>')
    else:
        parts.append('<p class="note">no output</p>')
    if result.parsed is not None and result.parsed != result.output:
        parts.append(f'<h4>parsed</h4><pre class="parsed">{esc(readable(result.parsed))}</pre>')
    if result.error is not None:
        parts.append(f'<h4>error</h4><pre class="error">{esc(result.error)}</pre>')
    if result.scores:
        parts.append('<h4>scores</h4><ul class="scores">')
        for s in result.scores:
            verdict = "" if s.passed is None else (" ✓" if s.passed else " ✗")
            parts.append(f"<li>{esc(s.scorer)}: {s.value:.4g}{verdict}")
            if s.rationale:
                parts.append(f'<pre class="rationale">{esc(s.rationale)}</pre>')
            parts.append("</li>")
        parts.append("</ul>")
    parts.append(
        f'<p class="metrics">tokens {result.input_tokens} in / {result.output_tokens} out · '
        f"cost ${result.cost_usd:.6f} · latency {result.latency_s:.3f} s"
        + (" · cached" if result.cached else "")
        + "</p>"
    )
    parts.append(f"<h4>attempts</h4>{attempts_html(result)}")
    return "".join(parts)

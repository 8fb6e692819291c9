"""What the log viewer shows: the runs found under a path, their items, and each item in full.

Four kinds of record are read, all read-only (a run still being written is read as it stands):

- eval runs: an EvalLog JSON (``promptkit eval --out``) or a run log ``<run_id>.sqlite`` (with its journal of
  results not yet committed); when both exist for a run, the run log (it is the newer);
- A/B reports: an ABReport JSON (``promptkit ab --json``), shown with the eval run it was computed from;
- scaffold runs: ``<workspace>/.promptkit/run.sqlite`` and the answers kept under ``runs/<run_id>/answers/``;
- the ledger: ``ledger.sqlite``, one entry per ledger run, one row per call with its attempts.

Every entry becomes the same shape for the page: a summary (server-rendered, escaped HTML), columns (the
variants, side by side) and rows (an item, with a cell per column); an item's detail is HTML from
``_transcript``, so it looks as it does in the static report.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptkit.errors import EvalError
from promptkit.evals._ab import result_failed
from promptkit.evals._eval_log import EvalLog, ItemResult
from promptkit.evals._report import format_diff, format_p
from promptkit.evals._transcript import TranscriptSource, esc, inputs_html, readable, result_html

__all__ = ["Entry", "Catalog", "discover"]

# Folders never worth walking into when looking for logs.
_SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", "site-packages", ".mypy_cache"}
_SKIP_DIRS |= {".ruff_cache", ".pytest_cache", ".tox", "dist", "build"}
_MAX_DEPTH = 8
_MAX_FILES = 5000
_SNIFF = 4096
_PREVIEW = 140
_LEDGER_RUNS = 500  # the most recent ledger runs listed


def _connect(path: Path) -> sqlite3.Connection:
    # Read-only: viewing a log must never change it (nor replay its journal, which a resume does).
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)


def _tables(path: Path) -> set[str]:
    try:
        with open(path, "rb") as handle:
            if handle.read(16) != b"SQLite format 3\x00":
                return set()
        db = _connect(path)
        try:
            return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            db.close()
    except (OSError, sqlite3.Error):
        return set()


def _sniff_json(path: Path) -> str | None:
    """The kind of JSON file, by its first keys: an "eval" log, an "ab" report, or None (not ours)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            head = handle.read(_SNIFF)
    except OSError:
        return None
    if not head.lstrip().startswith("{"):
        return None
    if '"suite_hash"' in head and '"run_id"' in head:
        return "eval"
    if '"comparisons"' in head or ('"metric"' in head and '"alpha"' in head and '"run_id"' in head):
        return "ab"
    return None


def _short_id(*parts: str) -> str:
    return hashlib.sha1("\x00".join(parts).encode()).hexdigest()[:12]


def _ago(ts: float | None) -> str:
    return "" if not ts else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _preview(text: str | None) -> str:
    if not text:
        return ""
    flat = " ".join(text.split())
    return flat if len(flat) <= _PREVIEW else flat[: _PREVIEW - 1] + "…"


@dataclass
class Row:
    """One line of the item table; ``cells`` has one list (of results, say repeats) per column."""

    key: str
    label: str
    sub: str
    failed: bool
    cells: dict[str, list[dict[str, Any]]]
    search: str

    def as_dict(self, n: int) -> dict[str, Any]:
        return {
            "n": n,
            "key": self.key,
            "label": self.label,
            "sub": self.sub,
            "failed": self.failed,
            "cells": self.cells,
            "search": self.search,
        }


@dataclass
class Loaded:
    summary_html: str
    columns: list[str]
    rows: list[Row]
    details: Any  # whatever detail(n) needs


@dataclass
class Entry:
    """One run in the list."""

    id: str
    kind: str  # "eval" | "ab" | "scaffold" | "ledger"
    title: str
    path: Path
    inner: str | None = None  # the run id inside a file holding several (ledger, scaffold)
    started_at: float | None = None
    status: str = ""
    error: str | None = None
    also: list[Path] = field(default_factory=list)  # other files of the same run (a JSON copy, an A/B report)
    _cache: tuple[Any, Loaded] | None = None

    def listing(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "title": self.title,
            "path": str(self.path),
            "run": self.inner,
            "started": _ago(self.started_at),
            "started_at": self.started_at,
            "status": self.status,
            "error": self.error,
        }

    def _stamp(self) -> Any:
        files = [self.path, *self.also]
        if self.kind == "eval" and self.path.suffix == ".sqlite":
            files += [
                self.path.with_name(self.path.name + ".pending"),
                self.path.with_name(self.path.name + "-wal"),
            ]
        stamps = []
        for f in files:
            try:
                st = f.stat()
                stamps.append((st.st_mtime_ns, st.st_size))
            except OSError:
                stamps.append(None)
        return tuple(stamps)

    def load(self) -> Loaded:
        """Read the entry (again only when one of its files changed); errors name the file."""
        stamp = self._stamp()
        if self._cache is not None and self._cache[0] == stamp:
            return self._cache[1]
        loader = {"eval": _load_eval, "ab": _load_ab, "scaffold": _load_scaffold, "ledger": _load_ledger}
        loaded = loader[self.kind](self)
        self._cache = (stamp, loaded)
        return loaded

    def run_json(self) -> dict[str, Any]:
        loaded = self.load()
        return {
            **self.listing(),
            "summary_html": loaded.summary_html,
            "columns": loaded.columns,
            "rows": [row.as_dict(n) for n, row in enumerate(loaded.rows)],
        }

    def item_json(self, n: int) -> dict[str, Any] | None:
        loaded = self.load()
        if not 0 <= n < len(loaded.rows):
            return None
        row = loaded.rows[n]
        detail = loaded.details(n)
        return {"n": n, "key": row.key, "label": row.label, "sub": row.sub, "failed": row.failed, **detail}


# --------------------------------------------------------------------------------------------- eval runs


def read_eval_log(path: Path) -> EvalLog:
    """An EvalLog from its JSON or its run log (header, committed rows, then the journal's), read-only."""
    from pydantic import ValidationError

    try:
        if path.suffix == ".sqlite":
            db = _connect(path)
            try:
                row = db.execute("SELECT value FROM meta WHERE key = 'header'").fetchone()
                if row is None:
                    raise EvalError("the run log has no header: it is not an eval run", location=str(path))
                header = EvalLog.model_validate_json(row[0])
                seen: set[tuple[str, str, str, int]] = set()
                results = []
                for (data,) in db.execute("SELECT data FROM results ORDER BY seq"):
                    result = ItemResult.model_validate_json(data)
                    seen.add((result.variant, result.model, result.item_id, result.repeat))
                    results.append(result)
            finally:
                db.close()
            results += _journal(path, seen)
            return header.model_copy(update={"results": results})
        return EvalLog.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        problem = "not valid JSON" if first["type"] == "json_invalid" else first["msg"]
        raise EvalError(
            f"not a readable eval log: {problem}" + (f" (at {where})" if where else ""), location=str(path)
        ) from None
    except sqlite3.Error as exc:
        raise EvalError(f"not a readable eval run log: {exc}", location=str(path)) from None
    except OSError as exc:
        raise EvalError(f"cannot read the eval log: {exc.strerror or exc}", location=str(path)) from None


def _journal(path: Path, seen: set[tuple[str, str, str, int]]) -> list[ItemResult]:
    """Results a live (or killed) run has journaled but not yet committed."""
    try:
        text = path.with_name(path.name + ".pending").read_bytes()
    except OSError:
        return []
    out = []
    for line in text.split(b"\n"):
        try:
            variant, model, item_id, repeat, data = json.loads(line)
            if (variant, model, item_id, repeat) not in seen:
                out.append(ItemResult.model_validate_json(data))
        except (ValueError, TypeError):
            continue  # a torn last line
    return out


def _badge(result: ItemResult) -> str:
    if result.error is not None:
        return "error"
    if result_failed(result):
        return "fail"
    return "pass" if result.passed else "none"


def _eval_summary(log: EvalLog, entry: Entry, ab: dict[str, Any] | None) -> str:
    by_variant: dict[str, list[ItemResult]] = defaultdict(list)
    for r in log.results:
        by_variant[r.variant].append(r)
    meta = (
        f"suite <b>{esc(log.suite)}</b> · run <code>{esc(log.run_id)}</code> · {esc(log.status)} · "
        f"started {esc(_ago(log.started_at))} · models {esc(', '.join(log.models))} · repeats {log.repeats} · "
        f"{len(log.results)} results · file <code>{esc(entry.path)}</code>"
    )
    out = [f'<p class="meta">{meta}</p>']
    if ab is not None:
        out.append(f'<p class="verdict" id="ab-verdict">A/B: {esc(ab.get("verdict", ""))}</p>')
    heads = ["variant", "template", "results", "pass rate", "errors", "cost", "mean latency", "tokens in/out"]
    out.append('<table id="variants"><thead><tr>' + "".join(f"<th>{h}</th>" for h in heads) + "</tr></thead>")
    names = [v.name for v in log.variants] + [
        n for n in by_variant if n not in {v.name for v in log.variants}
    ]
    templates = {v.name: v.template for v in log.variants}
    for name in names:
        rs = by_variant.get(name, [])
        verdicts = [r for r in rs if r.passed is not None or r.error is not None]
        rate = f"{100 * sum(1 for r in verdicts if r.passed) / len(verdicts):.1f}%" if verdicts else "–"
        latency = sum(r.latency_s for r in rs) / len(rs) if rs else 0.0
        out.append(
            f"<tr><td>{esc(name)}</td><td>{esc(templates.get(name, ''))}</td><td>{len(rs)}</td>"
            f'<td class="num">{rate}</td><td class="num">{sum(1 for r in rs if r.error)}</td>'
            f'<td class="num">${sum(r.cost_usd for r in rs):.4f}</td><td class="num">{latency:.3f} s</td>'
            f'<td class="num">{sum(r.input_tokens for r in rs)} / {sum(r.output_tokens for r in rs)}</td></tr>'
        )
    out.append("</table>")
    if ab is not None and ab.get("comparisons"):
        out.append('<table id="comparisons"><thead><tr><th>A</th><th>B</th><th>n</th><th>B − A</th>')
        out.append("<th>p</th><th>significant</th><th>verdict</th></tr></thead>")
        kind = ab.get("kind", "binary")
        for c in ab["comparisons"]:
            out.append(
                f"<tr><td>{esc(c.get('a'))}</td><td>{esc(c.get('b'))}</td><td>{esc(c.get('n'))}</td>"
                f'<td class="num">{esc(format_diff(float(c.get("diff", 0.0)), kind))}</td>'
                f'<td class="num">{esc(format_p(float(c.get("adjusted_p", c.get("p_value", 1.0)))))}</td>'
                f"<td>{'yes' if c.get('significant') else 'no'}</td><td>{esc(c.get('verdict', ''))}</td></tr>"
            )
        out.append("</table>")
    return "".join(out)


def _load_eval(entry: Entry) -> Loaded:
    log = read_eval_log(entry.path)
    ab = None
    for other in entry.also:
        if _sniff_json(other) == "ab":
            try:
                data = json.loads(other.read_text(encoding="utf-8"))
                ab = data if data.get("run_id") == log.run_id else ab
            except (OSError, ValueError):
                pass
    entry.status = log.status
    columns = [v.name for v in log.variants]
    columns += sorted({r.variant for r in log.results} - set(columns))
    grouped: dict[tuple[str, str], list[ItemResult]] = {}
    for result in log.results:
        grouped.setdefault((result.model, result.item_id), []).append(result)
    multi_model = len({m for m, _ in grouped}) > 1
    rows: list[Row] = []
    for (model, item_id), results in grouped.items():
        results.sort(key=lambda r: (r.variant, r.repeat))
        cells: dict[str, list[dict[str, Any]]] = {}
        words = [item_id, model, *map(readable, results[0].inputs.values()), readable(results[0].expected)]
        for r in results:
            cells.setdefault(r.variant, []).append(
                {"badge": _badge(r), "repeat": r.repeat, "preview": _preview(r.error or r.output)}
            )
            words += [r.output or "", r.error or "", *(s.rationale or "" for s in r.scores)]
        rows.append(
            Row(
                key=f"{model}\x00{item_id}",
                label=item_id,
                sub=model if multi_model else "",
                failed=any(result_failed(r) for r in results),
                cells=cells,
                search="\n".join(words).lower(),
            )
        )
    transcripts = TranscriptSource(log, entry.path)

    def details(n: int) -> dict[str, Any]:
        model, item_id = rows[n].key.split("\x00", 1)
        results = grouped[(model, item_id)]
        first = results[0]
        panes = []
        for name in columns:
            mine = sorted((r for r in results if r.variant == name), key=lambda r: r.repeat)
            if not mine:
                continue
            body = []
            for r in mine:
                head = f'<span class="badge {_badge(r)}">{_badge(r).upper()}</span>'
                if len(mine) > 1:
                    head += f" repeat {r.repeat}"
                body.append(
                    f'<div class="result" data-repeat="{r.repeat}">{head}'
                    f"{result_html(r, transcripts.for_result(r))}</div>"
                )
            panes.append(
                f'<div class="pane" data-variant="{esc(name)}"><h3>{esc(name)}</h3>{"".join(body)}</div>'
            )
        html = (
            f"<h3>inputs</h3>{inputs_html(first.inputs, first.expected)}"
            f'<div class="panes">{"".join(panes)}</div>'
        )
        return {"html": html, "inputs": first.inputs, "expected": first.expected}

    return Loaded(_eval_summary(log, entry, ab), columns, rows, details)


def _load_ab(entry: Entry) -> Loaded:
    try:
        data = json.loads(entry.path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not an object")
    except (OSError, ValueError) as exc:
        raise EvalError(f"not a readable A/B report: {exc}", location=str(entry.path)) from None
    summary = (
        f'<p class="verdict" id="ab-verdict">A/B: {esc(data.get("verdict", ""))}</p>'
        f'<p class="note">The eval log of run {esc(data.get("run_id", "?"))} was not found under the path '
        "given, so there are no items to show: open the folder holding both.</p>"
    )
    return Loaded(summary, [], [], lambda n: {"html": ""})


# ---------------------------------------------------------------------------------------- scaffold runs


def _load_scaffold(entry: Entry) -> Loaded:
    try:
        db = _connect(entry.path)
        try:
            run = db.execute(
                "SELECT workspace, plan_json, status, created_at FROM runs WHERE run_id = ?", (entry.inner,)
            ).fetchone()
            steps = [
                json.loads(d)
                for (d,) in db.execute(
                    "SELECT data FROM steps WHERE run_id = ? ORDER BY position", (entry.inner,)
                )
            ]
        finally:
            db.close()
    except (sqlite3.Error, ValueError) as exc:
        raise EvalError(f"not a readable scaffold run state: {exc}", location=str(entry.path)) from None
    if run is None:
        raise EvalError(f"no run {entry.inner!r}", location=str(entry.path))
    workspace, plan_json, status, _ = run
    try:
        plan_steps = {s.get("id"): s for s in json.loads(plan_json).get("steps", [])}
    except (ValueError, AttributeError):
        plan_steps = {}
    answers_dir = entry.path.parent / "runs" / str(entry.inner) / "answers"
    rows = []
    for state in steps:
        step = plan_steps.get(state.get("step_id"), {})
        failed = state.get("status") == "failed"
        rows.append(
            Row(
                key=str(state.get("step_id")),
                label=str(state.get("step_id")),
                sub=str(step.get("title", "")),
                failed=failed,
                cells={
                    "step": [
                        {
                            "badge": {"passed": "pass", "failed": "fail"}.get(state.get("status"), "none"),
                            "repeat": 0,
                            "preview": _preview(
                                f"{state.get('status')} · {state.get('attempts', 0)} attempt(s) · "
                                + ((state.get("errors") or [""])[-1] or state.get("reason") or "")
                            ),
                        }
                    ]
                },
                search="\n".join(
                    [
                        str(state.get("step_id")),
                        str(step.get("title", "")),
                        *map(str, state.get("errors", [])),
                    ]
                ).lower(),
            )
        )

    def details(n: int) -> dict[str, Any]:
        state = steps[n]
        step = plan_steps.get(state.get("step_id"), {})
        parts = [f"<p>{esc(step.get('title', ''))} · {esc(step.get('kind', ''))}</p>"]
        if step.get("description"):
            parts.append(f'<pre class="description">{esc(step["description"])}</pre>')
        if step.get("template"):
            parts.append(f"<h4>template</h4><p><code>{esc(step['template'])}</code></p>")
        if step.get("inputs"):
            parts.append(f"<h4>inputs</h4>{inputs_html(step['inputs'])}")
        parts.append(
            '<p class="note transcript-missing">The run state keeps no rendered prompts for scaffold steps '
            "(it records each answer and each error): no transcript.</p>"
        )
        files = sorted(answers_dir.joinpath(str(state.get("step_id"))).glob("*.md"))
        errors = list(state.get("errors", []))
        parts.append("<h4>attempts</h4>")
        if not files and not errors:
            parts.append('<p class="note">no answers kept</p>')
        for i, path in enumerate(files):
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                text = "(unreadable)"
            parts.append(f'<div class="attempt"><b>{esc(path.stem)}</b><pre class="output">{esc(text)}</pre>')
            if i < len(errors):
                parts.append(f'<pre class="error attempt-error">{esc(errors[i])}</pre>')
            parts.append("</div>")
        for error in errors[len(files) :]:
            parts.append(f'<pre class="error attempt-error">{esc(error)}</pre>')
        if state.get("verifiers"):
            parts.append("<h4>verifiers</h4>")
            parts.append(f'<pre class="verifiers">{esc(readable(state["verifiers"]))}</pre>')
        parts.append(
            f'<p class="metrics">model {esc(state.get("model") or "–")} · tier {esc(state.get("tier_name") or "–")} · '
            f"tokens {state.get('input_tokens', 0)} in / {state.get('output_tokens', 0)} out · "
            f"cost ${float(state.get('cost_usd', 0.0)):.6f} · {float(state.get('duration_s', 0.0)):.2f} s"
            + (f" · {esc(state['reason'])}" if state.get("reason") else "")
            + "</p>"
        )
        return {"html": "".join(parts)}

    entry.status = str(status)
    summary = (
        f'<p class="meta">scaffold run <code>{esc(entry.inner)}</code> · {esc(status)} · workspace '
        f"<code>{esc(workspace)}</code> · {len(steps)} steps, "
        f"{sum(1 for s in steps if s.get('status') == 'failed')} failed · "
        f"cost ${sum(float(s.get('cost_usd', 0.0)) for s in steps):.4f}</p>"
    )
    return Loaded(summary, ["step"], rows, details)


# -------------------------------------------------------------------------------------------- the ledger

_LEDGER_COLUMNS = (
    "call_id, attempt, ts, template, model, tier, input_tokens, output_tokens, cost_usd, latency_s, "
    "cache, reason, outcome, error"
)


def _load_ledger(entry: Entry) -> Loaded:
    try:
        db = _connect(entry.path)
        try:
            rows_ = db.execute(
                f"SELECT {_LEDGER_COLUMNS} FROM ledger_attempts WHERE run_id = ? ORDER BY id", (entry.inner,)
            ).fetchall()
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise EvalError(f"not a readable ledger: {exc}", location=str(entry.path)) from None
    names = [c.strip() for c in _LEDGER_COLUMNS.split(",")]
    calls: dict[str, list[dict[str, Any]]] = {}
    for values in rows_:
        attempt = dict(zip(names, values, strict=True))
        calls.setdefault(attempt["call_id"], []).append(attempt)
    keys = list(calls)
    rows = []
    for call_id, attempts in calls.items():
        ok = any(a["outcome"] in ("ok", "cache_hit") for a in attempts)
        last = attempts[-1]
        rows.append(
            Row(
                key=call_id,
                label=str(last["template"] or call_id),
                sub=call_id,
                failed=not ok,
                cells={
                    "call": [
                        {
                            "badge": "pass" if ok else "fail",
                            "repeat": 0,
                            "preview": _preview(
                                f"{len(attempts)} attempt(s) · {last['model']} · {last['outcome']}"
                                + (f" · {last['error']}" if last["error"] else "")
                            ),
                        }
                    ]
                },
                search="\n".join(
                    str(a[k] or "") for a in attempts for k in ("template", "model", "error")
                ).lower(),
            )
        )

    def details(n: int) -> dict[str, Any]:
        attempts = calls[keys[n]]
        heads = ["#", "model", "tier", "why", "outcome", "tokens in/out", "cost", "latency", "cache"]
        parts = [
            '<p class="note transcript-missing">The ledger records what each attempt cost and how it ended, '
            "never the prompt or the answer: no transcript or output.</p>",
            '<table class="attempts"><thead><tr>' + "".join(f"<th>{h}</th>" for h in heads) + "</tr></thead>",
        ]
        for a in attempts:
            parts.append(
                f'<tr class="attempt"><td>{a["attempt"]}</td><td>{esc(a["model"])}</td>'
                f"<td>{esc(a['tier'] if a['tier'] is not None else '–')}</td><td>{esc(a['reason'] or 'first')}</td>"
                f"<td>{esc(a['outcome'])}</td><td>{a['input_tokens']} / {a['output_tokens']}</td>"
                f"<td>${float(a['cost_usd']):.6f}</td><td>{float(a['latency_s']):.3f} s</td>"
                f"<td>{esc(a['cache'] or '–')}</td></tr>"
            )
            if a["error"]:
                parts.append(
                    f'<tr><td></td><td colspan="8"><pre class="error attempt-error">{esc(a["error"])}</pre></td></tr>'
                )
        parts.append("</table>")
        return {"html": "".join(parts)}

    total = sum(float(a[names.index("cost_usd")]) for a in rows_)
    summary = (
        f'<p class="meta">ledger run <code>{esc(entry.inner)}</code> · {len(calls)} calls, {len(rows_)} attempts, '
        f"{sum(1 for r in rows if r.failed)} failed · cost ${total:.4f} · file <code>{esc(entry.path)}</code></p>"
    )
    return Loaded(summary, ["call"], rows, details)


# ------------------------------------------------------------------------------------------- discovery


def _walk(root: Path) -> Iterator[Path]:
    count = 0
    base_depth = len(root.parts)
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        if len(here.parts) - base_depth >= _MAX_DEPTH:
            dirs[:] = []
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.endswith(".egg-info"))
        for name in sorted(files):
            if name.endswith((".json", ".sqlite")):
                count += 1
                if count > _MAX_FILES:
                    return
                yield here / name


def _entries_of(path: Path, explicit: bool) -> list[Entry]:
    """The entries one file holds; ``explicit``: the user named it, so anything unreadable is an error."""
    if path.suffix == ".json":
        kind = _sniff_json(path)
        if kind is None:
            if explicit:
                raise EvalError(
                    "not an eval log or A/B report (JSON with a suite, run_id and results)",
                    location=str(path),
                )
            return []
        title = path.stem
        return [Entry(id=_short_id(str(path)), kind=kind, title=title, path=path)]
    tables = _tables(path)
    if {"meta", "results"} <= tables:
        return [Entry(id=_short_id(str(path)), kind="eval", title=path.stem, path=path)]
    out = []
    try:
        if {"runs", "steps"} <= tables:
            db = _connect(path)
            try:
                for run_id, created, status in db.execute(
                    "SELECT run_id, created_at, status FROM runs ORDER BY created_at DESC"
                ):
                    out.append(
                        Entry(
                            id=_short_id(str(path), run_id),
                            kind="scaffold",
                            title=f"scaffold {run_id}",
                            path=path,
                            inner=run_id,
                            started_at=created,
                            status=str(status),
                        )
                    )
            finally:
                db.close()
        elif "ledger_attempts" in tables:
            db = _connect(path)
            try:
                found = db.execute(
                    "SELECT run_id, started_at, name FROM ledger_runs ORDER BY started_at DESC LIMIT ?",
                    (_LEDGER_RUNS,),
                ).fetchall()
            finally:
                db.close()
            for run_id, started, name in found:
                out.append(
                    Entry(
                        id=_short_id(str(path), run_id),
                        kind="ledger",
                        title=f"ledger: {name or run_id}",
                        path=path,
                        inner=run_id,
                        started_at=started,
                    )
                )
        elif explicit:
            raise EvalError(
                "not an eval run log, scaffold run state or ledger (no tables promptkit writes)",
                location=str(path),
            )
    except sqlite3.Error as exc:
        raise EvalError(f"cannot read: {exc}", location=str(path)) from None
    return out


def _header_of(entry: Entry, explicit: bool) -> None:
    """Fill the title, run id, start and status of an eval entry from its header. A bad log gets its error
    (shown in the list), or raises it when the user named the file."""
    try:
        if entry.path.suffix == ".sqlite":
            db = _connect(entry.path)
            try:
                row = db.execute("SELECT value FROM meta WHERE key = 'header'").fetchone()
            finally:
                db.close()
            if row is None:
                raise EvalError("the run log has no header: it is not an eval run", location=str(entry.path))
            head = json.loads(row[0])
        elif entry.kind == "ab":
            head = json.loads(entry.path.read_text(encoding="utf-8"))
        else:
            head = read_eval_log(entry.path).model_dump(exclude={"results"})
        if not isinstance(head, dict):
            raise ValueError("not an object")
        entry.inner = str(head.get("run_id", ""))
        entry.title = f"{'A/B ' if entry.kind == 'ab' else ''}{head.get('suite', entry.title)}"
        entry.started_at = head.get("started_at")
        entry.status = str(head.get("status", ""))
    except (OSError, ValueError, sqlite3.Error) as exc:
        problem = EvalError(f"cannot read: {exc}", location=str(entry.path))
        if explicit:
            raise problem from None
        entry.error = str(problem)
    except EvalError as exc:
        if explicit:
            raise
        entry.error = str(exc)


def discover(path: Path, extra: Sequence[Path] = ()) -> list[Entry]:
    """Every run under ``path`` (a file or a folder) and the ``extra`` folders, newest first. Raises
    EvalError naming the path when there is none, or when a file named directly is not a readable log."""
    path = Path(path)
    if not path.exists():
        raise EvalError("no such file or folder", location=str(path))
    explicit = path.is_file()
    files = [path] if explicit else list(_walk(path))
    seen = {f.resolve() for f in files}
    for folder in (Path(f) for f in extra):
        if folder.is_dir():
            files += [f for f in _walk(folder) if f.resolve() not in seen]
    entries = [e for f in files for e in _entries_of(f, explicit)]
    for entry in entries:
        if entry.kind in ("eval", "ab"):
            _header_of(entry, explicit)
    # One entry per eval run: the run log (it is the newest) with its JSON copy and A/B reports as extras.
    by_run: dict[str, list[Entry]] = defaultdict(list)
    for entry in entries:
        if entry.kind in ("eval", "ab") and entry.inner and not entry.error:
            by_run[entry.inner].append(entry)
    dropped: set[int] = set()
    for group in by_run.values():
        evals = sorted((e for e in group if e.kind == "eval"), key=lambda e: e.path.suffix != ".sqlite")
        if not evals:
            continue
        keep = evals[0]
        for other in group:
            if other is not keep:
                keep.also.append(other.path)
                dropped.add(id(other))
    entries = [e for e in entries if id(e) not in dropped]
    if not entries:
        raise EvalError(
            "no eval logs, A/B reports, scaffold runs or ledger found here "
            "(looked for *.json and *.sqlite that promptkit writes)",
            location=", ".join(str(p) for p in [path, *extra]),
        )
    entries.sort(key=lambda e: -(e.started_at or 0.0))
    return entries


class Catalog:
    """The entries of a path, found again on request (new runs appear) while loaded ones stay cached."""

    def __init__(self, path: Path, extra: Sequence[Path] = ()) -> None:
        self.path = Path(path)
        self.extra = [Path(p) for p in extra]
        self.entries = {e.id: e for e in discover(self.path, self.extra)}

    def refresh(self) -> None:
        try:
            found = discover(self.path, self.extra)
        except EvalError:
            return  # keep what was there: the page still works
        for entry in found:
            old = self.entries.get(entry.id)
            if old is not None:  # keep its cache; what the listing says may have changed
                entry._cache = old._cache
        self.entries = {e.id: e for e in found}

    def listing(self) -> list[dict[str, Any]]:
        return [e.listing() for e in self.entries.values()]

"""The run report: every step's status, attempts, verifier results and the model that passed, plus totals."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from promptkit.execution._runstate import StepStatus

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["RunReport", "StepReport", "RunTotals", "NO_MODEL_HINT"]

# Shown wherever a model step could not run because no model is configured.
NO_MODEL_HINT = (
    "no model is configured: pass --model local:/path/model.gguf for a local GGUF model "
    "(try the path with `promptkit models make-tiny`), or --model litellm:openai/gpt-4o-mini with "
    "OPENAI_API_KEY set for a remote API, or --router promptkit.toml with a [router] table"
)


class StepReport(BaseModel):
    id: str
    title: str
    kind: str
    status: StepStatus
    attempts: int = 0
    tier: int | None = None
    tier_name: str | None = None
    model: str | None = None
    escalations: int = 0
    reason: str | None = None
    errors: list[str] = Field(default_factory=list)
    verifiers: list[dict[str, Any]] = Field(default_factory=list)
    files: dict[str, str | None] = Field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    cache_hits: int = 0
    duration_s: float = 0.0
    verifier_s: float = 0.0
    runs: int = 0


class RunTotals(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    escalations: int = 0
    cache_hits: int = 0
    model_calls: int = 0


class RunReport(BaseModel):
    """What a run did. ``ok`` is False when any step failed; skipped steps are listed with their reason."""

    run_id: str
    workspace: str
    spec: str
    planner: str
    steps: list[StepReport]
    totals: RunTotals = Field(default_factory=RunTotals)
    # The ledger's own sums for this run (all processes that took part), when a ledger was used.
    ledger: dict[str, Any] | None = None
    no_model: bool = False
    hint: str | None = None
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not any(s.status == "failed" for s in self.steps)

    def count(self, status: str) -> int:
        return sum(1 for s in self.steps if s.status == status)

    @property
    def complete(self) -> bool:
        """Every step passed."""
        return all(s.status == "passed" for s in self.steps)

    def summary(self) -> str:
        parts = [f"{self.count(s)} {s}" for s in ("passed", "failed", "skipped", "pending") if self.count(s)]
        line = f"run {self.run_id}: " + ", ".join(parts)
        line += (
            f"; tokens {self.totals.input_tokens}+{self.totals.output_tokens}, cost ${self.totals.cost_usd:.4f}, "
            f"escalations {self.totals.escalations}, cache hits {self.totals.cache_hits}"
        )
        return line

    def write(self, path: str | Path) -> Path:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
        tmp.replace(target)
        return target

    def table(self) -> Table:
        from rich.markup import escape
        from rich.table import Table

        colors = {
            "passed": "green",
            "failed": "red",
            "skipped": "yellow",
            "pending": "dim",
            "running": "cyan",
        }
        table = Table(title=f"scaffold {escape(self.spec)} — run {escape(self.run_id)}", show_lines=False)
        table.add_column("step", no_wrap=True)
        table.add_column("kind")
        table.add_column("status", no_wrap=True)
        table.add_column("att.", justify="right")
        table.add_column("model (tier)", overflow="fold")
        table.add_column("tokens", justify="right")
        table.add_column("s", justify="right")
        table.add_column("verifiers")
        table.add_column("note", overflow="fold", ratio=1)
        for step in self.steps:
            verdicts = " ".join(
                f"[{'green' if v.get('ok') else 'red'}]{escape(str(v.get('name')))}[/]"
                for v in step.verifiers
            )
            model = "-"
            if step.model:
                model = f"{step.model} ({step.tier_name if step.tier_name is not None else step.tier})"
            note = step.reason or (step.errors[-1] if step.errors else "")
            if NO_MODEL_HINT in note:
                note = "no model configured (see below)"
            elif note.endswith("(no model configured)"):
                note = note.replace(", which was skipped (no model configured)", " (no model)")
            if len(note) > 160:
                note = note[:157] + "..."
            table.add_row(
                escape(step.id),
                step.kind,
                f"[{colors.get(step.status, 'white')}]{step.status}[/]",
                str(step.attempts),
                escape(model),
                f"{step.input_tokens}+{step.output_tokens}"
                if step.input_tokens or step.output_tokens
                else "-",
                f"{step.duration_s:.0f}",
                verdicts or "-",
                escape(note),
            )
        t = self.totals
        table.caption = (
            f"tokens {t.input_tokens}+{t.output_tokens} · cost ${t.cost_usd:.4f} · "
            f"escalations {t.escalations} · cache hits {t.cache_hits}"
        )
        return table

"""The ledger: one SQLite row per attempt (tokens, cost, latency, cache, why it happened, how it ended).

with default_ledger() as ledger:
    run = ledger.new_run("nightly eval")
    ledger.record(LedgerEntry(run_id=run, call_id=call, model="cheap", outcome="ok", input_tokens=812))
    print(ledger.totals(run).cost_usd)
"""

from promptkit.ledger._ledger import LEDGER_FILE, Ledger, default_ledger
from promptkit.ledger._rows import (
    OUTCOMES,
    REASONS,
    SUCCESS_OUTCOMES,
    LedgerEntry,
    LedgerTotals,
    RunSummary,
)
from promptkit.ledger._savings import CascadeSavings, TierUsage, cascade_savings, tier_usage
from promptkit.ledger._scrub import scrub_secrets, scrub_value

__all__ = [
    "CascadeSavings",
    "LEDGER_FILE",
    "OUTCOMES",
    "REASONS",
    "SUCCESS_OUTCOMES",
    "Ledger",
    "LedgerEntry",
    "LedgerTotals",
    "RunSummary",
    "TierUsage",
    "cascade_savings",
    "default_ledger",
    "scrub_secrets",
    "scrub_value",
    "tier_usage",
]

"""Per-run dollar and token caps, checked against each call's worst case before it is sent."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from promptkit.errors import BudgetExceeded, ConfigError

__all__ = ["Budget", "BudgetTracker", "Reservation", "Spend"]


@dataclass(frozen=True)
class Budget:
    """Caps for one run. ``default_output_tokens`` is the output worst case when a call sets no max_tokens."""

    max_usd: float | None = None
    max_tokens: int | None = None
    default_output_tokens: int = 1024

    def __post_init__(self) -> None:
        if self.max_usd is not None and self.max_usd < 0:
            raise ConfigError(f"max_usd must be >= 0, got {self.max_usd}", location="[router.budget]")
        if self.max_tokens is not None and self.max_tokens < 0:
            raise ConfigError(f"max_tokens must be >= 0, got {self.max_tokens}", location="[router.budget]")
        if self.default_output_tokens < 1:
            raise ConfigError("default_output_tokens must be >= 1", location="[router.budget]")

    @property
    def active(self) -> bool:
        return self.max_usd is not None or self.max_tokens is not None


@dataclass
class Spend:
    """Money and tokens spent by a run, plus what calls in flight may still spend (their worst case)."""

    usd: float = 0.0
    tokens: int = 0
    reserved_usd: float = 0.0
    reserved_tokens: int = 0


@dataclass(frozen=True)
class Reservation:
    run_id: str
    usd: float
    tokens: int


class BudgetTracker:
    """Counts each run's spend; a call reserves its worst case before sending and settles after.

    Reserving counts calls in flight, so concurrent calls cannot together overshoot the cap.
    """

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self._runs: dict[str, Spend] = {}
        self._lock = threading.Lock()

    def spent(self, run_id: str) -> Spend:
        with self._lock:
            s = self._runs.get(run_id, Spend())
            return Spend(s.usd, s.tokens, s.reserved_usd, s.reserved_tokens)

    def reserve(self, run_id: str, usd: float, tokens: int, *, what: str) -> Reservation:
        """Hold ``usd``/``tokens`` for a call about to be sent, or raise ``BudgetExceeded`` naming the cap."""
        b = self.budget
        with self._lock:
            s = self._runs.setdefault(run_id, Spend())
            committed_usd = s.usd + s.reserved_usd
            committed_tokens = s.tokens + s.reserved_tokens
            if b.max_usd is not None and committed_usd + usd > b.max_usd:
                raise BudgetExceeded(
                    f"{what} refused before sending: worst-case cost ${usd:.6f} on top of ${committed_usd:.6f} "
                    f"already spent or reserved would exceed the run's cap of ${b.max_usd:.6f}",
                    location=f"run {run_id}",
                )
            if b.max_tokens is not None and committed_tokens + tokens > b.max_tokens:
                raise BudgetExceeded(
                    f"{what} refused before sending: worst case of {tokens} tokens on top of {committed_tokens} "
                    f"already spent or reserved would exceed the run's cap of {b.max_tokens} tokens",
                    location=f"run {run_id}",
                )
            s.reserved_usd += usd
            s.reserved_tokens += tokens
        return Reservation(run_id, usd, tokens)

    def settle(self, reservation: Reservation, usd: float, tokens: int) -> None:
        """Release a reservation and count what the call really spent."""
        with self._lock:
            s = self._runs.setdefault(reservation.run_id, Spend())
            s.reserved_usd = max(0.0, s.reserved_usd - reservation.usd)
            s.reserved_tokens = max(0, s.reserved_tokens - reservation.tokens)
            s.usd += usd
            s.tokens += tokens

    def add(self, run_id: str, usd: float, tokens: int) -> None:
        """Count spend that did not go through a reservation (e.g. restored from the ledger)."""
        with self._lock:
            s = self._runs.setdefault(run_id, Spend())
            s.usd += usd
            s.tokens += tokens

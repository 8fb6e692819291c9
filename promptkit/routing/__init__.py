"""Cost-aware routing: static rules, the tier cascade, transport fallback, budgets and in-flight limits.

Build a router in code::

    Router([Tier("cheap", ["local:models/qwen.gguf"]),
            Tier("strong", ["litellm:openai/gpt-4o-mini", "litellm:anthropic/claude-3-5-haiku"])],
           rules=[Rule(kind="plan", start_tier="strong")],
           budget=Budget(max_usd=2.0), retry=RetryPolicy(max_retries=2))

or from the ``[router]`` table of promptkit.toml with ``Router.from_config()``. ``generate()`` drives the
cascade: the cheapest tier whose answer passes validation and the acceptance check wins.
"""

from promptkit.routing._attempts import Attempt, CallContext, new_call_id
from promptkit.routing._cost_budget import Budget, BudgetTracker, Reservation, Spend
from promptkit.routing._router import Answer, Route, Router, attempt_cost, new_run_id
from promptkit.routing._rules import RetryPolicy, RouteFeatures, Rule, StartTierPolicy
from promptkit.routing._tiers import Deployment, Tier

__all__ = [
    "Answer",
    "Attempt",
    "Budget",
    "BudgetTracker",
    "CallContext",
    "Deployment",
    "Reservation",
    "RetryPolicy",
    "Route",
    "RouteFeatures",
    "Router",
    "Rule",
    "Spend",
    "StartTierPolicy",
    "Tier",
    "attempt_cost",
    "new_call_id",
    "new_run_id",
]

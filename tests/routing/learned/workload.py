"""A scripted workload where the cheap tier fails on one kind of input: what the ledger-learning tests run."""

from __future__ import annotations

from promptkit.backends import FunctionBackend, GenerateRequest
from promptkit.generation import agenerate
from promptkit.ledger import Ledger
from promptkit.prompts import Template
from promptkit.routing import Deployment, Router, StartTierPolicy, Tier

# A promptkit.toml with two tiers and a [router.learned] table to fill in.
CONFIG = """\
[models.cheap]
model = "litellm:openai/cheap"
tier = 0
[models.strong]
model = "litellm:openai/strong"
tier = 1
[router]
tiers = ["cheap", "strong"]
[router.learned]
{learned}
"""

TEMPLATE = Template.from_dict(
    {
        "name": "solve",
        "version": "1.0.0",
        "description": "Solve a task.",
        "tags": {"technique": ["role"], "task": ["general"]},
        "inputs": {"task": {"type": "string"}},
        "messages": [{"role": "user", "content": "Solve: {{ task }}"}],
    }
)
# (task, kind): the cheap model gets every "hard" task wrong.
WORKLOAD = [(f"easy task number {i}", "easy") for i in range(6)] + [
    (f"HARD task number {i}", "hard") for i in range(6)
]


def _cheap(request: GenerateRequest) -> str:
    return "wrong" if "HARD" in request.messages[-1].content else "right"


def make_router(
    start_policy: StartTierPolicy | None = None,
) -> tuple[Router, FunctionBackend, FunctionBackend]:
    cheap = FunctionBackend(_cheap, name="cheap")
    strong = FunctionBackend(lambda request: "right", name="strong")
    router = Router(
        [
            Tier("cheap", [Deployment(cheap, input_cost_per_token=1e-6, output_cost_per_token=1e-6)]),
            Tier("strong", [Deployment(strong, input_cost_per_token=1e-4, output_cost_per_token=1e-4)]),
        ],
        max_attempts_per_tier=1,
        start_policy=start_policy,
    )
    return router, cheap, strong


def accept(output: str) -> bool | str:
    return True if output.strip() == "right" else f"expected 'right', got {output!r}"


async def run_workload(router: Router, ledger: Ledger, run_id: str) -> None:
    for task, kind in WORKLOAD:
        result = await agenerate(
            TEMPLATE,
            {"task": task},
            router=router,
            accept=accept,
            kind=kind,
            cache=False,
            ledger=ledger,
            run_id=run_id,
        )
        assert result.output == "right"

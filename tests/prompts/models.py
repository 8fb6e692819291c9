"""A pydantic output model that a fixture template points at (`output: {model: ...}`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class Ticket(BaseModel):
    category: Literal["billing", "bug", "account", "feature"]


# An output type that is not a model itself: `output: {model: "tests.prompts.models:Tickets"}`.
Tickets = list[Ticket]

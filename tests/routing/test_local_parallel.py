"""A local deployment takes as many calls in flight as its backend has batch slots (``parallel``)."""

from __future__ import annotations

from promptkit.backends import FunctionBackend
from promptkit.routing import Deployment


def local_backend(parallel: int | None) -> FunctionBackend:
    backend = FunctionBackend(lambda request: "ok", name="local:fake")
    backend.is_local = True  # type: ignore[attr-defined]
    if parallel is not None:
        backend.parallel = parallel  # type: ignore[attr-defined]
    return backend


def test_a_local_model_takes_one_call_at_a_time_unless_it_batches() -> None:
    assert Deployment(local_backend(None)).limit == 1
    assert Deployment(local_backend(1)).limit == 1
    assert Deployment(local_backend(4)).limit == 4


def test_an_explicit_concurrency_still_wins() -> None:
    assert Deployment(local_backend(4), concurrency=2).limit == 2

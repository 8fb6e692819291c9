"""Call ids: unique, unaffected by the user's random.seed(), and different in a forked child."""

from __future__ import annotations

import multiprocessing
import random

from promptkit.routing import new_call_id


def test_call_ids_are_unique_and_ignore_the_global_seed():
    random.seed(0)
    first = [new_call_id() for _ in range(1000)]
    random.seed(0)
    second = [new_call_id() for _ in range(1000)]
    assert len(set(first + second)) == 2000
    assert all(len(c) == 16 and int(c, 16) >= 0 for c in first)


def _child(queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    queue.put([new_call_id() for _ in range(50)])


def test_a_forked_child_draws_different_ids():
    new_call_id()  # the parent's generator state is what the child inherits
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child, args=(queue,))
    child.start()
    theirs = queue.get(timeout=30)
    child.join(timeout=30)
    ours = [new_call_id() for _ in range(50)]
    assert not set(theirs) & set(ours)

"""StubOpenAIServer keeps its configured latency: never early, and not a millisecond late on an idle loop."""

from __future__ import annotations

import http.client
import json
import time
from typing import Any

from promptkit.backends import Fault, StubOpenAIServer

BODY = json.dumps({"model": "stub", "messages": [{"role": "user", "content": "hello"}]})
# Not a whole number of milliseconds: asyncio's epoll wait rounds each timeout up to one, so a plain
# asyncio.sleep(0.0504) answered ~1.0 ms late (measured); the stub's precise wait answers ~0.3 ms late.
LATENCY = 0.0504
# Asserted on the best of several requests, so that a loaded CI machine does not make it flaky.
TOLERANCE = 0.00075


def _timed_posts(stub: StubOpenAIServer, n: int) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", stub.port, timeout=10)
    seen = []
    try:
        for _ in range(n):
            start = time.perf_counter()
            conn.request(
                "POST", "/v1/chat/completions", body=BODY, headers={"Content-Type": "application/json"}
            )
            response = conn.getresponse()
            response.read()
            seen.append(time.perf_counter() - start)
            assert response.status == 200
    finally:
        conn.close()
    return seen


def test_realised_latency_is_the_configured_latency() -> None:
    with StubOpenAIServer(reply="ok", latency_s=LATENCY) as stub:
        client_side = _timed_posts(stub, 8)
        realised = [r.latency_s for r in stub.requests]
    assert all(r is not None for r in realised)
    assert min(client_side) >= LATENCY  # never early, as the client sees it
    assert all(r >= LATENCY for r in realised)  # type: ignore[operator]
    assert min(realised) - LATENCY < TOLERANCE, realised  # type: ignore[type-var,operator]


def test_the_reply_work_counts_toward_the_latency_not_on_top_of_it() -> None:
    def slow_reply(body: dict[str, Any]) -> str:
        time.sleep(0.02)  # CPU or I/O the server spends on the answer
        return "ok"

    with StubOpenAIServer(reply=slow_reply, latency_s=LATENCY) as stub:
        _timed_posts(stub, 4)
        realised = [r.latency_s for r in stub.requests]
    assert all(r is not None and r >= LATENCY for r in realised)
    # Timed from the request's arrival: the 20 ms of reply work falls inside the 50 ms, not after it.
    assert min(realised) - LATENCY < 0.01, realised  # type: ignore[type-var,operator]


def test_slow_fault_adds_to_the_same_deadline_and_a_drop_is_never_answered() -> None:
    with StubOpenAIServer(reply="ok", latency_s=LATENCY, faults=[Fault.slow(0.1), Fault.drop()]) as stub:
        conn = http.client.HTTPConnection("127.0.0.1", stub.port, timeout=10)
        conn.request("POST", "/v1/chat/completions", body=BODY, headers={"Content-Type": "application/json"})
        assert conn.getresponse().read()
        conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", stub.port, timeout=10)
        conn.request("POST", "/v1/chat/completions", body=BODY, headers={"Content-Type": "application/json"})
        try:
            conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionError):
            pass
        finally:
            conn.close()
        slow, dropped = stub.requests
    assert slow.latency_s is not None and LATENCY + 0.1 <= slow.latency_s < LATENCY + 0.1 + 0.05
    assert dropped.latency_s is None

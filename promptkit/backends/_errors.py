"""Map SDK exceptions (litellm, openai, httpx, aiohttp, asyncio) onto promptkit's error tree.

The mapping looks at the whole exception chain, because litellm wraps transport faults in status-coded
errors: a dropped connection arrives as ``InternalServerError(500)`` around ``openai.APIConnectionError``,
a non-JSON body as ``InternalServerError(500)`` around ``JSONDecodeError``. The cause decides, not the wrapper.
Nothing here imports an SDK: classes are recognised by module and name.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import re
import time
from collections.abc import Iterable, Iterator
from typing import Any

from promptkit.errors import (
    BackendError,
    ConnectionFailed,
    MalformedResponse,
    ModelRequestError,
    PromptkitError,
    RateLimited,
    RequestTimeout,
    ServerError,
)

__all__ = ["map_exception", "scrub", "parse_retry_after", "exception_chain"]

_MAX_MESSAGE = 600
_SCRUB_PATTERNS = [
    # Authorization: Bearer xyz / "authorization": "xyz"
    (re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)(bearer\s+|basic\s+)?[^\s'\",}]+"), r"\1\2***"),
    # api_key=xyz, "api_key": "xyz", x-api-key: xyz
    (re.compile(r"(?i)((?:x-)?api[_-]?key['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+"), r"\1***"),
    # Bare provider keys such as sk-..., sk-ant-...
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}"), "sk-***"),
]
_CONNECTION_NAMES = {
    "APIConnectionError",  # openai's own (litellm reuses the name for non-transport faults: see below)
    "ConnectError",
    "ReadError",
    "WriteError",
    "RemoteProtocolError",
    "LocalProtocolError",
    "NetworkError",
    "ProxyError",
    "ServerDisconnectedError",
    "ClientConnectorError",
    "ClientConnectionError",
    "ClientOSError",
    "ClientPayloadError",
}
_MALFORMED_NAMES = {"JSONDecodeError", "APIResponseValidationError", "JSONSchemaValidationError"}
# Last resort when the chain was lost (a caller re-raised through a task): litellm's wording for its 500 wrappers.
_CONNECTION_TEXT = re.compile(
    r"Connection error|Server disconnected|Connection refused|Connection reset|ConnectError"
)
_MALFORMED_TEXT = re.compile(
    r"Expecting value: line \d+|Expecting property name|JSONDecodeError|Invalid control character|Unterminated string"
)


def scrub(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with every secret and every credential-looking value replaced by ``***``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    for pattern, replacement in _SCRUB_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything it wraps: ``__cause__``, ``__context__`` and litellm's ``original_exception``."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        original = getattr(current, "original_exception", None)
        stack.extend([current.__cause__, current.__context__])
        if isinstance(original, BaseException):
            stack.append(original)


def parse_retry_after(headers: Any) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or an HTTP date) or ``retry-after-ms``; None if absent."""
    if headers is None:
        return None
    try:
        lookup = {str(k).lower(): str(v) for k, v in dict(headers).items()}
    except (TypeError, ValueError):
        return None
    if "retry-after-ms" in lookup:
        try:
            return max(float(lookup["retry-after-ms"]) / 1000.0, 0.0)
        except ValueError:
            pass
    value = lookup.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _is_timeout(exc: BaseException) -> bool:
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return True
    return any("Timeout" in name for name in _names(exc))


def _is_connection(exc: BaseException) -> bool:
    if isinstance(exc, ConnectionError):
        return True
    cls = type(exc)
    if cls.__name__ == "APIConnectionError" and cls.__module__.startswith("litellm"):
        # litellm raises its APIConnectionError for many non-transport faults; trust only what it wraps.
        return False
    return bool(_names(exc) & _CONNECTION_NAMES)


def _is_malformed(exc: BaseException) -> bool:
    return isinstance(exc, json.JSONDecodeError) or bool(_names(exc) & _MALFORMED_NAMES)


def _status_and_headers(chain: list[BaseException]) -> tuple[int | None, Any]:
    # A real HTTP response wins over a status code litellm made up for a wrapper.
    for exc in chain:
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
        if isinstance(status, int) and getattr(response, "request", None) is not None:
            headers = getattr(exc, "litellm_response_headers", None) or getattr(response, "headers", None)
            return status, headers
    for exc in chain:
        status = getattr(exc, "status_code", None)
        if isinstance(status, int):
            return status, getattr(exc, "litellm_response_headers", None) or getattr(exc, "headers", None)
    return None, None


def map_exception(
    exc: BaseException,
    *,
    secrets: Iterable[str | None] = (),
    location: str | None = None,
    what: str = "request",
) -> PromptkitError:
    """The promptkit error for an SDK exception; raise it ``from None`` so that no secret rides along."""
    if isinstance(exc, PromptkitError):
        return exc
    secrets = list(secrets)
    chain = list(exception_chain(exc))
    detail = scrub(str(exc) or type(exc).__name__, secrets)
    if len(detail) > _MAX_MESSAGE:
        detail = detail[:_MAX_MESSAGE] + "..."
    kind = type(exc).__name__

    if any(_is_malformed(e) for e in chain):
        return MalformedResponse(
            f"{what} got a response that is not valid JSON ({kind}): {detail}", location=location
        )
    if any(_is_timeout(e) for e in chain):
        return RequestTimeout(f"{what} timed out ({kind}): {detail}", location=location)
    if any(_is_connection(e) for e in chain):
        return ConnectionFailed(f"{what} lost its connection ({kind}): {detail}", location=location)

    status, headers = _status_and_headers(chain)
    if status in (None, 500):
        text = " ".join(str(e) for e in chain)
        if _MALFORMED_TEXT.search(text):
            return MalformedResponse(
                f"{what} got a response that is not valid JSON ({kind}): {detail}", location=location
            )
        if _CONNECTION_TEXT.search(text):
            return ConnectionFailed(f"{what} lost its connection ({kind}): {detail}", location=location)
    if status == 429:
        retry_after = parse_retry_after(headers)
        return RateLimited(
            f"{what} was rate limited (HTTP 429): {detail}", retry_after=retry_after, location=location
        )
    if status == 408:
        return RequestTimeout(f"{what} timed out (HTTP 408): {detail}", location=location)
    if status is not None and status >= 500:
        return ServerError(f"{what} failed on the server (HTTP {status}): {detail}", location=location)
    if status is not None and 400 <= status < 500:
        return ModelRequestError(f"{what} was rejected (HTTP {status}): {detail}", location=location)
    return BackendError(f"{what} failed ({kind}): {detail}", location=location)

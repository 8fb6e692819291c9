"""Mask anything that looks like a credential before text is written anywhere that lasts."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["scrub_secrets", "scrub_value", "MASK"]

MASK = "***"

# Environment variables whose values are secrets by name.
_SECRET_ENV_SUFFIXES = ("_API_KEY", "_TOKEN", "_SECRET")
# Shorter values are too likely to be ordinary words or numbers to mask everywhere they appear.
_MIN_ENV_SECRET_LEN = 6

_KEY_CHARS = r"[A-Za-z0-9_\-]"
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # Provider keys with a recognisable shape; the prefix stays so the message still says which provider.
    (re.compile(rf"\b(sk-ant-){_KEY_CHARS}{{6,}}"), rf"\g<1>{MASK}"),
    (re.compile(rf"\b(sk-){_KEY_CHARS}{{6,}}"), rf"\g<1>{MASK}"),
    (re.compile(rf"\b(hf_){_KEY_CHARS}{{10,}}"), rf"\g<1>{MASK}"),
    (re.compile(rf"\b(gh[pousr]_){_KEY_CHARS}{{10,}}"), rf"\g<1>{MASK}"),
    (re.compile(rf"\b(AIza){_KEY_CHARS}{{20,}}"), rf"\g<1>{MASK}"),
    (re.compile(r"\b(AKIA)[0-9A-Z]{12,}"), rf"\g<1>{MASK}"),
    (re.compile(rf"\b(xox[abprs]-){_KEY_CHARS}{{6,}}"), rf"\g<1>{MASK}"),
    # Authorization headers.
    (re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=\-]{4,}"), rf"\1\2{MASK}"),
    # key=value, key: value, "key": "value" for names that hold credentials.
    (
        re.compile(
            r"""(?ix)
            (["']?\b[a-z0-9_\-]*(?:api[_\-]?key|apikey|token|secret|password|passwd|credentials?)
            ["']?\s*[:=]\s*["']?)
            (?!\*\*\*)[^\s"',;&}]+"""
        ),
        rf"\1{MASK}",
    ),
]


# A cheap necessary condition for every pattern above (case-folded, so a superset): text without any of these
# cannot match, and one search replaces nine substitutions on the hot path (every ledger row).
_MAYBE_SECRET = re.compile(
    r"sk-|hf_|gh[pousr]_|aiza|akia|xox[abprs]-|bearer|basic|api[_\-]?key|token|secret|passw|credential",
    re.IGNORECASE,
)


class _EnvSecrets:
    """The secret values of ``os.environ``, recomputed only when the environment changed, with a memo of
    short texts already scrubbed against them.

    Comparing the raw dict with a copy runs in C (values compare by identity first); scanning every name in
    Python on each ledger row cost more than the rest of the row. Short texts (template names, tags, model
    names) repeat on every row, so their scrubbed form is remembered until the environment changes.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[bytes, bytes] | None = None
        self._values: list[str] = []
        self._memo: dict[str, str] = {}

    def get(self, raw: dict[bytes, bytes]) -> tuple[list[str], dict[str, str]]:
        with self._lock:
            if self._seen != raw:
                self._values = _secret_values(
                    (os.fsdecode(name), os.fsdecode(value)) for name, value in raw.items()
                )
                self._memo = {}
                self._seen = dict(raw)
            return self._values, self._memo


def _secret_values(items: Iterable[tuple[str, str]]) -> list[str]:
    values = {
        value
        for name, value in items
        if name.upper().endswith(_SECRET_ENV_SUFFIXES) and len(value) >= _MIN_ENV_SECRET_LEN
    }
    return sorted(values, key=len, reverse=True)  # longest first, so a secret containing another goes whole


_OS_ENV = _EnvSecrets()
_MEMO_MAX_TEXT = 200
_MEMO_MAX_ENTRIES = 4096


def _env_secrets(environ: Mapping[str, str]) -> tuple[list[str], dict[str, str] | None]:
    """The secret values to mask, and a memo valid for them (None when ``environ`` is not ``os.environ``)."""
    raw = getattr(environ, "_data", None) if environ is os.environ and os.name == "posix" else None
    if isinstance(raw, dict):
        return _OS_ENV.get(raw)
    return _secret_values(environ.items()), None


def _scrub_memo(text: str, secrets: list[str], memo: dict[str, str] | None) -> str:
    if memo is None or len(text) > _MEMO_MAX_TEXT:
        return _scrub(text, secrets)
    done = memo.get(text)
    if done is None:
        done = _scrub(text, secrets)
        if len(memo) >= _MEMO_MAX_ENTRIES:
            memo.clear()
        memo[text] = done
    return done


def _scrub(text: str, secrets: list[str]) -> str:
    # Every pattern needs at least 7 characters, and env secrets at least _MIN_ENV_SECRET_LEN.
    if len(text) < _MIN_ENV_SECRET_LEN:
        return text
    for value in secrets:
        if value in text:
            text = text.replace(value, MASK)
    if _MAYBE_SECRET.search(text) is None:
        return text
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def scrub_secrets(text: str, *, environ: Mapping[str, str] | None = None) -> str:
    """``text`` with API keys, bearer tokens, ``api_key=...`` values and the values of set
    ``*_API_KEY`` / ``*_TOKEN`` / ``*_SECRET`` environment variables replaced by ``***``."""
    if not text:
        return text
    return _scrub_memo(text, *_env_secrets(os.environ if environ is None else environ))


def scrub_value(value: Any, *, environ: Mapping[str, str] | None = None) -> Any:
    """``scrub_secrets`` applied to every string inside nested dicts, lists and tuples."""
    secrets, memo = _env_secrets(os.environ if environ is None else environ)  # once per value, not per string

    def walk(item: Any) -> Any:
        kind = type(item)
        if kind is str:  # exact types first: the ABC checks below cost more than the scrub of a short text
            return _scrub_memo(item, secrets, memo) if item else item
        if kind is dict:
            return {k: walk(v) for k, v in item.items()}
        if kind is list or kind is tuple:
            return [walk(v) for v in item]
        if item is None or kind is int or kind is float or kind is bool:
            return item
        if isinstance(item, str):
            return _scrub_memo(item, secrets, memo) if item else item
        if isinstance(item, Mapping):
            return {k: walk(v) for k, v in item.items()}
        if isinstance(item, (list, tuple)):
            return [walk(v) for v in item]
        return item

    return walk(value)

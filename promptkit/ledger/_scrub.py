"""Mask anything that looks like a credential before text is written anywhere that lasts."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
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


def _env_secrets(environ: Mapping[str, str]) -> list[str]:
    values = {
        value
        for name, value in environ.items()
        if name.upper().endswith(_SECRET_ENV_SUFFIXES) and len(value) >= _MIN_ENV_SECRET_LEN
    }
    return sorted(values, key=len, reverse=True)  # longest first, so a secret containing another goes whole


def scrub_secrets(text: str, *, environ: Mapping[str, str] | None = None) -> str:
    """``text`` with API keys, bearer tokens, ``api_key=...`` values and the values of set
    ``*_API_KEY`` / ``*_TOKEN`` / ``*_SECRET`` environment variables replaced by ``***``."""
    if not text:
        return text
    for value in _env_secrets(os.environ if environ is None else environ):
        text = text.replace(value, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def scrub_value(value: Any, *, environ: Mapping[str, str] | None = None) -> Any:
    """``scrub_secrets`` applied to every string inside nested dicts, lists and tuples."""
    if isinstance(value, str):
        return scrub_secrets(value, environ=environ)
    if isinstance(value, Mapping):
        return {k: scrub_value(v, environ=environ) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub_value(v, environ=environ) for v in value]
    return value

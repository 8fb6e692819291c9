"""GBNF grammars from pydantic models, with llama-cpp-python's JSON-string bug fixed.

llama-cpp-python's JSON-schema converter (``llama_cpp.llama_grammar``) defines the characters of a JSON string
as ``[^"\\\\]`` or an escape, which lets raw control characters (newline, tab, 0x14) into strings: the output is
then not JSON. :func:`apply_grammar_fix` swaps that rule, in the converter's primitive-rules table, for the strict
class the library's own generic JSON grammar uses. Patching the table (not one grammar) also fixes every path
inside the library that converts schemas: ``response_format``, forced tool calls, and the OpenAI-compatible
server when it runs in a process that applied the fix.

If the installed library no longer looks like the one this was written against, the fix refuses loudly.
"""

from __future__ import annotations

import functools
import json
import threading
from typing import Any

from pydantic import BaseModel

from promptkit.errors import BackendUnavailable, OutputSchemaError

__all__ = [
    "STRICT_JSON_CHAR_RULE",
    "UPSTREAM_JSON_CHAR_RULE",
    "apply_grammar_fix",
    "json_schema_grammar",
    "grammar_rules",
]

# The converter's rule in llama-cpp-python 0.3.x: any character but quote and backslash, or an escape.
UPSTREAM_JSON_CHAR_RULE = r'[^"\\] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F])'
# RFC 8259: no quote, no backslash, no U+0000-U+001F; we also refuse DEL (0x7F), as the library's JSON_GBNF does.
STRICT_JSON_CHAR_RULE = (
    r'[^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F])'
)

_WHERE = "llama_cpp.llama_grammar.PRIMITIVE_RULES['char']"
_fix_lock = threading.Lock()
_fixed = False


def _grammar_module() -> Any:
    try:
        from llama_cpp import llama_grammar
    except ImportError:
        raise BackendUnavailable(
            "llama-cpp-python is not installed: pip install 'promptkit[local]'", location="local backend"
        ) from None
    return llama_grammar


def apply_grammar_fix() -> None:
    """Make llama-cpp-python's JSON-schema converter emit strict JSON strings. Idempotent, thread-safe.

    Raises ``BackendUnavailable`` if the converter's rule table is missing or holds a ``char`` rule this fix
    does not recognise: silently generating invalid JSON would be worse than refusing.
    """
    global _fixed
    if _fixed:
        return
    with _fix_lock:
        if _fixed:
            return
        module = _grammar_module()
        rules = getattr(module, "PRIMITIVE_RULES", None)
        builtin_rule = getattr(module, "BuiltinRule", None)
        if not isinstance(rules, dict) or builtin_rule is None or "char" not in rules:
            raise BackendUnavailable(
                "this llama-cpp-python has no JSON-schema primitive rule table; the JSON-string fix cannot be "
                "applied, so grammar-constrained output would not be guaranteed to be JSON",
                location=_WHERE,
            )
        current = getattr(rules["char"], "content", None)
        if current == UPSTREAM_JSON_CHAR_RULE:
            rules["char"] = builtin_rule(STRICT_JSON_CHAR_RULE, [])
        elif current != STRICT_JSON_CHAR_RULE:
            raise BackendUnavailable(
                f"unrecognised JSON string rule {current!r}; expected llama-cpp-python 0.3.x's "
                f"{UPSTREAM_JSON_CHAR_RULE!r}. Review promptkit/backends/_grammar.py for this version",
                location=_WHERE,
            )
        _fixed = True


def grammar_rules(grammar: str) -> dict[str, str]:
    """``name -> body`` for a grammar in the one-rule-per-line form the converter writes."""
    rules: dict[str, str] = {}
    for line in grammar.splitlines():
        name, sep, body = line.partition(" ::= ")
        if sep:
            rules[name.strip()] = body.strip()
    return rules


@functools.lru_cache(maxsize=256)
def _grammar_for_schema_json(schema_json: str) -> str:
    apply_grammar_fix()
    module = _grammar_module()
    try:
        grammar: str = module.json_schema_to_gbnf(schema_json)
    except (AssertionError, ValueError, KeyError, TypeError, NotImplementedError) as exc:
        title = json.loads(schema_json).get("title", "schema")
        raise OutputSchemaError(
            f"cannot turn this JSON schema into a grammar: {exc}", location=f"output schema {title!r}"
        ) from None
    # The converter only emits a `char` rule for strings; when it does, it must be the strict one.
    char_rule = grammar_rules(grammar).get("char")
    if char_rule is not None and char_rule != STRICT_JSON_CHAR_RULE:
        raise BackendUnavailable(
            f"the JSON-schema converter produced char ::= {char_rule!r} despite the fix", location=_WHERE
        )
    return grammar


# llama.cpp unrolls bounded repetitions into nested rules and refuses grammars whose repetitions multiply past
# about 2,000; a 12,000-character `maxLength` (a whole source file) trips it. Bounds above these stay enforced
# by validation (and the re-ask loop), not by the grammar.
GRAMMAR_MAX_LENGTH = 1000
GRAMMAR_MAX_ITEMS = 64


def _grammar_bounds(node: Any) -> Any:
    """A copy of a JSON schema with bounds too large for llama.cpp's grammar parser left open."""
    if isinstance(node, list):
        return [_grammar_bounds(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _grammar_bounds(value) for key, value in node.items()}
    if isinstance(out.get("maxLength"), int) and out["maxLength"] > GRAMMAR_MAX_LENGTH:
        del out["maxLength"]
    if isinstance(out.get("maxItems"), int) and out["maxItems"] > GRAMMAR_MAX_ITEMS:
        del out["maxItems"]
    return out


def json_schema_grammar(schema: type[BaseModel] | dict[str, Any]) -> str:
    """GBNF text for the JSON documents of ``schema`` (a pydantic model or a JSON schema).

    String and list bounds up to ``GRAMMAR_MAX_LENGTH``/``GRAMMAR_MAX_ITEMS`` are part of the grammar; larger
    ones are checked by validation instead. Raises ``OutputSchemaError`` when the converter cannot handle the
    schema. Results are cached per schema.
    """
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        schema = schema.model_json_schema()
    # Key order matters: the grammar emits properties in schema order.
    return _grammar_for_schema_json(json.dumps(_grammar_bounds(schema)))

"""The JSON-schema grammar and its control-character fix."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import pytest
from pydantic import BaseModel, Field

from promptkit.backends import _grammar
from promptkit.backends._grammar import (
    STRICT_JSON_CHAR_RULE,
    UPSTREAM_JSON_CHAR_RULE,
    apply_grammar_fix,
    grammar_rules,
    json_schema_grammar,
)
from promptkit.errors import BackendUnavailable, OutputSchemaError


class Note(BaseModel):
    title: str = Field(max_length=10)
    tags: list[Annotated[str, Field(max_length=6)]] = Field(max_length=2)


@pytest.fixture(scope="module")
def llama(tiny_gguf):  # type: ignore[no-untyped-def]
    from llama_cpp import Llama

    model = Llama(model_path=str(tiny_gguf), n_ctx=1024, verbose=False)
    yield model
    model.close()


def _generate(llama, grammar_text: str, *, bias: dict[int, float]) -> str:  # type: ignore[no-untyped-def]
    from llama_cpp import LlamaGrammar

    out = llama.create_chat_completion(
        [{"role": "user", "content": "write a note"}],
        max_tokens=300,
        temperature=0,
        grammar=LlamaGrammar.from_string(grammar_text, verbose=False),
        logit_bias=bias,
    )
    return out["choices"][0]["message"]["content"]


def test_string_rule_is_the_strict_json_class():
    rules = grammar_rules(json_schema_grammar(Note))
    assert rules["char"] == STRICT_JSON_CHAR_RULE
    # Control characters, DEL, quote and backslash are excluded from the plain-character class.
    plain = STRICT_JSON_CHAR_RULE.split(" | ")[0]
    assert plain == r'[^"\\\x7F\x00-\x1F]'
    assert rules["title"].count("char") == 10  # max_length bounds the string


def test_fix_patches_the_librarys_own_converter():
    from llama_cpp import llama_grammar

    apply_grammar_fix()
    assert llama_grammar.PRIMITIVE_RULES["char"].content == STRICT_JSON_CHAR_RULE
    # Paths inside llama-cpp-python (response_format, tool calls) convert schemas themselves.
    text = llama_grammar.LlamaGrammar.from_json_schema(json.dumps(Note.model_json_schema()))._grammar
    assert grammar_rules(text)["char"] == STRICT_JSON_CHAR_RULE


def test_fixed_grammar_keeps_raw_newlines_out_even_when_the_model_wants_them(llama):
    newline = llama.tokenize(b"\n", add_bos=False, special=True)
    assert len(newline) == 1
    bias = {newline[0]: 50.0}
    fixed = json_schema_grammar(Note)

    text = _generate(llama, fixed, bias=bias)
    assert "\n" not in text
    Note.model_validate_json(text)

    # The same grammar with the library's original rule lets the newline into the string: the bug is real.
    upstream = fixed.replace(STRICT_JSON_CHAR_RULE, UPSTREAM_JSON_CHAR_RULE)
    assert upstream != fixed
    broken = _generate(llama, upstream, bias=bias)
    assert "\n" in broken
    with pytest.raises(ValueError):
        json.loads(broken)


def test_schema_the_converter_cannot_handle_is_an_output_schema_error():
    with pytest.raises(OutputSchemaError, match="Odd"):
        json_schema_grammar({"title": "Odd", "type": "object", "properties": {"x": {"type": "quaternion"}}})


def test_property_order_is_kept():
    class Ordered(BaseModel):
        zeta: int
        alpha: int

    root = grammar_rules(json_schema_grammar(Ordered))["root"]
    assert root.index("zeta") < root.index("alpha")


def test_unrecognised_library_rule_refuses_loudly(monkeypatch):
    from llama_cpp import llama_grammar

    monkeypatch.setattr(_grammar, "_fixed", False)
    monkeypatch.setitem(llama_grammar.PRIMITIVE_RULES, "char", llama_grammar.BuiltinRule("[^x]", []))
    with pytest.raises(BackendUnavailable, match="unrecognised JSON string rule"):
        apply_grammar_fix()


def test_missing_rule_table_refuses_loudly(monkeypatch):
    from llama_cpp import llama_grammar

    monkeypatch.setattr(_grammar, "_fixed", False)
    monkeypatch.delattr(llama_grammar, "PRIMITIVE_RULES")
    with pytest.raises(BackendUnavailable, match="no JSON-schema primitive rule table"):
        apply_grammar_fix()


def test_upstream_rule_is_replaced_when_found(monkeypatch):
    from llama_cpp import llama_grammar

    monkeypatch.setattr(_grammar, "_fixed", False)
    monkeypatch.setitem(
        llama_grammar.PRIMITIVE_RULES, "char", llama_grammar.BuiltinRule(UPSTREAM_JSON_CHAR_RULE, [])
    )
    apply_grammar_fix()
    assert llama_grammar.PRIMITIVE_RULES["char"].content == STRICT_JSON_CHAR_RULE


def test_without_llama_cpp_the_error_says_how_to_install(monkeypatch):
    monkeypatch.setattr(_grammar, "_fixed", False)
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    with pytest.raises(BackendUnavailable, match=r"pip install 'promptkit\[local\]'"):
        apply_grammar_fix()


class WholeFile(BaseModel):
    path: str = Field(max_length=200)
    content: str = Field(max_length=12_000)
    lines: list[Annotated[str, Field(max_length=80)]] = Field(max_length=500)


def test_large_bounds_stay_out_of_the_grammar_so_llama_cpp_accepts_it(llama):
    grammar = json_schema_grammar(WholeFile)
    # The small bound is still enforced by the grammar; the large ones are left to validation.
    rules = grammar_rules(grammar)
    assert any("char" in body and "?" in body for name, body in rules.items() if name.startswith("path"))
    assert not any(body.count("(char") > _grammar.GRAMMAR_MAX_LENGTH for body in rules.values())
    # llama.cpp parses the grammar when sampling starts; a 12,000-deep unrolled rule made it refuse.
    text = _generate(llama, grammar, bias={})
    assert text.startswith("{")

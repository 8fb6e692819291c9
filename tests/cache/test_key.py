"""What goes into a cache key, and what must not."""

from __future__ import annotations

import hashlib
import json

import pytest
from pydantic import BaseModel

from promptkit.backends import GenerateRequest
from promptkit.cache import ExactCache
from promptkit.errors import CacheError
from promptkit.types import Message


class Answer(BaseModel):
    city: str


class OtherAnswer(BaseModel):
    city: str
    country: str


def request(**overrides: object) -> GenerateRequest:
    fields: dict[str, object] = {
        "messages": [
            Message(role="system", content="Be brief."),
            Message(role="user", content="Capital of France?"),
        ],
        "model": "cheap",
        "temperature": 0.0,
    }
    fields.update(overrides)
    return GenerateRequest(**fields)  # type: ignore[arg-type]


def key(req: GenerateRequest, **kw: object) -> str:
    return ExactCache.key_for(req, **kw)  # type: ignore[arg-type]


def test_key_is_a_sha256_hex_digest_and_stable_across_equal_requests():
    k = key(request(), template_hash="t1", model="openai/gpt-4o-mini")
    assert len(k) == 64 and int(k, 16) >= 0
    assert k == key(request(), template_hash="t1", model="openai/gpt-4o-mini")


def test_key_is_the_sha256_of_the_canonical_payload():
    # Written out by hand: the documented definition, so that anyone can recompute a key.
    req = request(params={"frequency_penalty": 0.5, "logit_bias": {"b": 1, "a": 2}})
    payload = {
        "messages": [
            {"content": "Be brief.", "role": "system"},
            {"content": "Capital of France?", "role": "user"},
        ],
        "model": "cheap",
        "params": {"frequency_penalty": 0.5, "logit_bias": {"a": 2, "b": 1}},
        "resolved_model": "m",
        "temperature": 0.0,
        "template_hash": "t1",
    }
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert key(req, template_hash="t1", model="m") == hashlib.sha256(blob.encode()).hexdigest()


def test_every_request_field_is_either_keyed_or_deliberately_left_out():
    from promptkit.cache._exact import _KEY_FIELDS

    left_out = {"timeout_s"}  # changes how we wait, not what comes back
    handled_apart = {"messages", "params", "output_model"}
    assert set(GenerateRequest.model_fields) == set(_KEY_FIELDS) | left_out | handled_apart
    assert list(_KEY_FIELDS) == sorted(_KEY_FIELDS)


def test_output_schema_can_be_left_to_the_template_hash():
    with_schema = request(output_model=Answer)
    assert key(with_schema, template_hash="t") != key(request(), template_hash="t")
    assert key(with_schema, template_hash="t", include_schema=False) == key(request(), template_hash="t")


def test_key_does_not_depend_on_param_order():
    a = request(params={"frequency_penalty": 0.5, "presence_penalty": 0.1})
    b = request(params={"presence_penalty": 0.1, "frequency_penalty": 0.5})
    assert key(a) == key(b)


@pytest.mark.parametrize(
    "change",
    [
        {"messages": [Message(role="user", content="Capital of Spain?")]},
        {
            "messages": [
                Message(role="system", content="Be verbose."),
                Message(role="user", content="Capital of France?"),
            ]
        },
        {"model": "smart"},
        {"temperature": 0.7},
        {"max_tokens": 10},
        {"top_p": 0.9},
        {"stop": ["\n"]},
        {"seed": 7},
        {"output_model": Answer},
        {"params": {"frequency_penalty": 0.5}},
    ],
    ids=lambda c: next(iter(c)),
)
def test_every_output_changing_field_changes_the_key(change: dict[str, object]):
    assert key(request(**change)) != key(request())


def test_output_schema_is_in_the_key():
    assert key(request(output_model=Answer)) != key(request(output_model=OtherAnswer))


def test_template_hash_and_resolved_model_are_in_the_key():
    base = key(request(), template_hash="t1", model="a")
    assert key(request(), template_hash="t2", model="a") != base
    assert key(request(), template_hash="t1", model="b") != base
    assert key(request()) != base


def test_timeout_is_not_in_the_key():
    assert key(request(timeout_s=1.0)) == key(request(timeout_s=90.0)) == key(request())


@pytest.mark.parametrize(
    "param",
    [
        "api_key",
        "api_base",
        "timeout",
        "num_retries",
        "max_retries",
        "extra_headers",
        "OPENAI_API_KEY",
        "access_token",
    ],
)
def test_transport_settings_and_secrets_in_params_are_not_in_the_key(param: str):
    assert key(request(params={param: "sk-live-123456789"})) == key(request())
    # ...but they do not knock out the params that matter.
    with_secret = request(params={param: "x", "frequency_penalty": 0.5})
    assert key(with_secret) == key(request(params={"frequency_penalty": 0.5}))


def test_max_tokens_like_params_are_not_mistaken_for_secrets():
    assert key(request(params={"max_completion_tokens": 5})) != key(request())


def test_unserialisable_param_is_a_cache_error():
    with pytest.raises(CacheError, match="JSON values"):
        key(request(params={"logit_bias": object()}))

"""promptkit.types.trusted_model: the hot paths' way to build models from values promptkit typed itself."""

from __future__ import annotations

import pytest

from promptkit.types import Message, Usage, trusted_model


def test_a_trusted_model_is_the_validated_one():
    built = trusted_model(Message, {"role": "user", "content": "hi", "name": None})
    assert built == Message(role="user", content="hi", name=None)
    assert built.model_dump_json() == Message(role="user", content="hi").model_dump_json()
    assert built.model_copy(update={"content": "bye"}).content == "bye"
    with pytest.raises(Exception):  # noqa: B017 - frozen models stay frozen
        built.content = "changed"  # type: ignore[misc]


def test_every_field_must_be_given():
    with pytest.raises(TypeError, match="missing \\['output_tokens'\\]"):
        trusted_model(Usage, {"input_tokens": 1})


def test_usage_sums_stay_usage():
    total = Usage(input_tokens=2, output_tokens=3) + Usage(input_tokens=5)
    assert isinstance(total, Usage) and (total.input_tokens, total.output_tokens) == (7, 3)
    assert total.total_tokens == 10

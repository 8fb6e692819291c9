"""Issue 16, item 5: a template's render stops, with an error naming it, within bounded time and size."""

from __future__ import annotations

import time

import pytest

from promptkit.errors import RenderError
from promptkit.prompts import Template, _jinja


def template(content: str, name: str = "bomb") -> Template:
    text = f"name: {name}\nversion: 1.0.0\nmessages:\n  - role: user\n    content: {content!r}\n"
    return Template.from_text(text, source=f"{name}.yaml")


@pytest.fixture(autouse=True)
def short_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_jinja, "MAX_RENDER_S", 1.0, raising=False)


def render_error(t: Template, within_s: float) -> str:
    started = time.monotonic()
    with pytest.raises(RenderError) as info:
        t.render()
    assert time.monotonic() - started < within_s
    return str(info.value)


def test_an_endless_loop_stops_at_the_time_limit_naming_the_template() -> None:
    loop = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    message = render_error(template(loop), within_s=5)
    assert "bomb.yaml" in message and "'bomb'" in message
    assert "longer than 1 s" in message


def test_a_huge_product_is_refused_before_it_allocates() -> None:
    started = time.monotonic()
    t = template("{{ 'a' * 10**10 }}")  # not folded at load time either
    assert time.monotonic() - started < 2
    message = render_error(t, within_s=2)
    assert "'bomb'" in message and "'*' operator" in message and "4,000,000" in message


@pytest.mark.parametrize(
    "content",
    [
        "{% for i in range(100000) %}{% for j in range(100000) %}xxxxxxxx{% endfor %}{% endfor %}",
        "{{ 'a' | center(10**10) }}",
        "{{ 'a'.ljust(10**10) }}",
        "{{ ('a' * 1000) | replace('a', 'b' * 100000) }}",
        "{{ ('{0}' * 1000).format('a' * 100000) }}",
        "{{ '%10000000000d' % 1 }}",
        "{{ (['x' * 1000000] * 100) | join }}",
        "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
        "{{ 7 ** 1000000 }}",
    ],
    ids=["output", "center", "ljust", "replace", "format", "percent", "join", "doubling", "power"],
)
def test_growth_is_bounded(content: str) -> None:
    message = render_error(template(content), within_s=5)
    assert "'bomb'" in message and "RenderLimitError" in message


def test_ordinary_templates_render_as_before() -> None:
    t = template(
        "{{ 'ab' ~ 'c' }} {{ 3 * 4 }} {{ [0] * 2 }} {{ '%s!' % 'hi' }} {{ '{}'.format(5000000) }} "
        "{{ 5000000 | round | int }} {{ 'x' | center(5) }}| {{ ['a', 'b'] | join('-') }} {{ 2 ** 10 }}"
    )
    assert t.render().messages[0].content == "abc 12 [0, 0] hi! 5000000 5000000   x  | a-b 1024"


def test_the_watchdog_never_fires_after_a_render(monkeypatch: pytest.MonkeyPatch) -> None:
    # The bound is wall-clock: short enough that a late interruption lands in the sleep below, long enough
    # that a render on a busy 2-core machine (descheduled for tens of ms) never reaches it.
    monkeypatch.setattr(_jinja, "MAX_RENDER_S", 0.5, raising=False)
    t = template("{{ range(2) | list | length }}")  # reads a global: rendered every time, not memoised
    for _ in range(50):
        assert t.render().messages[0].content == "2"
    time.sleep(0.8)  # a late interruption would land here

"""The one sandboxed Jinja2 environment every template compiles in, and the bounds on one render.

A template is code (user and plugin templates included): a nested loop can run for hours and ``'a' *
10**10`` can ask for 10 GB. Every render therefore stops, with ``RenderLimitError``, when it runs longer
than ``MAX_RENDER_S`` or writes more than ``MAX_RENDER_CHARS``; and the operations that can grow a value
by more than a constant factor in one step (``*``, ``**``, ``%``, ``+``, ``~``, padding, ``replace``,
``join``, ``format``, ``indent``) are checked before they allocate, so that no single value exceeds
``MAX_RENDER_CHARS`` and one render allocates at most ``_ALLOC_FACTOR`` times that in checked values.
"""

from __future__ import annotations

import ctypes
import functools
import re
import threading
import time
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import meta
from jinja2.compiler import CodeGenerator
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = [
    "environment",
    "compile_source",
    "undeclared_variables",
    "render_compiled",
    "RESERVED_NAMES",
    "RenderLimitError",
    "MAX_RENDER_S",
    "MAX_RENDER_CHARS",
]

# Names the renderer puts in every context; inputs may not use them.
RESERVED_NAMES = frozenset({"examples", "example", "output_schema"})

# One render's bounds: far beyond any prompt (4M characters is about a million tokens).
MAX_RENDER_S = 5.0
MAX_RENDER_CHARS = 4_000_000
_ALLOC_FACTOR = 16  # checked values one render may build, in multiples of MAX_RENDER_CHARS
_MAX_INT_BITS = 100_000
_BIG_WIDTH = re.compile(r"\d{8,}")  # a width or precision of 10^7 or more inside a format string


class RenderLimitError(Exception):
    """A render ran past its time or size bound (the template reports it as a ``RenderError``)."""


# --- the render's running budget --------------------------------------------------------------------


class _Budget(threading.local):
    allocated = 0  # reset when a render starts


_budget = _Budget()


def _size(value: Any) -> int:
    if isinstance(value, (str, bytes, list, tuple, dict, set, frozenset)):
        return len(value)
    return 0


def _check(value: Any, what: str) -> Any:
    """``value``, or RenderLimitError when it alone, or the render's values so far, are too big."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > _MAX_INT_BITS:
        raise RenderLimitError(
            f"{what} makes an integer of {value.bit_length()} bits (the limit is {_MAX_INT_BITS})"
        )
    size = _size(value)
    _refuse_size(size, what)
    _budget.allocated += size
    if _budget.allocated > _ALLOC_FACTOR * MAX_RENDER_CHARS:
        raise RenderLimitError(
            f"the render built more than {_ALLOC_FACTOR * MAX_RENDER_CHARS:,} characters of values"
        )
    return value


def _refuse_size(size: int, what: str) -> None:
    if size > MAX_RENDER_CHARS:
        raise RenderLimitError(
            f"{what} would make a value of length {size:,} (the limit is {MAX_RENDER_CHARS:,})"
        )


def _text_len(value: Any) -> int:
    return len(value) if isinstance(value, str) else len(str(value))


def _format_estimate(fmt: str, values: Any, what: str) -> None:
    """A format string repeats its arguments once per field: bound the result before building it."""
    if _BIG_WIDTH.search(fmt):
        raise RenderLimitError(f"{what}: a width of 10^7 or more in the format string")
    fields = fmt.count("%") + fmt.count("{")
    longest = max((_text_len(v) for v in values), default=0)
    _refuse_size(len(fmt) + fields * longest, what)


def _precheck_binop(operator: str, left: Any, right: Any) -> None:
    what = f"the {operator!r} operator"
    if operator == "*":
        for seq, n in ((left, right), (right, left)):
            if isinstance(n, int) and _size(seq):
                _refuse_size(_size(seq) * max(n, 0), what)
        if isinstance(left, int) and isinstance(right, int):
            if left.bit_length() + right.bit_length() > _MAX_INT_BITS:
                raise RenderLimitError(f"{what} makes an integer over {_MAX_INT_BITS} bits")
    elif operator == "**":
        if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
            if left.bit_length() * right > _MAX_INT_BITS:
                raise RenderLimitError(f"{what} makes an integer over {_MAX_INT_BITS} bits")
    elif operator == "+":
        _refuse_size(_size(left) + _size(right), what)
    elif operator == "%" and isinstance(left, str):
        _format_estimate(left, right if isinstance(right, (tuple, list)) else (right,), what)


def _precheck_str_method(owner: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    what = f"str.{name}()"
    if name in ("center", "ljust", "rjust", "zfill") and args and isinstance(args[0], int):
        _refuse_size(max(len(owner), args[0]), what)
    elif name == "expandtabs":
        tab = args[0] if args and isinstance(args[0], int) else 8
        _refuse_size(len(owner) + owner.count("\t") * max(tab, 0), what)
    elif name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        old, new = args[0], args[1]
        hits = owner.count(old) if old else len(owner) + 1
        _refuse_size(len(owner) + hits * max(len(new) - len(old), 0), what)
    elif name == "join" and args:
        items = args[0] if isinstance(args[0], (list, tuple)) else ()
        _refuse_size(sum(_text_len(x) for x in items) + len(owner) * max(len(items) - 1, 0), what)
    elif name in ("format", "format_map"):
        values = [*args, *kwargs.values()]
        if name == "format_map" and args and isinstance(args[0], dict):
            values = list(args[0].values())
        _format_estimate(owner, values, what)


# --- bounded filters -----------------------------------------------------------------------------------


def _bounded_filter(name: str, fn: Any) -> Any:
    @functools.wraps(fn)  # keeps jinja's pass_context / pass_eval_context marks
    def bounded(*args: Any, **kwargs: Any) -> Any:
        what = f"the {name!r} filter"
        values = [a for a in args if not isinstance(a, (Context, EvalContext, jinja2.Environment))]
        if name == "join" and values and len(values) < 3 and "attribute" not in kwargs:
            items = list(values[0]) if not isinstance(values[0], str) else values[0]
            sep = values[1] if len(values) > 1 else kwargs.get("d", "")
            _refuse_size(sum(_text_len(x) for x in items) + _text_len(sep) * max(len(items) - 1, 0), what)
            args = (*args[: len(args) - len(values)], items, *values[1:])
        elif name == "replace" and len(values) >= 3:
            text, old, new = (str(v) for v in values[:3])
            hits = text.count(old) if old else len(text) + 1
            _refuse_size(len(text) + hits * max(len(new) - len(old), 0), what)
        elif name == "indent" and values:
            width = values[1] if len(values) > 1 else kwargs.get("width", 4)
            pad = width if isinstance(width, int) else _text_len(width)
            text = str(values[0])
            _refuse_size(len(text) + (text.count("\n") + 1) * max(pad, 0), what)
        elif name == "center" and len(values) > 1 and isinstance(values[1], int):
            _refuse_size(values[1], what)
        elif name == "format" and values:
            _format_estimate(str(values[0]), [*values[1:], *kwargs.values()], what)
        return _check(fn(*args, **kwargs), what)

    return bounded


# --- the environment -------------------------------------------------------------------------------------


class _BoundedCodeGenerator(CodeGenerator):
    """Compiles ``a ~ b`` through the size check, the one growing operation Jinja does not intercept."""

    def visit_Concat(self, node: Any, frame: Any) -> None:
        self.write("environment.bounded_concat(")
        super().visit_Concat(node, frame)
        self.write(")")


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, with every operation that can grow a value without bound checked."""

    code_generator_class = _BoundedCodeGenerator
    # Intercepted operators are also never folded at compile time, so loading `'a' * 10**10` allocates nothing.
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.filters = {name: _bounded_filter(name, fn) for name, fn in self.filters.items()}
        self.concat = self.bounded_concat  # the join of `{% set %}` blocks and macro bodies

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _precheck_binop(operator, left, right)
        return _check(super().call_binop(context, operator, left, right), f"the {operator!r} operator")

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        target = getattr(__obj, "__wrapped__", __obj)
        owner = getattr(target, "__self__", None)
        if isinstance(owner, str):
            _precheck_str_method(owner, getattr(target, "__name__", ""), args, kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        return _check(result, f"calling {getattr(target, '__name__', 'a function')}")

    @staticmethod
    def bounded_concat(parts: Any) -> str:
        parts = list(parts)
        _refuse_size(sum(_text_len(p) for p in parts), "joining text")
        return _check("".join(str(p) for p in parts), "joining text")


@lru_cache(maxsize=1)
def environment() -> BoundedEnvironment:
    # Immutable sandbox: no attribute access to internals, no mutating lists/dicts from template code.
    return BoundedEnvironment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        auto_reload=False,
        cache_size=0,  # Template objects cache their own compiled code; no global cache needed
    )


def compile_source(source: str) -> jinja2.Template:
    """Compile once; raises ``jinja2.TemplateSyntaxError`` (with ``lineno``) for the caller to locate."""
    return environment().from_string(source)


def undeclared_variables(source: str, *, include_globals: bool = False) -> set[str]:
    """Names ``source`` reads from its context; Jinja's globals (range, dict...) only when asked."""
    env = environment()
    names = set(meta.find_undeclared_variables(env.parse(source)))
    return names if include_globals else names - set(env.globals)


# --- the time bound ----------------------------------------------------------------------------------------


class _RenderTimeout(RenderLimitError):
    """Raised in the rendering thread by the watchdog (as a class, so its message is the default)."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(args or (f"rendering ran longer than {MAX_RENDER_S:g} s",)))


class _Watchdog:
    """One thread that interrupts renders running past their deadline.

    The interruption is an exception raised asynchronously in the rendering thread, between two bytecodes
    of the template's compiled Python (a loop cannot avoid them). Armed and disarmed under one lock, so it
    never lands outside the render it was meant for. The thread is woken only when a new deadline comes
    before the time it would wake anyway, so a stream of quick renders costs it nothing.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.wake = threading.Condition(self.lock)
        self.deadlines: dict[int, float] = {}
        self.fired: set[int] = set()
        self.thread: threading.Thread | None = None
        self.idle_s = 1.0  # how long it sleeps with nothing armed: the last render's limit
        self.wakes_at = 0.0

    def arm(self, seconds: float) -> int:
        ident = threading.get_ident()
        with self.lock:
            self.fired.discard(ident)
            deadline = self.deadlines[ident] = time.monotonic() + seconds
            self.idle_s = seconds
            if self.thread is None:
                self.thread = threading.Thread(
                    target=self._run, name="promptkit-render-watchdog", daemon=True
                )
                self.thread.start()
            elif deadline < self.wakes_at:
                self.wake.notify()
        return ident

    def disarm(self, ident: int) -> bool:
        """Whether the deadline had passed; a pending interruption is withdrawn."""
        with self.lock:
            self.deadlines.pop(ident, None)
            fired = ident in self.fired
            if fired:
                self.fired.discard(ident)
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), None)
        return fired

    def _run(self) -> None:
        with self.lock:
            while True:
                now = time.monotonic()
                for ident, deadline in list(self.deadlines.items()):
                    if deadline <= now and ident not in self.fired:
                        self.fired.add(ident)
                        ctypes.pythonapi.PyThreadState_SetAsyncExc(
                            ctypes.c_ulong(ident), ctypes.py_object(_RenderTimeout)
                        )
                pending = [d for i, d in self.deadlines.items() if i not in self.fired]
                wait = max(0.001, min(pending) - now) if pending else self.idle_s
                self.wakes_at = now + wait
                self.wake.wait(wait)


_watchdog = _Watchdog()


def _chunks(template: jinja2.Template, context: dict[str, Any]) -> Iterator[str]:
    env = template.environment
    return template.root_render_func(env.context_class(env, context, template.name, template.blocks))


def render_compiled(template: jinja2.Template, context: dict[str, Any]) -> str:
    """Render with ``context`` as the whole namespace (globals must already be in it), within the bounds.

    The context is built directly: ``Template.render`` copies and merges the globals on every call, and even
    ``new_context(shared=True)`` walks them to note their names, which nothing here reads.
    Raises ``RenderLimitError`` past ``MAX_RENDER_S`` seconds or ``MAX_RENDER_CHARS`` characters.
    """
    _budget.allocated = 0
    ident = _watchdog.arm(MAX_RENDER_S)
    try:
        return _collect(template, context)
    except _RenderTimeout:
        raise RenderLimitError(f"rendering ran longer than {MAX_RENDER_S:g} s") from None
    finally:
        _watchdog.disarm(ident)  # withdraws an interruption that has not landed yet


def _collect(template: jinja2.Template, context: dict[str, Any]) -> str:
    parts: list[str] = []
    size = 0
    for chunk in _chunks(template, context):
        size += len(chunk)
        if size > MAX_RENDER_CHARS:
            raise RenderLimitError(f"the output passed {MAX_RENDER_CHARS:,} characters")
        parts.append(chunk)
    return "".join(parts)

"""The one sandboxed Jinja2 environment every template compiles in."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = ["environment", "compile_source", "undeclared_variables", "render_compiled", "RESERVED_NAMES"]

# Names the renderer puts in every context; inputs may not use them.
RESERVED_NAMES = frozenset({"examples", "example", "output_schema"})


@lru_cache(maxsize=1)
def environment() -> ImmutableSandboxedEnvironment:
    # Immutable sandbox: no attribute access to internals, no mutating lists/dicts from template code.
    return ImmutableSandboxedEnvironment(
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


def render_compiled(template: jinja2.Template, context: dict[str, Any]) -> str:
    """Render with ``context`` as the whole namespace (globals must already be in it).

    The context is built directly: ``Template.render`` copies and merges the globals on every call, and even
    ``new_context(shared=True)`` walks them to note their names, which nothing here reads.
    """
    env = template.environment
    return "".join(template.root_render_func(env.context_class(env, context, template.name, template.blocks)))

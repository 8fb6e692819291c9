"""Sandboxed execution of untrusted commands, and the verifiers that check a workspace inside it."""

import importlib
import typing

from promptkit.execution._code_answers import (
    DocExample,
    DocstringExamples,
    build_program,
    docstring_examples,
    extract_code,
)
from promptkit.execution._sandbox import Limits, SandboxResult, arun_sandboxed, isolation_mode, run_sandboxed
from promptkit.execution._tidy import add_missing_imports, ruff_fix, tidy_python
from promptkit.execution._verifiers import (
    TOOLS_HINT,
    Command,
    DocstringExamplesVerifier,
    JsonValid,
    Pytest,
    PythonCompile,
    Ruff,
    StatedAsserts,
    Verifier,
    VerifierResult,
    YamlValid,
    get_verifier,
    missing_tools,
    run_verifiers,
    verifier,
    verifier_from_spec,
    verifier_names,
)

__all__ = [
    "Limits",
    "SandboxResult",
    "run_sandboxed",
    "arun_sandboxed",
    "isolation_mode",
    "extract_code",
    "build_program",
    "docstring_examples",
    "DocExample",
    "DocstringExamples",
    "Verifier",
    "VerifierResult",
    "verifier",
    "ruff_fix",
    "add_missing_imports",
    "tidy_python",
    "get_verifier",
    "verifier_names",
    "verifier_from_spec",
    "run_verifiers",
    "missing_tools",
    "TOOLS_HINT",
    "PythonCompile",
    "Ruff",
    "Pytest",
    "JsonValid",
    "YamlValid",
    "Command",
    "DocstringExamplesVerifier",
    "StatedAsserts",
]

# The executor layer imports planning and generate (and through them YAML and Jinja2): loaded on first use,
# so that importing the sandbox and verifiers stays light.
_LAZY = {
    "Executor": "promptkit.execution._executor",
    "ConfirmFn": "promptkit.execution._executor",
    "StepCallback": "promptkit.execution._executor",
    "execute_plan": "promptkit.execution._executor",
    "aexecute_plan": "promptkit.execution._executor",
    "resume_run": "promptkit.execution._executor",
    "aresume_run": "promptkit.execution._executor",
    "load_run_plan": "promptkit.execution._executor",
    "RunReport": "promptkit.execution._report",
    "StepReport": "promptkit.execution._report",
    "RunTotals": "promptkit.execution._report",
    "NO_MODEL_HINT": "promptkit.execution._report",
    "RunState": "promptkit.execution._runstate",
    "StepState": "promptkit.execution._runstate",
    "RunInfo": "promptkit.execution._runstate",
    "Workspace": "promptkit.execution._workspace",
    "WrittenFile": "promptkit.execution._workspace",
    "FileEdit": "promptkit.execution._edits",
    "parse_edits": "promptkit.execution._edits",
    "apply_unified_diff": "promptkit.execution._edits",
    "split_unified_diff": "promptkit.execution._edits",
    "render_diff": "promptkit.execution._edits",
}
__all__ += list(_LAZY)


def __getattr__(name: str) -> typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'promptkit.execution' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

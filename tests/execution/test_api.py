"""The public surface of promptkit.execution."""

from __future__ import annotations

import promptkit.execution as execution


def test_all_is_exactly_the_public_api() -> None:
    expected = {
        "Limits",
        "SandboxResult",
        "run_sandboxed",
        "arun_sandboxed",
        "isolation_mode",
        "Verifier",
        "VerifierResult",
        "verifier",
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
        "ruff_fix",
        "add_missing_imports",
        "tidy_python",
        # code in answers, and the docstring-examples check
        "extract_code",
        "build_program",
        "docstring_examples",
        "DocExample",
        "DocstringExamples",
        "DocstringExamplesVerifier",
        "StatedAsserts",
        # the executor
        "Executor",
        "ConfirmFn",
        "StepCallback",
        "execute_plan",
        "aexecute_plan",
        "resume_run",
        "aresume_run",
        "load_run_plan",
        "RunReport",
        "StepReport",
        "RunTotals",
        "NO_MODEL_HINT",
        "RunState",
        "StepState",
        "RunInfo",
        "Workspace",
        "WrittenFile",
        "FileEdit",
        "parse_edits",
        "apply_unified_diff",
        "split_unified_diff",
        "render_diff",
    }
    assert set(execution.__all__) == expected
    for name in execution.__all__:
        assert getattr(execution, name) is not None


def test_builtin_verifiers_satisfy_the_protocol() -> None:
    for v in (
        execution.PythonCompile(),
        execution.Ruff(),
        execution.Pytest(),
        execution.JsonValid(),
        execution.YamlValid(),
        execution.Command("true"),
    ):
        assert isinstance(v, execution.Verifier)


def test_import_is_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, promptkit.execution; heavy = {'litellm', 'llama_cpp', 'gguf', 'instructor', 'scipy', 'yaml'};"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

"""Each verifier passes on a good workspace and fails, with a useful one-line summary, on a bad one."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from promptkit.errors import ConfigError
from promptkit.execution import (
    Command,
    JsonValid,
    Limits,
    Pytest,
    PythonCompile,
    Ruff,
    StatedAsserts,
    VerifierResult,
    YamlValid,
    _verifiers,
    get_verifier,
    missing_tools,
    run_verifiers,
    verifier,
    verifier_from_spec,
    verifier_names,
)

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox runs on Linux")

# Third-party pytest plugins take seconds to load; the verifier's behaviour does not depend on them.
FAST_PYTEST = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}


def write(ws: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = ws / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return ws


async def test_python_compile_passes(workspace: Path) -> None:
    write(workspace, {"a.py": "x = 1\n", "pkg/b.py": "def f():\n    return 2\n"})
    result = await PythonCompile()(workspace)
    assert result.ok and result.name == "python-compile"
    assert result.counts == {"files": 2, "errors": 0}
    assert result.duration_s > 0


async def test_python_compile_fails_with_file_and_line(workspace: Path) -> None:
    write(workspace, {"good.py": "x = 1\n", "pkg/bad.py": "import os\n\ndef f(:\n    pass\n"})
    result = await PythonCompile()(workspace)
    assert not result.ok
    assert "pkg/bad.py:3:" in result.summary and "SyntaxError" in result.summary
    assert result.counts == {"files": 2, "errors": 1}
    assert "\n" not in result.summary
    assert not list(workspace.rglob("__pycache__"))  # checking leaves no byte-code behind


async def test_python_compile_paths_limit_the_check(workspace: Path) -> None:
    write(workspace, {"src/ok.py": "x = 1\n", "broken.py": "def (\n"})
    assert (await PythonCompile(paths=["src"])(workspace)).ok
    assert not (await PythonCompile()(workspace)).ok


async def test_python_compile_without_files_fails(workspace: Path) -> None:
    result = await PythonCompile()(workspace)
    assert not result.ok and "no Python files" in result.summary


async def test_ruff_passes_and_fails(workspace: Path) -> None:
    write(workspace, {"clean.py": "x = 1\n"})
    assert (await Ruff(select=["F"])(workspace)).ok
    write(workspace, {"dirty.py": "import os\n"})
    result = await Ruff(select="F")(workspace)
    assert not result.ok
    assert result.counts == {"violations": 1}
    assert "dirty.py:1:8: F401" in result.summary
    assert not (workspace / ".ruff_cache").exists()


async def test_ruff_ignores_the_executors_state_folder(workspace: Path) -> None:
    # Failed attempts are archived under .promptkit/: they are not the project's code.
    write(workspace, {"clean.py": "x = 1\n", ".promptkit/runs/r1/failed/s/dirty.py": "import os\n"})
    assert (await Ruff(select="F")(workspace)).ok


async def test_ruff_missing_is_an_error_not_a_pass(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Ruff, "_command", staticmethod(lambda: None))
    write(workspace, {"clean.py": "x = 1\n"})
    result = await Ruff()(workspace)
    assert not result.ok and "not installed (pip install 'promptkit[scaffold]')" in result.summary


async def test_pytest_missing_names_the_extra(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Pytest, "installed", staticmethod(lambda: False))
    write(workspace, {"test_ok.py": "def test_one():\n    pass\n"})
    result = await Pytest()(workspace)
    assert not result.ok and "not installed (pip install 'promptkit[scaffold]')" in result.summary


def test_missing_tools_looks_only_at_the_verifiers_named(monkeypatch: pytest.MonkeyPatch) -> None:
    assert missing_tools(["ruff", {"pytest": {"tests": ["tests"]}}]) == []
    monkeypatch.setattr(Ruff, "_command", staticmethod(lambda: None))
    monkeypatch.setattr(Pytest, "installed", staticmethod(lambda: False))
    assert missing_tools(["ruff", {"pytest": {"tests": ["tests"]}}]) == ["ruff", "pytest"]
    assert missing_tools(["python-compile", {"json-valid": None}]) == []


TESTS_OK = "def test_one():\n    assert 1 + 1 == 2\n\ndef test_two():\n    assert 'a'.upper() == 'A'\n"
TESTS_BAD = "def test_good():\n    assert True\n\ndef test_bad():\n    assert 2 * 2 == 5\n"


async def test_pytest_passes_with_counts(workspace: Path) -> None:
    write(workspace, {"test_ok.py": TESTS_OK})
    result = await Pytest(env=FAST_PYTEST)(workspace)
    assert result.ok, result.details
    assert result.counts["passed"] == 2 and "failed" not in result.counts
    assert result.summary.startswith("pytest: 2 passed")


async def test_pytest_fails_with_counts_and_first_failure(workspace: Path) -> None:
    write(workspace, {"test_ok.py": TESTS_OK, "test_bad.py": TESTS_BAD})
    result = await Pytest(env=FAST_PYTEST, tests=["test_bad.py"])(workspace)
    assert not result.ok
    assert result.counts == {"failed": 1, "passed": 1}
    assert "FAILED test_bad.py::test_bad" in result.summary
    assert "assert 2 * 2 == 5" in result.details
    assert not (workspace / ".pytest_cache").exists()


# The failure goes through installed code (json's encoder) before it reaches the project's own function, as a
# request through a web framework does: the repair prompt must show the project's frames and the error.
TESTS_THROUGH_A_LIBRARY = """import json

def broken(value):
    return value < 0

def test_through_json():
    json.dumps({"a": object()}, default=broken)
"""


async def test_pytest_details_fold_library_frames_and_keep_the_error(workspace: Path) -> None:
    write(workspace, {"test_lib.py": TESTS_THROUGH_A_LIBRARY})
    result = await Pytest(env=FAST_PYTEST)(workspace)
    assert not result.ok
    assert "frame(s) in installed libraries" in result.details
    assert "json/encoder.py" not in result.details and "json/__init__.py" not in result.details
    assert "test_lib.py:4: in broken" in result.details
    assert "E   TypeError: '<' not supported" in result.details


def test_hide_library_frames_keeps_project_frames() -> None:
    output = (
        "tests/test_a.py:3: in test_a\n    f()\n"
        "/usr/lib/python3.11/json/__init__.py:231: in dumps\n    return x\n    ^^^^\n"
        "/venv/lib/site-packages/x.py:1: in g\n    g()\n"
        "pkg/mod.py:9: in f\n    return 1 / 0\nE   ZeroDivisionError: division by zero\n"
    )
    assert _verifiers.hide_library_frames(output).splitlines() == [
        "tests/test_a.py:3: in test_a",
        "    f()",
        "[… 2 frame(s) in installed libraries …]",
        "pkg/mod.py:9: in f",
        "    return 1 / 0",
        "E   ZeroDivisionError: division by zero",
    ]


async def test_pytest_details_point_out_a_difference_in_spacing_only(workspace: Path) -> None:
    write(
        workspace,
        {
            "test_table.py": (
                "def test_table():\n"
                "    out = 'b 5 https://b.example\\na 3 https://a.example'\n"
                "    assert out == 'b  5  https://b.example\\na  3  https://a.example'\n"
                "\n\ndef test_words():\n    assert 'a b' == 'a c'\n"
            )
        },
    )
    result = await Pytest(env=FAST_PYTEST, args=["-vv"])(workspace)
    assert not result.ok
    notes = [ln for ln in result.details.splitlines() if "only the spacing differs" in ln]
    assert (
        notes
        == [
            "E     (only the spacing differs: the - line, right of ==, has runs of 2, 2 spaces; the + line, "
            "left of ==, 1, 1)"
        ]
        * 2
    ), result.details
    # A real difference in the words gets no such note (the second test is not run: -x stops first).
    assert _verifiers.point_out_spacing("E     - a c\nE     + a b") == "E     - a c\nE     + a b"


def test_hide_library_warnings_keeps_the_projects_own() -> None:
    stderr = (
        "/venv/lib/python3.11/site-packages/pytest_asyncio/plugin.py:306: PytestDeprecationWarning: The option\n"
        "is unset. More text.\n\n  warnings.warn(PytestDeprecationWarning(_UNSET))\n"
        "app/models.py:3: UserWarning: the project's own\n  warnings.warn('x')\n"
    )
    assert _verifiers.hide_library_warnings(stderr) == (
        "app/models.py:3: UserWarning: the project's own\n  warnings.warn('x')\n"
    )


async def test_pytest_with_no_tests_fails(workspace: Path) -> None:
    write(workspace, {"mod.py": "x = 1\n"})
    result = await Pytest(env=FAST_PYTEST)(workspace)
    assert not result.ok and "no tests" in result.summary


RED_FEATURE_TESTS = """
import feature_probe


def test_double():
    assert feature_probe.double(2) == 4


def test_zero():
    assert feature_probe.double(0) == 0
"""
PROBE_MISSING = "def double(x):\n    raise NotImplementedError\n"


async def test_red_first_passes_when_every_test_fails_before_the_code_exists(workspace: Path) -> None:
    write(workspace, {"test_feature.py": RED_FEATURE_TESTS, "feature_probe.py": PROBE_MISSING})
    result = await Pytest(env=FAST_PYTEST, tests=["test_feature.py"], expect="fail")(workspace)
    assert result.ok, result.details
    assert result.summary == "pytest (red first): all 2 test(s) fail before the code exists"


async def test_red_first_refuses_a_test_that_passes_without_the_code(workspace: Path) -> None:
    always = RED_FEATURE_TESTS + "\n\ndef test_anything():\n    assert True\n"
    write(workspace, {"test_feature.py": always, "feature_probe.py": PROBE_MISSING})
    result = await Pytest(env=FAST_PYTEST, tests=["test_feature.py"], expect="fail")(workspace)
    assert not result.ok
    assert "1 test(s) pass before the code they test exists, so they check nothing it adds" in result.summary
    assert "test_feature.py::test_anything" in result.summary


async def test_red_first_refuses_tests_that_do_not_run(workspace: Path) -> None:
    write(workspace, {"test_feature.py": "def test_x(:\n    pass\n"})
    result = await Pytest(env=FAST_PYTEST, tests=["test_feature.py"], expect="fail")(workspace)
    assert not result.ok and "the tests do not run as tests" in result.summary
    write(workspace, {"test_fixture.py": "def test_x(no_such_fixture):\n    assert False\n"})
    result = await Pytest(env=FAST_PYTEST, tests=["test_fixture.py"], expect="fail")(workspace)
    assert not result.ok and "ERROR test_fixture.py::test_x" in result.summary


def test_pytest_expect_is_checked() -> None:
    with pytest.raises(ConfigError, match="expect must be 'pass' or 'fail'"):
        Pytest(expect="red")


def test_pytest_summary_parsing() -> None:
    out = "....F\n==== short test summary info ====\nFAILED t.py::x\n1 failed, 4 passed, 2 warnings, 1 error in 0.31s\n"
    assert Pytest.parse_counts(out) == {"failed": 1, "passed": 4, "warnings": 2, "errors": 1}
    assert Pytest.parse_counts("===== 3 passed in 1.02s =====") == {"passed": 3}
    assert Pytest.parse_counts("no summary here") == {}


async def test_json_valid(workspace: Path) -> None:
    write(workspace, {"a.json": '{"a": [1, 2]}', "sub/b.json": "[]"})
    result = await JsonValid()(workspace)
    assert result.ok and result.counts == {"files": 2, "errors": 0}
    write(workspace, {"sub/c.json": '{\n  "a": 1,\n}\n'})
    result = await JsonValid()(workspace)
    assert not result.ok
    assert "sub/c.json:3:1: JSONDecodeError" in result.summary
    assert result.counts == {"files": 3, "errors": 1}


async def test_json_valid_glob_with_no_match_fails(workspace: Path) -> None:
    write(workspace, {"a.json": "{}"})
    result = await JsonValid("out/*.json")(workspace)
    assert not result.ok and "no JSON files" in result.summary


async def test_yaml_valid(workspace: Path) -> None:
    write(workspace, {"a.yaml": "a: 1\nb: [x, y]\n", "b.yml": "---\nx: 1\n---\ny: 2\n"})
    result = await YamlValid()(workspace)
    assert result.ok and result.counts == {"files": 2, "errors": 0}
    write(workspace, {"c.yaml": "a: 1\nb: [1\n"})
    result = await YamlValid()(workspace)
    assert not result.ok and result.summary.count("c.yaml:") == 1
    assert "c.yaml:3:1" in result.summary


async def test_yaml_unsafe_tags_are_rejected(workspace: Path) -> None:
    write(workspace, {"evil.yaml": "!!python/object/apply:os.system ['touch pwned']\n"})
    result = await YamlValid()(workspace)
    assert not result.ok and "ConstructorError" in result.summary
    assert not (workspace / "pwned").exists()


async def test_command_passes_and_fails(workspace: Path) -> None:
    assert (await Command([sys.executable, "-c", "pass"])(workspace)).ok
    result = await Command(f"{sys.executable} -c \"import sys; sys.exit('broken: 42')\"")(workspace)
    assert not result.ok
    assert "exited 1: broken: 42" in result.summary
    assert result.counts == {"returncode": 1}


async def test_a_verifier_stopped_by_the_sandbox_says_why(workspace: Path) -> None:
    result = await Command(["sleep", "30"], limits=Limits(wall_s=1))(workspace)
    assert not result.ok and "wall-time" in result.summary


# --- specs and registry --------------------------------------------------------------------------------------


def test_specs_build_verifiers() -> None:
    assert isinstance(verifier_from_spec("pytest"), Pytest)
    built = verifier_from_spec({"pytest": {"args": ["-k", "fast"], "tests": ["tests/"]}})
    assert isinstance(built, Pytest) and built.args == ("-k", "fast") and built.tests == ("tests/",)
    command = verifier_from_spec({"command": ["make", "check"]})
    assert isinstance(command, Command) and command.cmd == ["make", "check"]
    assert isinstance(verifier_from_spec({"json-valid": "*.json"}), JsonValid)
    assert isinstance(verifier_from_spec({"python_compile": None}), PythonCompile)
    assert {"python-compile", "ruff", "pytest", "json-valid", "yaml-valid", "command"} <= set(
        verifier_names()
    )


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("nope", "unknown verifier 'nope'"),
        ({"pytest": {"bogus": 1}}, "bad options for verifier 'pytest'"),
        ({"pytest": {}, "ruff": {}}, "one-key mapping"),
        ({"command": ""}, "non-empty command"),
        ({"json-valid": "/etc/*.json"}, "relative paths"),
        ({"python-compile": {"paths": ["../x"]}}, "relative paths"),
        (42, "a verifier spec is"),
    ],
)
def test_bad_specs_raise_config_error(spec: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        verifier_from_spec(spec, location="plan.yaml:7")  # type: ignore[arg-type]
    assert str(info.value).startswith("plan.yaml:7")


def test_get_verifier_unknown() -> None:
    with pytest.raises(ConfigError, match="known: .*pytest"):
        get_verifier("lint-everything")
    with pytest.raises(ConfigError, match=r"unknown verifier 'Pytst' \(did you mean 'pytest'\?\)"):
        get_verifier("Pytst")


async def test_registry_and_run_verifiers_stop_early(workspace: Path) -> None:
    with _verifiers.VERIFIERS.isolated():  # keep the test's verifier local
        calls: list[str] = []

        @verifier("test-always")
        class Always:
            def __init__(self, ok: bool = True) -> None:
                self.ok = ok

            async def __call__(self, ws: Path) -> VerifierResult:
                calls.append(f"always-{self.ok}")
                return VerifierResult(name="test-always", ok=self.ok, summary=f"always {self.ok}")

        specs = [{"test-always": {"ok": False}}, "test-always"]
        results = await run_verifiers(workspace, specs, stop_on_failure=True)
        assert [r.ok for r in results] == [False] and calls == ["always-False"]
        results = await run_verifiers(workspace, specs)
        assert [r.ok for r in results] == [False, True]
    assert "test-always" not in verifier_names()


async def test_run_verifiers_on_a_real_workspace(workspace: Path) -> None:
    write(
        workspace,
        {
            "app.py": "def add(a, b):\n    return a + b\n",
            "test_app.py": "from app import add\n\ndef test_add():\n    assert add(2, 3) == 5\n",
            "conf.json": "{}",
        },
    )
    results = await run_verifiers(
        workspace, ["python-compile", {"ruff": {"select": ["F", "E"]}}, PytestFast(), "json-valid"]
    )
    assert [r.name for r in results] == ["python-compile", "ruff", "pytest", "json-valid"]
    assert all(r.ok for r in results), [r.summary for r in results]


def PytestFast() -> Pytest:  # noqa: N802 - reads like the class it builds
    return Pytest(env=FAST_PYTEST)


# --- stated-asserts: model-written tests assert only what their checks state ---------------------------------

ANALYZE_TESTS = '''
import math

import pytest

from textstats.analyze import analyze


def test_acceptance_1() -> None:
    """analyze('Hi there. How are you?') has 5 words and 2 sentences."""
    report = analyze("Hi there. How are you?")
    assert report.characters == 15
    assert report.words == 5 and report.sentences == 2
    assert 3.0 == report.average_word_length


def test_acceptance_2(capsys: pytest.CaptureFixture[str]) -> None:
    """analyze("") has 0 characters, 0 sentences, average word length 0.0, and one word count of 0."""
    report = analyze("")
    assert (report.characters, report.sentences) == (0, 0)
    assert report.average_word_length == 0.0 and report.words == 0
    assert capsys.readouterr().out == "" and math.pi > 3  # not entity fields, not checked


def test_without_a_check() -> None:
    assert analyze("a").characters == 1
'''


async def test_stated_asserts_refuses_fields_the_check_does_not_name(workspace: Path) -> None:
    write(workspace, {"tests/test_feature_analyze.py": ANALYZE_TESTS})
    fields = ["average_word_length", "characters", "language", "sentences", "words"]
    check = verifier_from_spec(
        {"stated-asserts": {"paths": ["tests/test_feature_analyze.py"], "fields": fields}}
    )
    assert isinstance(check, StatedAsserts)
    result = await check(workspace)
    assert not result.ok and result.counts == {"files": 1, "unstated": 2}
    lines = result.details.splitlines()
    # characters and average_word_length are not in the first check; test 2's check names all four
    # (singular, spaced or plural), and a test without a docstring has no check to hold it to.
    assert lines[0].startswith(
        "tests/test_feature_analyze.py:12: test_acceptance_1 asserts `report.characters == 15`, but its check"
    )
    assert lines[0].endswith("says nothing about characters")
    assert "average_word_length" in lines[1] and "3.0 == report.average_word_length" in lines[1]
    assert "Assert only what each check states" in result.details
    assert result.summary.startswith("stated-asserts: 2 assertion(s) the checks do not state; first: ")


async def test_stated_asserts_passes_stated_tests_and_leaves_broken_files_to_compile(workspace: Path) -> None:
    stated = ANALYZE_TESTS.replace("    assert report.characters == 15\n", "").replace(
        "    assert 3.0 == report.average_word_length\n", ""
    )
    write(workspace, {"tests/test_a.py": stated, "tests/test_b.py": "def test_x(:\n"})
    result = await StatedAsserts("tests", fields=["characters", "words"])(workspace)
    assert result.ok and result.counts == {"files": 2, "unstated": 0}

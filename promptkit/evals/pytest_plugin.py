"""pytest integration: ``assert_suite`` for a test, or a plugin that turns suites into tests.

In a test::

    from promptkit.evals import assert_suite

    def test_prompts_still_pass():
        assert_suite("evals/debug.yaml")

Or enable the plugin (``pytest -p promptkit.evals.pytest_plugin --promptkit-evals evals/``): every ``*.yaml``
suite under ``evals/`` becomes one test per CI gate in its ``thresholds`` (the suite runs once); YAML files
there that are not suites (templates, example banks) are left alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from promptkit.evals._eval_log import EvalLog

from promptkit.evals._runner import assert_suite, describe_gate, failed_gates

__all__ = ["assert_suite", "failed_gates"]


# ------------------------------------------------------------------------------------------------ plugin

try:
    import pytest
except ImportError:  # pragma: no cover - the plugin needs pytest; assert_suite does not
    pytest = None  # type: ignore[assignment]


if pytest is not None:

    def pytest_addoption(parser: Any) -> None:
        group = parser.getgroup("promptkit")
        group.addoption(
            "--promptkit-evals",
            action="store_true",
            default=False,
            help="collect eval suites (evals/**/*.yaml) as tests, one per CI gate",
        )
        parser.addini("promptkit_evals_dir", "folder whose *.yaml suites are collected", default="evals")

    def pytest_collect_file(file_path: Path, parent: Any) -> Any:
        config = parent.config
        if not config.getoption("--promptkit-evals", default=False):
            return None
        if file_path.suffix not in (".yaml", ".yml"):
            return None
        root = Path(str(config.rootpath)) / config.getini("promptkit_evals_dir")
        try:
            file_path.resolve().relative_to(root.resolve())
        except ValueError:
            return None
        if not _is_suite(file_path):
            return None  # a template, a bank or other data kept beside the suites
        return SuiteFile.from_parent(parent, path=file_path)

    def _is_suite(path: Path) -> bool:
        """A suite is a mapping with top-level ``variants`` (templates and banks have none)."""
        import re

        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return True  # collected, so that loading it reports the problem
        return re.search(r"(?m)^variants\s*:", text) is not None

    class SuiteFile(pytest.File):
        """One suite file: its gates are the tests; the suite runs once, on the first of them."""

        def collect(self) -> Iterator[Any]:
            from promptkit.evals._suite import load_suite

            suite = load_suite(self.path)
            self._suite = suite
            self._log: EvalLog | None = None
            gates = list(suite.spec.thresholds) or ["completes"]
            for gate in gates:
                yield GateItem.from_parent(self, name=f"{suite.name}::{gate}", gate=gate)

        def log(self) -> EvalLog:
            if self._log is None:
                from promptkit.evals._runner import run_suite

                self._log = run_suite(self._suite, progress=False)
            return self._log

    class GateItem(pytest.Item):
        def __init__(self, *, gate: str, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.gate = gate

        def runtest(self) -> None:
            log = self.parent.log()
            if self.gate == "completes":
                if log.status != "complete":
                    raise AssertionError(f"suite {log.suite!r} ended {log.status}")
                return
            failed = [c for c in failed_gates(log) if c.name == self.gate]
            if failed:
                raise AssertionError("; ".join(describe_gate(c) for c in failed))

        def repr_failure(self, excinfo: Any, style: Any = None) -> str:
            if isinstance(excinfo.value, AssertionError):
                return str(excinfo.value)
            return str(super().repr_failure(excinfo))

        def reportinfo(self) -> tuple[Any, int | None, str]:
            return self.path, None, f"eval gate {self.name}"

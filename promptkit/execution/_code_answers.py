"""Code in model answers: pull it out of the text, assemble a test program, and check it against the visible
tests a user really has, the examples in the function's own docstring.

The docstring check is what a cascade can verify with before it escalates (``generate(accept=...)``) and what
the executor can run on a workspace; the hidden tests of a benchmark are never part of it.
"""

from __future__ import annotations

import ast
import re
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from promptkit._text import closing_bracket
from promptkit.execution._sandbox import Limits, arun_sandboxed

__all__ = ["DocExample", "DocstringExamples", "build_program", "docstring_examples", "extract_code"]

_CODE_BLOCK = re.compile(r"```[ \t]*(?:python3?|py)?[ \t]*\r?\n(.*?)```", re.DOTALL | re.IGNORECASE)


def extract_code(
    text: str, entry_point: str | None = None, *, block: Literal["first", "last"] = "first"
) -> str:
    """The code in a model answer: the first (or ``block="last"``) fenced block defining ``entry_point`` (or
    the first/last block at all), else the text.

    A last block left open (the answer stopped at its closing fence, or ran out of tokens) still counts."""
    from promptkit.prompts import close_open_fence  # here: importing the sandbox stays light (no YAML/Jinja)

    text = close_open_fence(text)
    blocks = _CODE_BLOCK.findall(text)
    if not blocks:
        return text
    if block == "last":
        blocks.reverse()
    if entry_point:
        for found in blocks:
            if re.search(rf"def\s+{re.escape(entry_point)}\s*\(", found):
                return str(found)
    return str(blocks[0])


def build_program(completion: str, *, prompt: str | None, test: str, entry_point: str | None) -> str:
    """HumanEval/MBPP style: prompt + completion (or a whole function) + the tests + ``check(entry_point)``.

    A completion that redefines the function after the prompt's signature simply replaces it (the prompt's
    own def has a docstring body, which is valid Python), so bodies and whole functions both work.
    """
    parts = []
    if prompt:
        parts.append(prompt.rstrip("\n"))
    parts.append(completion.rstrip())
    parts.append(test.rstrip())
    if entry_point and re.search(r"^def\s+check\s*\(", test, re.MULTILINE):
        parts.append(f"check({entry_point})")
    return "\n\n".join(parts) + "\n"


@dataclass(frozen=True)
class DocExample:
    """One example from a docstring: ``source`` (an expression, or a statement when ``expected`` is None) and
    the expected value's source; ``line`` counts from the top of the code it was found in."""

    source: str
    expected: str | None
    line: int


# `f(x) == y`, `f(x) ➞ y`, `f(x) -> y`, `f(x) => y`, `f(x) returns y`, `f(x) should return y`
_ARROW = re.compile(r"\s*(?:==|➞|->|=>|⟶|→|,?\s*(?:should\s+)?returns?)\s*(?P<want>.+?)\s*[.;,]?\s*$")


def _split_call(line: str) -> tuple[str, list[str]]:
    """``f(1) 2`` -> (``f(1)``, [``2``]) when a call is followed by a literal on the same line."""
    opened = line.find("(")
    end = closing_bracket(line, opened) if opened > 0 else None
    rest = line[end:].strip().removeprefix("==").strip() if end else ""
    if end and rest and _literal(rest) is not None and _literal_call(line[:end]):
        return line[:end], [rest]
    return line, []


def _is_expression(text: str) -> bool:
    try:
        ast.parse(text, mode="eval")
    except SyntaxError:
        return False
    return True


def _arrow_examples(docstring: str, entry_point: str, first_line: int) -> list[DocExample]:
    found = []
    name = re.compile(rf"(?<![\w.]){re.escape(entry_point)}\s*\(")
    for offset, line in enumerate(docstring.splitlines()):
        if line.lstrip().startswith((">>>", "...")):
            continue
        for match in name.finditer(line):
            end = closing_bracket(line, match.end() - 1)
            if end is None:
                continue
            arrow = _ARROW.match(line[end:])
            call = line[match.start() : end]
            if arrow is None or not _literal_call(call):
                continue
            want = _literal(arrow.group("want").strip())
            if want is not None:
                found.append(DocExample(call, want, first_line + offset))
    return found


def _literal(text: str) -> str | None:
    """``text`` as a Python literal's source (``true``/``false`` read as booleans), or None if it is not one."""
    text = {"true": "True", "false": "False", "none": "None", "null": "None"}.get(text, text)
    try:
        ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    return text


def _literal_call(text: str) -> bool:
    """A call whose arguments are all literals: an example, not a definition such as ``fib(n) = ...``."""
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError:
        return False
    if not isinstance(node, ast.Call):
        return False
    try:
        for arg in [*node.args, *(k.value for k in node.keywords)]:
            ast.literal_eval(arg)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _prompt_examples(docstring: str, first_line: int) -> list[DocExample]:
    """``>>>`` examples: the source (with ``...`` continuation lines) and the lines after it up to a blank line
    or the next prompt. Parsed by hand: doctest's parser refuses whole docstrings over one odd indent."""
    found: list[DocExample] = []
    lines = docstring.splitlines()
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        if not stripped.startswith(">>>"):
            i += 1
            continue
        start = i
        source = [stripped[3:].strip()]
        i += 1
        while i < len(lines) and lines[i].strip().startswith("..."):
            source.append(lines[i].strip()[3:].lstrip())
            i += 1
        want = []
        while i < len(lines) and lines[i].strip() and not lines[i].strip().startswith(">>>"):
            want.append(lines[i].strip())
            i += 1
        code = "\n".join(source)
        if not want and len(source) == 1:  # `>>> f(1) 2`: the value written on the prompt's own line
            code, want = _split_call(code)
        try:
            ast.parse(code)
        except SyntaxError:
            continue
        # The value is the fewest lines that read as one (prose may follow it without a blank line).
        values = (" ".join(want[:k]) for k in range(1, len(want) + 1))
        expected = next((v for v in values if _is_expression(v)), None) if want else None
        if want and expected is None:
            continue
        if expected is not None and not _is_expression(code):
            continue  # output printed by a statement: nothing to compare a value with
        found.append(DocExample(code, expected, first_line + start))
    return found


def docstring_examples(source: str, entry_point: str) -> list[DocExample]:
    """The examples in the docstring of function ``entry_point`` in ``source``: doctest ``>>>`` examples, and
    lines of the form ``f(x) == y`` (also ``➞``, ``->``, ``=>``, ``returns``). Empty when there are none, or
    when the function or its docstring cannot be found."""
    try:
        tree = ast.parse(textwrap.dedent(source))
    except SyntaxError:
        return []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == entry_point:
            return _function_examples(node)
    return []


def _function_examples(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[DocExample]:
    docstring = ast.get_docstring(node, clean=False)
    if not docstring:
        return []
    first = node.body[0].lineno
    return _prompt_examples(docstring, first) + _arrow_examples(docstring, node.name, first)


# Runs in the sandbox: each example in a namespace, one line per failure ("<where>line N: ...").
_RUN_EXAMPLES = """
def __promptkit_run_examples(space, examples, where=""):
    import math
    failures = []
    for line, source, expected in examples:
        try:
            if expected is None:
                exec(source, space)
                continue
            got = eval(source, space)
        except BaseException as exc:  # noqa: BLE001 - the example's own failure is the report
            failures.append(f"{where}line {line}: {source} raised {type(exc).__name__}: {exc}")
            continue
        try:
            want = eval(expected, {})
        except BaseException:
            same = repr(got) == expected or str(got) == expected
        else:
            same = got == want
            if not same and isinstance(got, (int, float)) and isinstance(want, (int, float)):
                same = math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9)
        if not same:
            failures.append(f"{where}line {line}: {source} returned {got!r:.300}, expected {expected}")
    return failures
"""

# After the candidate's code: its function exists, and every example holds.
_CHECK_ANSWER = """
def __promptkit_check(entry_point, examples):
    if not callable(globals().get(entry_point)):
        print(f"the answer defines no function {entry_point}()")
        raise SystemExit(1)
    failures = __promptkit_run_examples(globals(), examples)
    if failures:
        print(f"{len(failures)} of {len(examples)} docstring examples fail:")
        print("\\n".join(failures))
        raise SystemExit(1)


__promptkit_check(ENTRY, EXAMPLES)
"""

# A workspace: import each module from its file, run its functions' examples in its namespace.
_CHECK_FILES = """
import importlib.util, sys
sys.path.insert(0, ".")
failures, total = [], 0
for path, examples in FILES:
    total += len(examples)
    name = path[:-3].replace("/", ".")
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    except BaseException as exc:
        failures.append(f"{path}:1: importing it raised {type(exc).__name__}: {exc}")
        continue
    failures += __promptkit_run_examples(vars(module), examples, f"{path}:")
for failure in failures:
    print(failure.replace(":line ", ":", 1))
print(f"#examples={total} failed={len(failures)}")
sys.exit(1 if failures else 0)
"""


def _examples_data(examples: list[DocExample]) -> str:
    return repr([(ex.line, ex.source, ex.expected) for ex in examples])


def examples_program(
    code: str, entry_point: str, examples: list[DocExample], prompt: str | None = None
) -> str:
    """``code`` (after ``prompt``, whose imports it may rely on) followed by a check of every example."""
    check = _CHECK_ANSWER.replace("ENTRY, EXAMPLES", f"{entry_point!r}, {_examples_data(examples)}")
    return build_program(code, prompt=prompt, test=_RUN_EXAMPLES + check, entry_point=None)


def file_examples(source: str) -> list[DocExample]:
    """The docstring examples of every top-level function in a module's ``source``, in file order."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found: list[DocExample] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found += _function_examples(node)
    return found


def files_program(files: list[tuple[str, list[DocExample]]]) -> str:
    """A program that checks each file's examples: "path:line: ..." per failure, then a tally line."""
    data = "[" + ", ".join(f"({path!r}, {_examples_data(ex)})" for path, ex in files) + "]"
    return _RUN_EXAMPLES + _CHECK_FILES.replace("FILES", data, 1)


class DocstringExamples:
    """An acceptance check from the examples in a function's docstring: ``accept=DocstringExamples(prompt,
    "f")`` in ``generate()`` runs the answer's code against them in the sandbox, and rejects it with each
    failing example (call, value returned, value expected) for the repair attempt to fix.

    ``prompt`` is the code the model was given (a signature and docstring, and the imports the answer may use).
    Without examples (``examples`` is empty) the check still rejects code that does not run or does not
    define the function.
    """

    def __init__(
        self, prompt: str, entry_point: str, *, timeout_s: float = 10.0, memory_mb: int = 512
    ) -> None:
        self.prompt = prompt
        self.entry_point = entry_point
        self.examples = docstring_examples(prompt, entry_point)
        self.limits = Limits(wall_s=timeout_s, cpu_s=timeout_s, memory_mb=memory_mb)

    async def __call__(self, output: Any) -> bool | str:
        text = output if isinstance(output, str) else str(getattr(output, "text", output))
        return await self.check_code(extract_code(text, self.entry_point))

    async def check_code(self, code: str) -> bool | str:
        """True when every example holds, else what failed (one line per failing example)."""
        program = examples_program(code, self.entry_point, self.examples, self.prompt)
        with tempfile.TemporaryDirectory(prefix="promptkit-examples-") as folder:
            Path(folder, "program.py").write_text(program, encoding="utf-8")
            result = await arun_sandboxed(
                [sys.executable, "-I", "program.py"], cwd=Path(folder), limits=self.limits
            )
        if result.ok:
            return True
        if result.killed_reason:
            return f"the docstring examples did not finish: {result.killed_reason}"
        report = result.stdout.strip() or result.stderr.strip()
        return report[-2000:] or f"the docstring examples failed (exit status {result.returncode})"

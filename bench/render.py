"""Render speed: promptkit's render+validate against a bare, pre-compiled jinja2.Template of the same text.

    python bench/render.py [--iterations 5000]

Both sides render the same ~2 KB of message text with 3 few-shot examples. The bare side is the floor:
one plain (unsandboxed) jinja2.Template compiled once, rendered with ``render(**vars)``. promptkit's side
adds input validation, the sandbox, per-message rendering, whitespace stripping and Message objects.
Targets: median <= 100 us and <= 3x the bare median.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import jinja2

from promptkit.prompts import Template

SYSTEM = """You are a senior {{ language }} engineer who reviews code for correctness, clarity and safety.
Work in three steps. First, restate what the code is meant to do in one sentence, using the names that
appear in it. Second, list every defect you can find: logic errors, unhandled edge cases (empty input,
None, very large values, unicode), resource leaks, race conditions, injection risks, and places where the
error handling hides the real cause. Third, propose the smallest change that fixes each defect, and say how
a test would show that the fix works. Prefer standard-library solutions, keep public signatures unchanged
unless they are the defect, and never invent APIs that the language or its standard library does not have.
If the code is correct, say so plainly and explain which edge cases you checked. Keep the review focused:
no style nits unless they hide a bug. Answer as JSON matching this schema:
{{ output_schema }}"""

USER = """Review this {{ language }} code{% if context %} ({{ context }}){% endif %}.

```{{ language }}
{{ code }}
```

Severity threshold: {{ threshold }}. Report at most {{ max_findings }} findings, most severe first, and
mention the line numbers they refer to when the code has them. Focus areas: {{ focus | join(", ") }}."""

EXAMPLE_USER = "Review this {{ example.inputs.language }} code:\n{{ example.inputs.code }}"
EXAMPLE_ASSISTANT = "{{ example.output_json }}"


def _yaml_block(text: str, indent: int) -> str:
    pad = " " * indent
    return "\n".join(pad + line if line else "" for line in text.splitlines())


TEMPLATE_YAML = f"""
name: bench-review
version: 1.0.0
description: Benchmark template.
inputs:
  language: {{type: string, enum: [python, javascript, go]}}
  code: {{type: string, max_length: 20000, trim_priority: 10}}
  context: {{type: string, required: false, default: null}}
  threshold: {{type: string, default: medium}}
  max_findings: {{type: integer, default: 5, minimum: 1}}
  focus: {{type: array, items: string, default: [correctness]}}
output:
  type: object
  properties:
    findings:
      type: array
      maxItems: 10
      items:
        type: object
        properties:
          line: {{type: [integer, "null"]}}
          problem: {{type: string, maxLength: 500}}
          fix: {{type: string, maxLength: 2000}}
        required: [problem, fix]
  required: [findings]
examples:
  - inputs: {{language: python, code: "def mean(xs): return sum(xs) / len(xs)"}}
    output: {{findings: [{{line: 1, problem: "ZeroDivisionError on an empty list", fix: "return 0.0 or raise ValueError when xs is empty"}}]}}
  - inputs: {{language: javascript, code: "const ids = rows.map(r => r.id).sort()"}}
    output: {{findings: [{{line: 1, problem: "default sort compares strings", fix: "sort((a, b) => a - b)"}}]}}
  - inputs: {{language: go, code: "f, _ := os.Open(p)\\ndefer f.Close()"}}
    output: {{findings: [{{line: 1, problem: "the error from os.Open is ignored", fix: "check err before defer"}}]}}
messages:
  - role: system
    content: |
{_yaml_block(SYSTEM, 6)}
  - examples:
      - role: user
        content: |
{_yaml_block(EXAMPLE_USER, 10)}
      - role: assistant
        content: "{EXAMPLE_ASSISTANT}"
  - role: user
    content: |
{_yaml_block(USER, 6)}
"""

INPUTS: dict[str, Any] = {
    "language": "python",
    "code": "def load(path):\n    f = open(path)\n    data = f.read()\n    return json.loads(data)\n",
    "context": "a config loader called at start-up",
    "threshold": "low",
    "max_findings": 3,
    "focus": ["correctness", "resource handling"],
}


def _median_ns(fn: Callable[[], Any], iterations: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    samples = []
    clock = time.perf_counter_ns
    for _ in range(iterations):
        start = clock()
        fn()
        samples.append(clock() - start)
    return statistics.median(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=5000)
    parser.add_argument("--warmup", type=int, default=500)
    args = parser.parse_args(argv)
    if args.iterations < 2000:
        parser.error("use at least 2000 iterations")

    template = Template.from_text(TEMPLATE_YAML, source="bench")
    # The same text as one plain Jinja template: the examples block becomes a for loop.
    bare_source = "\n".join(
        [
            SYSTEM,
            "{% for example in examples %}",
            EXAMPLE_USER,
            EXAMPLE_ASSISTANT,
            "{% endfor %}",
            USER,
        ]
    )
    bare = jinja2.Template(bare_source)
    bare_vars = {**INPUTS, "examples": list(template.examples), "output_schema": template.output_schema_text}

    rendered = template.render(INPUTS)
    text_bytes = sum(len(m.content.encode()) for m in rendered.messages)
    bare_text = bare.render(**bare_vars)

    ours = _median_ns(lambda: template.render(INPUTS), args.iterations, args.warmup)
    floor = _median_ns(lambda: bare.render(**bare_vars), args.iterations, args.warmup)
    ratio = ours / floor
    print(
        f"rendered text: promptkit {text_bytes} bytes in {len(rendered.messages)} messages, bare {len(bare_text)} chars"
    )
    print(f"promptkit render+validate median: {ours / 1000:.1f} us")
    print(f"bare jinja2.Template.render median: {floor / 1000:.1f} us")
    print(f"ratio: {ratio:.2f}x")
    ok = ours <= 100_000 and ratio <= 3.0
    print("targets (<= 100 us, <= 3x):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

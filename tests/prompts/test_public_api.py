from __future__ import annotations

import subprocess
import sys

import promptkit.prompts as prompts

EXPECTED = {
    "Template",
    "InputField",
    "RenderedPrompt",
    "ExampleSelection",
    "TemplateRegistry",
    "LintProblem",
    "load_template",
    "list_templates",
    "default_registry",
    "count_tokens",
    "schema_to_model",
    "LexicalEmbedder",
}


def test_all_lists_the_public_api_and_every_name_exists() -> None:
    assert EXPECTED <= set(prompts.__all__)
    for name in prompts.__all__:
        assert getattr(prompts, name) is not None, name


def test_importing_prompts_pulls_in_no_heavy_sdk() -> None:
    code = (
        "import sys, promptkit.prompts; "
        "heavy = [m for m in ('litellm', 'llama_cpp', 'gguf', 'instructor', 'scipy', 'tiktoken') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""

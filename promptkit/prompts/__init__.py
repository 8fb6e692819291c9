"""Typed, versioned prompt templates: loading, sandboxed rendering, few-shot examples, token budgets.

from promptkit.prompts import load_template
prompt = load_template("debug").render(language="python", code=src, error=err, budget=4000)
prompt.messages        # list[promptkit.types.Message]
prompt.output_model    # the pydantic model the answer must match, or None for free text

load_template("debug").with_output(MyFix)  # the same prompt answering in a model of your own
@template(output=Invoice)                  # or a template defined in Python: see promptkit.prompts.template
class extract_invoice: ...

read_document(path, SpecError)             # the one YAML/JSON reader (planning and evals use it too): every
                                           # problem is the caller's error class, at file:line: field
"""

from __future__ import annotations

from promptkit.prompts._documents import (
    Document,
    LineMap,
    field_path,
    load_yaml,
    parse_document,
    raise_validation,
    read_document,
    validation_message,
    validation_problem,
)
from promptkit.prompts._examples import Example, ExampleSelection, LexicalEmbedder
from promptkit.prompts._formats import (
    TEXT_FORMATS,
    FilesAnswer,
    FileText,
    SectionsAnswer,
    TextFormat,
    close_open_fence,
    sections_format,
)
from promptkit.prompts._inputs import InputField
from promptkit.prompts._lint import LintProblem
from promptkit.prompts._output import OutputWrapper, output_model_for
from promptkit.prompts._python import template
from promptkit.prompts._registry import (
    TemplateRegistry,
    builtin_template_dir,
    default_registry,
    list_templates,
    load_template,
)
from promptkit.prompts._schema import schema_to_model
from promptkit.prompts._template import RenderedPrompt, Template
from promptkit.prompts._tokens import approximate_tokens, count_tokens, count_tokens_detailed, surely_fits

__all__ = [
    "Template",
    "InputField",
    "RenderedPrompt",
    "Example",
    "ExampleSelection",
    "TemplateRegistry",
    "LintProblem",
    "load_template",
    "list_templates",
    "default_registry",
    "builtin_template_dir",
    "count_tokens",
    "count_tokens_detailed",
    "approximate_tokens",
    "surely_fits",
    "schema_to_model",
    "LexicalEmbedder",
    "load_yaml",
    "LineMap",
    "Document",
    "read_document",
    "parse_document",
    "field_path",
    "raise_validation",
    "validation_problem",
    "validation_message",
    "TextFormat",
    "close_open_fence",
    "FilesAnswer",
    "FileText",
    "SectionsAnswer",
    "sections_format",
    "TEXT_FORMATS",
    "OutputWrapper",
    "output_model_for",
    "template",
]

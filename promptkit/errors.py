"""Every error promptkit raises, in one tree.

Catch ``PromptkitError`` to handle them all; the CLI prints ``str(error)`` as one line, with no traceback,
and exits with ``error.exit_code``.

    PromptkitError
    ├── ConfigError                  bad promptkit.toml / [tool.promptkit], unknown model alias
    ├── TemplateError
    │   ├── TemplateNotFound         no template of that name on the search path
    │   ├── TemplateLoadError        a template file that cannot be parsed (names file and line)
    │   ├── InputValidationError     missing, unknown or wrongly-typed input (names template and field)
    │   ├── OutputSchemaError        an output schema promptkit cannot turn into a type
    │   ├── RenderError              Jinja2 failed: undefined variable, sandbox violation
    │   ├── ExampleError             a few-shot example that does not match inputs/output
    │   └── ContextBudgetError       the render cannot fit the token budget even after trimming
    ├── BackendError
    │   ├── BackendUnavailable       the SDK for a backend is not installed, or a model file is missing
    │   ├── TransportError           a fault worth retrying elsewhere
    │   │   ├── RateLimited          HTTP 429; carries retry_after (seconds) when the server sent it
    │   │   ├── ServerError          HTTP 5xx
    │   │   ├── RequestTimeout       no answer in time
    │   │   ├── ConnectionFailed     refused or dropped connection
    │   │   └── MalformedResponse    a body that is not what the protocol promises
    │   └── ModelRequestError        the provider rejected the request itself (4xx other than 429)
    ├── OutputValidationError        one answer failed parsing or its acceptance check
    ├── AttemptsExhausted            every attempt failed; carries each attempt's raw output and the usage
    ├── BudgetExceeded               a call would pass the run's dollar or token cap; refused before sending
    ├── RoutingError                 no route could serve the call
    ├── CacheError                   the cache database is unusable
    ├── LedgerError                  the ledger database is unusable
    ├── SpecError                    an app spec that does not validate (names file, line and field)
    ├── PlanError                    a plan with a cycle, an unknown reference or a path outside the workspace
    ├── WorkspaceError               an edit that would escape the workspace or its allow-list
    ├── SandboxError                 the sandbox itself could not run a command
    └── EvalError                    an eval suite, dataset or scorer that is wrong (names file, line and field)
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "PromptkitError",
    "ConfigError",
    "TemplateError",
    "TemplateNotFound",
    "TemplateLoadError",
    "InputValidationError",
    "OutputSchemaError",
    "RenderError",
    "ExampleError",
    "ContextBudgetError",
    "BackendError",
    "BackendUnavailable",
    "TransportError",
    "RateLimited",
    "ServerError",
    "RequestTimeout",
    "ConnectionFailed",
    "MalformedResponse",
    "ModelRequestError",
    "OutputValidationError",
    "AttemptsExhausted",
    "BudgetExceeded",
    "RoutingError",
    "CacheError",
    "LedgerError",
    "SpecError",
    "PlanError",
    "WorkspaceError",
    "SandboxError",
    "EvalError",
]


class PromptkitError(Exception):
    """Base of every promptkit error.

    ``location`` says where the problem is (``file:line``, ``template.field``), when that is known;
    it is put in front of the message so that one line tells the whole story.
    """

    exit_code = 1

    def __init__(self, message: str, *, location: str | None = None) -> None:
        self.message = message
        self.location = location
        super().__init__(f"{location}: {message}" if location else message)


def file_location(path: object, line: int | None = None, field: str | None = None) -> str:
    """``path:line: field`` with the parts that are known, for errors that point into a file."""
    where = str(path)
    if line is not None:
        where += f":{line}"
    if field:
        where += f": {field}"
    return where


class ConfigError(PromptkitError):
    exit_code = 2


class TemplateError(PromptkitError):
    exit_code = 2


class TemplateNotFound(TemplateError):
    pass


class TemplateLoadError(TemplateError):
    pass


class InputValidationError(TemplateError):
    def __init__(self, template: str, field: str, problem: str) -> None:
        self.template = template
        self.field = field
        self.problem = problem
        super().__init__(f"input {field!r}: {problem}", location=f"template {template!r}")


class OutputSchemaError(TemplateError):
    pass


class RenderError(TemplateError):
    pass


class ExampleError(TemplateError):
    pass


class ContextBudgetError(TemplateError):
    pass


class BackendError(PromptkitError):
    pass


class BackendUnavailable(BackendError):
    pass


class TransportError(BackendError):
    """A fault of the transport, not of the request: retry with backoff, then try the next deployment."""


class RateLimited(TransportError):
    def __init__(
        self, message: str, *, retry_after: float | None = None, location: str | None = None
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, location=location)


class ServerError(TransportError):
    pass


class RequestTimeout(TransportError):
    pass


class ConnectionFailed(TransportError):
    pass


class MalformedResponse(TransportError):
    pass


class ModelRequestError(BackendError):
    pass


class OutputValidationError(PromptkitError):
    def __init__(self, message: str, *, raw_output: str = "", location: str | None = None) -> None:
        self.raw_output = raw_output
        super().__init__(message, location=location)


class AttemptsExhausted(PromptkitError):
    """Raised when the re-ask loop (or a cascade) runs out of attempts.

    ``attempts`` holds one record per attempt (raw output, error, model); ``usage`` the summed tokens.
    """

    def __init__(
        self, message: str, *, attempts: list[Any], usage: Any = None, location: str | None = None
    ) -> None:
        self.attempts = attempts
        self.usage = usage
        super().__init__(message, location=location)


class BudgetExceeded(PromptkitError):
    pass


class RoutingError(PromptkitError):
    pass


class CacheError(PromptkitError):
    pass


class LedgerError(PromptkitError):
    pass


class SpecError(PromptkitError):
    exit_code = 2


class PlanError(PromptkitError):
    exit_code = 2


class WorkspaceError(PromptkitError):
    pass


class SandboxError(PromptkitError):
    pass


class EvalError(PromptkitError):
    exit_code = 2

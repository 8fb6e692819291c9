"""OpenTelemetry traces: spans for ``generate()`` and its attempts, eval runs and executor steps.

Off, and close to free, until an OpenTelemetry tracer provider exists. promptkit never sets one up behind an
application's back: its spans go to the global tracer provider the application (or ``opentelemetry-instrument``)
configured, so they join the application's own traces. The ``promptkit`` command sets one up itself when
``[tracing] otlp_endpoint`` in ``promptkit.toml`` or ``OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT`` asks for OTLP
export (:func:`setup`, which needs ``pip install 'promptkit[otel]'``). Nothing here imports opentelemetry until
a provider exists, so ``import promptkit`` does not pay for it.

Attribute names follow the OpenTelemetry GenAI semantic conventions where one applies
(``gen_ai.operation.name``, ``gen_ai.request.model``, ``gen_ai.usage.input_tokens`` ...) and are ``promptkit.*``
otherwise. Prompts, answers and error messages stay out of spans unless content recording is switched on
(``[tracing] record_content = true``, :func:`configure`, or ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``);
the callers that hand text over scrub secrets from it first.

The span tree of one ``generate()`` call::

    promptkit.generate {template}
    ├── promptkit.render
    ├── promptkit.route
    ├── promptkit.cache.lookup            (exact; semantic when configured)
    ├── chat {model}                      (an attempt: tier, tokens, cost, outcome, reason)
    ├── chat {model}                      (promptkit.reason = "reask")
    └── chat {model}                      (promptkit.reason = "escalation")
"""

from __future__ import annotations

import contextvars
import os
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from promptkit.errors import ConfigError

if TYPE_CHECKING:
    from promptkit.config import Config

__all__ = [
    "NO_SPAN",
    "Span",
    "configure",
    "enabled",
    "record_content",
    "record_span",
    "setup",
    "setup_for_cli",
    "span",
    "start",
]

CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_CONTENT_ON = {"1", "true", "yes", "on", "span_only", "span_and_event"}
_modules = sys.modules
_OTEL_TRACE = "opentelemetry.trace"
_PROVIDER_FROM_ENV = (
    "OTEL_PYTHON_TRACER_PROVIDER" in os.environ
)  # a provider the API builds from the environment
_UNSET: Any = object()

_tracer: Any = None  # promptkit's tracer, once a provider is known to exist
_provider: Any = None  # a provider given to configure(); else the global one
_content: bool | None = None  # None: follow the environment
_trace: Any = None  # opentelemetry.trace and opentelemetry.context, imported with the first tracer
_context: Any = None
# Attempt spans started but not yet ended in this generate() call: ended by the call's span if left open.
_pending: contextvars.ContextVar[list[Span] | None] = contextvars.ContextVar(
    "promptkit_pending", default=None
)


def _resolve() -> Any:
    """The tracer to use, or None while no tracer provider is configured (the common, free case)."""
    global _tracer, _trace, _context
    provider = _provider
    if provider is None:
        trace = sys.modules.get("opentelemetry.trace")
        if trace is None:  # nobody imported opentelemetry: nobody can have configured it
            return None
        # The API's own check reads os.environ on every call (about a microsecond): its global, when it has
        # one, says the same for a tenth of that. Any other API version takes the public path.
        if getattr(trace, "_TRACER_PROVIDER", _UNSET) is None and not _PROVIDER_FROM_ENV:
            return None
        provider = trace.get_tracer_provider()
        if isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
            return None
    from opentelemetry import context, trace

    _trace, _context = trace, context
    _tracer = provider.get_tracer("promptkit", _version())
    return _tracer


def _version() -> str | None:
    try:
        from importlib.metadata import version

        return version("promptkit")
    except Exception:  # pragma: no cover - a source checkout without metadata
        return None


def enabled() -> bool:
    """Whether spans are recorded: a tracer provider is configured (globally or through :func:`configure`)."""
    if _tracer is not None:
        return True
    # The common case answered inline: nobody imported opentelemetry, so nobody configured it.
    if _provider is None and _OTEL_TRACE not in _modules:
        return False
    return _resolve() is not None


def record_content() -> bool:
    """Whether spans may carry prompt and answer text (scrubbed of secrets by the caller). Off by default."""
    if _content is not None:
        return _content
    return os.environ.get(CONTENT_ENV, "").strip().lower() in _CONTENT_ON


def configure(*, tracer_provider: Any = _UNSET, record_content: bool | None = _UNSET) -> None:
    """Send promptkit's spans to ``tracer_provider`` instead of the global one (None: back to the global), and
    switch content recording on or off (None: follow ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``)."""
    global _provider, _tracer, _content
    if tracer_provider is not _UNSET:
        _provider = tracer_provider
        _tracer = None
    if record_content is not _UNSET:
        _content = record_content


# --- spans -------------------------------------------------------------------------------------------------


def _clean(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """OpenTelemetry takes str, bool, int, float and their sequences; None means 'not known': left out."""
    out: dict[str, Any] = {}
    for key, value in attributes.items():
        if value is None:
            continue
        if isinstance(value, (tuple, list)):
            value = [v if isinstance(v, (str, bool, int, float)) else str(v) for v in value if v is not None]
        elif not isinstance(value, (str, bool, int, float)):
            value = str(value)
        out[key] = value
    return out


class Span:
    """A recording span. Used as a context manager it is the current span inside the block and ends on exit
    (an exception marks it failed, by type only); :func:`start` gives one to end explicitly."""

    __slots__ = ("_span", "_token", "_pending", "_owner", "_owner_token", "_failed")

    def __init__(self, span: Any, *, owner: bool = False) -> None:
        self._span = span
        self._token: Any = None
        self._pending: list[Span] | None = None
        self._owner = owner
        self._owner_token: Any = None
        self._failed = False

    def __bool__(self) -> bool:
        return True

    @property
    def otel_span(self) -> Any:
        """The OpenTelemetry span itself."""
        return self._span

    def set(self, attributes: Mapping[str, Any]) -> None:
        self._span.set_attributes(_clean(attributes))

    def event(self, name: str, attributes: Mapping[str, Any] | None = None) -> None:
        self._span.add_event(name, _clean(attributes or {}))

    def fail(self, error: BaseException | str, message: str | None = None) -> None:
        """Mark the span failed: ``error.type`` and an error status. ``message`` (already scrubbed, only when
        content may be recorded) becomes the status description."""
        self._failed = True
        kind = error if isinstance(error, str) else type(error).__name__
        self._span.set_attribute("error.type", kind)
        self._span.set_status(_trace.Status(_trace.StatusCode.ERROR, message or kind))

    def end(self, attributes: Mapping[str, Any] | None = None, *, end_ns: int | None = None) -> None:
        if attributes:
            self.set(attributes)
        pending = self._pending
        if pending is not None:
            self._pending = None
            try:
                pending.remove(self)
            except ValueError:
                pass
        self._span.end(end_time=end_ns)

    def current(self) -> _Current:
        """A context manager making this span the current one without ending it."""
        return _Current(self._span)

    def __enter__(self) -> Span:
        self._token = _context.attach(_trace.set_span_in_context(self._span))
        if self._owner:
            self._owner_token = _pending.set([])
        return self

    def __exit__(self, typ: Any, exc: BaseException | None, tb: Any) -> None:
        if self._owner_token is not None:
            for left in list(_pending.get() or ()):
                left.end({"promptkit.outcome": "abandoned"})
            _pending.reset(self._owner_token)
            self._owner_token = None
        if exc is not None and not self._failed:
            self.fail(exc)
        _context.detach(self._token)
        self._span.end()


class _Current:
    __slots__ = ("_span", "_token")

    def __init__(self, span: Any) -> None:
        self._span = span

    def __enter__(self) -> None:
        self._token = _context.attach(_trace.set_span_in_context(self._span))

    def __exit__(self, *exc: object) -> None:
        _context.detach(self._token)


class _NoSpan:
    """What every span function returns while tracing is off: falsy, and every method does nothing."""

    __slots__ = ()

    def __bool__(self) -> bool:
        return False

    def __enter__(self) -> _NoSpan:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def set(self, attributes: Mapping[str, Any]) -> None:
        return None

    def event(self, name: str, attributes: Mapping[str, Any] | None = None) -> None:
        return None

    def fail(self, error: BaseException | str, message: str | None = None) -> None:
        return None

    def end(self, attributes: Mapping[str, Any] | None = None, *, end_ns: int | None = None) -> None:
        return None

    def current(self) -> _NoSpan:
        return self


NO_SPAN = _NoSpan()


def _kind(kind: str) -> Any:
    return _trace.SpanKind.CLIENT if kind == "client" else _trace.SpanKind.INTERNAL


def span(
    name: str, attributes: Mapping[str, Any] | None = None, *, kind: str = "internal", owner: bool = False
) -> Span | _NoSpan:
    """A span that is current inside its ``with`` block, or :data:`NO_SPAN` while tracing is off.

    Build costly attributes only ``if span:`` (a NO_SPAN is falsy). ``owner``: attempt spans started inside and
    left open (an exception between an answer and its verdict) are ended with the block.
    """
    tracer = _tracer
    if tracer is None:
        if _provider is None and _OTEL_TRACE not in _modules:
            return NO_SPAN
        tracer = _resolve()
        if tracer is None:
            return NO_SPAN
    return Span(tracer.start_span(name, attributes=_clean(attributes or {}), kind=_kind(kind)), owner=owner)


def start(
    name: str,
    attributes: Mapping[str, Any] | None = None,
    *,
    kind: str = "internal",
    start_ns: int | None = None,
) -> Span | _NoSpan:
    """A started span, child of the current one, that the caller ends with ``.end()`` (make it current for a
    while with ``.current()``), or :data:`NO_SPAN` while tracing is off."""
    tracer = _tracer if _tracer is not None else _resolve()
    if tracer is None:
        return NO_SPAN
    made = Span(
        tracer.start_span(name, attributes=_clean(attributes or {}), kind=_kind(kind), start_time=start_ns)
    )
    pending = _pending.get()
    if pending is not None:
        pending.append(made)
        made._pending = pending
    return made


def record_span(
    name: str,
    attributes: Mapping[str, Any] | None = None,
    *,
    duration_s: float = 0.0,
    end_ns: int | None = None,
    error: str | None = None,
) -> None:
    """A finished span for something already done: it ended at ``end_ns`` (default now) and took ``duration_s``."""
    tracer = _tracer if _tracer is not None else _resolve()
    if tracer is None:
        return
    end = end_ns if end_ns is not None else time.time_ns()
    begin = end - max(0, int(duration_s * 1e9))
    made = Span(tracer.start_span(name, attributes=_clean(attributes or {}), start_time=begin))
    if error is not None:
        made.fail(error)
    made.end(end_ns=end)


# --- export ------------------------------------------------------------------------------------------------


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _traces_url(endpoint: str) -> str:
    """A base URL (``http://host:4318``) gets OTLP/HTTP's ``/v1/traces`` path, like ``OTEL_EXPORTER_OTLP_ENDPOINT``."""
    from urllib.parse import urlsplit

    path = urlsplit(endpoint).path
    return endpoint.rstrip("/") + "/v1/traces" if path in ("", "/") else endpoint


def setup(config: Config | None = None, *, endpoint: str | None = None) -> bool:
    """Export spans over OTLP/HTTP when asked to, and read ``[tracing]``'s ``record_content``.

    The endpoint is ``endpoint``, else ``[tracing] otlp_endpoint`` of ``config``, else the standard
    ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_ENDPOINT``. Nothing is installed when none is
    set, when ``[tracing] enabled = false``, ``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none``, or when
    the application already configured a tracer provider (its own exporters get promptkit's spans). Returns
    whether an exporter was installed; spans are flushed at exit.
    """
    table: Mapping[str, Any] = {}
    where = "[tracing]"
    if config is not None:
        raw = config.raw.get("tracing", {})
        if not isinstance(raw, Mapping):
            raise ConfigError("[tracing] must be a table", location=str(config.source or "config"))
        table = raw
        where = f"{config.source}: [tracing]" if config.source else "[tracing]"
    if "record_content" in table:
        configure(record_content=bool(table["record_content"]))
    if table.get("enabled", True) is False or _flag(os.environ.get("OTEL_SDK_DISABLED")):
        return False
    if os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    url = endpoint or table.get("otlp_endpoint")
    from_env = url is None
    if from_env and not (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    ):
        return False
    if url is not None and not isinstance(url, str):
        raise ConfigError("otlp_endpoint must be a URL string", location=where)
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        message = f"exporting traces needs the otel extra: pip install 'promptkit[otel]' ({exc})"
        if from_env:  # an environment meant for other programs must not break promptkit
            import warnings

            warnings.warn(message, RuntimeWarning, stacklevel=2)
            return False
        raise ConfigError(message, location=where) from None
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return False  # the application's own provider: promptkit's spans already go where it sends them
    attributes: dict[str, Any] = {}
    if not os.environ.get("OTEL_SERVICE_NAME"):
        attributes["service.name"] = str(table.get("service_name") or "promptkit")
    provider = TracerProvider(resource=Resource.create(attributes))
    exporter = OTLPSpanExporter(endpoint=_traces_url(url) if url else None)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    global _tracer
    _tracer = None
    return True


def setup_for_cli() -> bool:
    """What every ``promptkit`` command does first: :func:`setup` from the project's configuration (a broken
    configuration is left for the command itself to report)."""
    from promptkit.config import load_config

    try:
        config = load_config()
    except ConfigError:
        config = None
    return setup(config)

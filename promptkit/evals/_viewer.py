"""``promptkit view``: a local web app over eval runs, A/B reports, scaffold runs and the ledger.

A Starlette app served by uvicorn (the ``view`` extra; both imported only here, when the viewer starts).
It binds 127.0.0.1 unless told otherwise, and answers only requests addressed to the host it was bound to
(a web page elsewhere cannot reach it through DNS rebinding). The page is one small HTML file with its own
CSS and script, nothing fetched from elsewhere; the JSON API is what the page reads:

- ``GET /api/runs``: the runs found (``?refresh=1`` looks again);
- ``GET /api/runs/{id}``: one run: a summary, its columns (variants, side by side) and its item rows;
- ``GET /api/runs/{id}/items/{n}``: one item in full, as escaped HTML plus its inputs as data.

Model output is untrusted: the server escapes everything it renders, the page sets only ``textContent``
with data it builds itself, and the Content-Security-Policy lets no script but the app's own run.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from promptkit.errors import EvalError
from promptkit.evals._transcript import FRAGMENT_CSS
from promptkit.evals._viewdata import Catalog

__all__ = ["ViewServer", "make_app", "missing_dependency"]

_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

_CSS = """
:root { --fg:#1d2330; --muted:#5d6778; --line:#d9dee7; --bg:#f7f8fa; --pass:#1a7f37; --fail:#c62828;
  --accent:#2f5fd0; --warn:#9a6700; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, sans-serif; color: var(--fg); margin: 0; display: flex; height: 100vh; }
nav { width: 300px; border-right: 1px solid var(--line); overflow: auto; background: var(--bg); flex: none; }
nav h1 { font-size: 16px; margin: 12px; } nav ul { list-style: none; margin: 0; padding: 0; }
nav li a { display: block; padding: 6px 12px; color: var(--fg); text-decoration: none;
  border-bottom: 1px solid var(--line); }
nav li a.current { background: #e6ecfa; } nav li .kind { font-size: 11px; color: var(--muted); }
nav li.broken a { color: var(--fail); }
main { flex: 1; overflow: auto; padding: 12px 20px; }
h2 { font-size: 18px; margin: 4px 0 8px; } h3 { font-size: 15px; margin: 12px 0 4px; }
h4 { font-size: 13px; margin: 10px 0 2px; color: var(--muted); }
table { border-collapse: collapse; margin: 6px 0 12px; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: var(--bg); } td.num { text-align: right; white-space: nowrap; }
#items tbody tr { cursor: pointer; } #items tbody tr:hover { background: #f2f5fc; }
#items tbody tr.open { background: #e6ecfa; }
.controls { display: flex; gap: 16px; align-items: center; margin: 8px 0; }
.controls input[type=search] { width: 320px; padding: 4px 8px; }
.muted, #shown-count { color: var(--muted); }
.badge { display: inline-block; font-size: 11px; font-weight: 700; padding: 0 6px; border-radius: 8px;
  color: #fff; background: var(--muted); margin-right: 4px; }
.badge.pass { background: var(--pass); } .badge.fail, .badge.error { background: var(--fail); }
.preview { font-size: 12px; color: var(--muted); }
pre { white-space: pre-wrap; word-break: break-word; margin: 4px 0; max-height: 24em; overflow: auto;
  background: var(--bg); padding: 4px 6px; font: 12px/1.4 ui-monospace, monospace; }
pre.error { background: #fff0f0; color: var(--fail); }
.verdict { padding: 8px 12px; border-left: 4px solid var(--warn); background: var(--bg); }
.error-box { padding: 8px 12px; border-left: 4px solid var(--fail); background: #fff5f5; }
#detail { border-top: 2px solid var(--line); margin-top: 12px; }
.panes { display: grid; grid-template-columns: repeat(auto-fit, minmax(360px, 1fr)); gap: 12px; }
.pane { border: 1px solid var(--line); padding: 6px 10px; min-width: 0; }
.result + .result { border-top: 1px dashed var(--line); margin-top: 8px; padding-top: 8px; }
ul.scores { margin: 4px 0; padding-left: 18px; }
[hidden] { display: none !important; }
"""

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>promptkit view</title>
<link rel="stylesheet" href="/app.css">
</head><body>
<nav><h1>promptkit view</h1><ul id="runs"></ul></nav>
<main>
<div id="empty" class="muted">Pick a run on the left.</div>
<section id="run" hidden>
<h2 id="run-title"></h2>
<div id="run-error" class="error-box" hidden></div>
<div id="run-summary"></div>
<div class="controls">
<label><input type="checkbox" id="failures-only"> Failures only</label>
<input type="search" id="search" placeholder="Search items, inputs, outputs, errors" aria-label="search">
<span id="shown-count"></span>
</div>
<table id="items"><thead></thead><tbody></tbody></table>
<section id="detail" hidden><h2 id="detail-title"></h2><div id="detail-body"></div></section>
</section>
</main>
<script src="/app.js"></script>
</body></html>
"""

# Builds every element with textContent from the API's data; only the server's escaped fragments
# (summary_html, item html) are set as HTML.
_JS = r"""
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var state = { run: null, rows: [], open: null };
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }
  function getJSON(url) {
    return fetch(url, { headers: { Accept: "application/json" } }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) { throw new Error(body.error || ("HTTP " + r.status)); }
        return body;
      });
    });
  }
  function route() {
    var params = new URLSearchParams(location.hash.slice(1));
    return { run: params.get("run"), item: params.get("item") };
  }
  function go(run, item) {
    location.hash = "run=" + encodeURIComponent(run) + (item === null || item === undefined ? "" : "&item=" + item);
  }
  function loadRuns() {
    return getJSON("/api/runs").then(function (runs) {
      var list = $("runs");
      list.textContent = "";
      runs.forEach(function (run) {
        var li = el("li", run.error ? "broken" : "");
        var a = el("a");
        a.href = "#run=" + encodeURIComponent(run.id);
        a.dataset.run = run.id;
        a.appendChild(el("div", "title", run.title));
        a.appendChild(el("div", "kind", [run.kind, run.status, run.started].filter(Boolean).join(" · ")));
        if (run.error) { a.appendChild(el("div", "kind", run.error)); }
        li.appendChild(a);
        list.appendChild(li);
      });
    });
  }
  function showRun(id) {
    if (state.run && state.run.id === id) { return Promise.resolve(); }
    $("empty").hidden = true;
    $("run").hidden = false;
    $("detail").hidden = true;
    Array.prototype.forEach.call(document.querySelectorAll("#runs a"), function (a) {
      a.classList.toggle("current", a.dataset.run === id);
    });
    return getJSON("/api/runs/" + encodeURIComponent(id)).then(function (run) {
      state.run = run;
      $("run-error").hidden = true;
      $("run-title").textContent = run.title;
      $("run-summary").innerHTML = run.summary_html;
      buildTable(run);
    }, function (err) {
      state.run = { id: id, rows: [], columns: [] };
      $("run-title").textContent = "";
      $("run-summary").textContent = "";
      $("run-error").hidden = false;
      $("run-error").textContent = err.message;
      buildTable(state.run);
    });
  }
  function buildTable(run) {
    var head = $("items").tHead, body = $("items").tBodies[0];
    head.textContent = "";
    body.textContent = "";
    var tr = el("tr");
    tr.appendChild(el("th", "", "item"));
    run.columns.forEach(function (c) { tr.appendChild(el("th", "", c)); });
    head.appendChild(tr);
    state.rows = run.rows.map(function (row) {
      var line = el("tr", "item-row");
      line.dataset.n = row.n;
      line.dataset.failed = row.failed ? "1" : "0";
      line.dataset.item = row.label;
      var first = el("td", "", row.label);
      if (row.sub) { first.appendChild(el("div", "preview", row.sub)); }
      line.appendChild(first);
      run.columns.forEach(function (c) {
        var td = el("td", "cell");
        (row.cells[c] || []).forEach(function (cell) {
          var div = el("div");
          div.appendChild(el("span", "badge " + cell.badge, cell.badge.toUpperCase()));
          div.appendChild(el("span", "preview", cell.preview));
          td.appendChild(div);
        });
        line.appendChild(td);
      });
      line.addEventListener("click", function () { go(run.id, row.n); });
      body.appendChild(line);
      return { node: line, row: row };
    });
    filter();
  }
  function filter() {
    var only = $("failures-only").checked;
    var needle = $("search").value.trim().toLowerCase();
    var shown = 0;
    state.rows.forEach(function (r) {
      var visible = (!only || r.row.failed) && (needle === "" || r.row.search.indexOf(needle) !== -1);
      r.node.hidden = !visible;
      if (visible) { shown += 1; }
    });
    $("shown-count").textContent = shown + " of " + state.rows.length + " items shown";
  }
  function showItem(runId, n) {
    if (n === null) { $("detail").hidden = true; return; }
    state.rows.forEach(function (r) { r.node.classList.toggle("open", String(r.row.n) === n); });
    getJSON("/api/runs/" + encodeURIComponent(runId) + "/items/" + encodeURIComponent(n)).then(function (item) {
      $("detail-title").textContent = item.label + (item.sub ? " · " + item.sub : "");
      $("detail-body").innerHTML = item.html;
      $("detail").hidden = false;
      $("detail").scrollIntoView();
    }, function (err) {
      $("detail-title").textContent = "";
      $("detail-body").textContent = err.message;
      $("detail").hidden = false;
    });
  }
  function onRoute() {
    var r = route();
    if (!r.run) { return; }
    showRun(r.run).then(function () { showItem(r.run, r.item); });
  }
  $("failures-only").addEventListener("change", filter);
  $("search").addEventListener("input", filter);
  window.addEventListener("hashchange", onRoute);
  loadRuns().then(onRoute, function (err) { $("empty").textContent = err.message; });
})();
"""


def missing_dependency() -> str | None:
    """Why the viewer cannot start here (its extra is not installed), or None."""
    import importlib.util

    missing = [m for m in ("starlette", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing:
        return (
            f"the viewer needs {' and '.join(missing)}: pip install 'promptkit[view]' (starlette and uvicorn)"
        )
    return None


def make_app(catalog: Catalog, *, allowed_hosts: list[str] | None = None) -> Any:
    """The Starlette app over ``catalog``."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    headers = {
        "Content-Security-Policy": _CSP,
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    }

    def text(body: str, media: str) -> Response:
        return Response(body, media_type=media, headers=headers)

    def data(body: Any, status: int = 200) -> JSONResponse:
        return JSONResponse(body, status_code=status, headers=headers)

    def page(request: Request) -> Response:
        return text(_PAGE, "text/html; charset=utf-8")

    def script(request: Request) -> Response:
        return text(_JS, "text/javascript; charset=utf-8")

    def style(request: Request) -> Response:
        return text(_CSS + FRAGMENT_CSS, "text/css; charset=utf-8")

    def runs(request: Request) -> JSONResponse:
        if request.query_params.get("refresh"):
            catalog.refresh()
        return data(catalog.listing())

    def _entry(request: Request) -> Any:
        entry = catalog.entries.get(request.path_params["run"])
        if entry is None:
            catalog.refresh()  # a run that appeared since the page loaded
            entry = catalog.entries.get(request.path_params["run"])
        return entry

    def run(request: Request) -> JSONResponse:
        entry = _entry(request)
        if entry is None:
            return data({"error": "no such run"}, 404)
        if entry.error:
            return data({"error": entry.error}, 422)
        try:
            return data(entry.run_json())
        except EvalError as exc:
            return data({"error": str(exc)}, 422)

    def item(request: Request) -> JSONResponse:
        entry = _entry(request)
        if entry is None:
            return data({"error": "no such run"}, 404)
        try:
            found = entry.item_json(int(request.path_params["n"]))
        except EvalError as exc:
            return data({"error": str(exc)}, 422)
        if found is None:
            return data({"error": "no such item"}, 404)
        return data(found)

    routes = [
        Route("/", page),
        Route("/app.js", script),
        Route("/app.css", style),
        Route("/api/runs", runs),
        Route("/api/runs/{run}", run),
        Route("/api/runs/{run}/items/{n:int}", item),
    ]
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts or ["*"])]
    return Starlette(routes=routes, middleware=middleware)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ViewServer:
    """The viewer on a bound socket: ``serve()`` blocks, ``start()``/``stop()`` run it in a thread (tests)."""

    def __init__(
        self, path: str | Path, *, host: str = "127.0.0.1", port: int = 0, extra: Sequence[Path] = ()
    ) -> None:
        problem = missing_dependency()
        if problem is not None:
            raise EvalError(problem, location="promptkit view")
        self.catalog = Catalog(
            Path(path), extra
        )  # fails here, before binding, on a path with nothing to show
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.socket.bind((host, port))
        except OSError as exc:
            self.socket.close()
            raise EvalError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc} (pick another --port)",
                location="promptkit view",
            ) from None
        self.socket.listen(64)
        self.host = host
        self.port = self.socket.getsockname()[1]
        # Requests must name the address it is bound to: a page elsewhere cannot reach it by DNS rebinding.
        allowed = ["127.0.0.1", "localhost", "[::1]", host] if _is_loopback(host) else ["*"]
        self.app = make_app(self.catalog, allowed_hosts=allowed)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        shown = f"[{shown}]" if ":" in shown else shown
        return f"http://{shown}:{self.port}/"

    def _make_server(self) -> Any:
        import uvicorn

        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        return self._server

    def serve(self) -> None:
        """Serve until interrupted (Ctrl-C)."""
        self._make_server().run(sockets=[self.socket])

    def start(self) -> str:
        """Serve in a background thread; returns the URL once it answers."""
        server = self._make_server()
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [self.socket]}, daemon=True)
        self._thread.start()
        import time

        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            if not self._thread.is_alive():
                raise EvalError("the viewer's server stopped while starting", location="promptkit view")
            time.sleep(0.02)
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.socket.close()

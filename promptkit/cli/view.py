"""``promptkit view [LOG_OR_DIR]``: browse eval runs, A/B reports, scaffold runs and the ledger in a browser.

A local web app (Starlette + uvicorn, the ``view`` extra) on 127.0.0.1. LOG_OR_DIR is a log file or a folder
searched for them; without one, the current folder and the project's state folder (``.promptkit/`` or
``$PROMPTKIT_HOME``: eval run logs, the ledger). Exit code 2 when there is nothing to show or a named file
is not a log.
"""

from __future__ import annotations

import threading
from pathlib import Path

import click

__all__ = ["command"]

DEFAULT_PORT = 7575


@click.command("view")
@click.argument("path", required=False, type=click.Path(path_type=Path), default=None)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="Port to listen on (0: any free port).",
)
@click.option("--no-open", is_flag=True, help="Do not open a browser.")
def command(path: Path | None, host: str, port: int, no_open: bool) -> int:
    """Open the log viewer on the runs found in PATH (a log file or a folder)."""
    from promptkit.evals._viewer import ViewServer

    extra: list[Path] = []
    if path is None:
        from promptkit.config import load_config

        path = Path(".")
        state = load_config().state_dir
        if not state.resolve().is_relative_to(path.resolve()):
            extra.append(state)
    server = ViewServer(path, host=host, port=port, extra=extra)
    runs = len(server.catalog.entries)
    click.echo(f"promptkit view: {runs} run(s) from {path} at {server.url} (Ctrl-C to stop)", err=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"warning: listening on {host}: anyone who can reach it can read these logs", err=True)
    if not no_open:
        import webbrowser

        # After a moment, so the server is listening when the browser asks.
        threading.Timer(0.5, webbrowser.open, args=(server.url,)).start()
    server.serve()
    return 0

"""`Server-Timing: app;dur=…` on every response: the milliseconds the service spent on the request.

The W3C Server-Timing header lets a client (a browser's network panel, the benchmarks) tell the
service's own time from the network's and the client's. It is measured around the whole Flask
application, from the request reaching it to the response's headers being sent, so it includes
reading the body, authentication, the view and the error handler; it leaves out the WSGI
server's queueing and the time to send a streamed body.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class ServerTiming:
    """WSGI middleware adding the application's own time to each response as `Server-Timing`."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.perf_counter()

        def timed(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            spent = (time.perf_counter() - started) * 1000
            headers = [*headers, ("Server-Timing", f"app;dur={spent:.2f}")]
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        return self.app(environ, timed)

"""A loopback HTTP server answering JSON POSTs from a function, for tests that stand in for a model server."""

import contextlib
import http.server
import json
import threading
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def json_server(
    respond: Callable[[str, dict], dict | None], get: Callable[[str], dict | None] | None = None
) -> Iterator[str]:
    """Serve ``respond(path, body) -> reply`` (and ``get(path) -> reply`` for GETs) on 127.0.0.1 for the block;
    yields the base URL. A reply of None is an HTTP 404 (an endpoint the server does not have)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            if get is None:
                self.send_error(405)
                return
            self.send(get(self.path))

        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            self.send(respond(self.path, body))

        def send(self, reply: dict | None) -> None:
            if reply is None:
                self.send_error(404)
                return
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()

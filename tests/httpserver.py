"""A tiny HTTP server on 127.0.0.1 with switchable faults, for the download tests.

Why not a mocked urlopen: resuming, time-outs and cut connections are behaviours of
real sockets and of ``http.client``; only a real server exercises them.
"""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class AssetServer:
    """Serves ``files`` (path -> bytes); every request is logged in ``requests``.

    Faults: ``ignore_range`` (always answer 200 with the whole body), ``cut_once``
    (paths whose next response stops half way and closes the connection), ``stall``
    (paths answered only after ``stall_seconds``: longer than the client's time-out).
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[dict] = []
        self.ignore_range = False
        self.cut_once: set[str] = set()
        self.stall: set[str] = set()
        self.stall_seconds = 10.0
        self._stop = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def __enter__(self) -> AssetServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()  # releases stalled handlers
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep the test output clean
                pass

            def do_GET(self) -> None:
                path = self.path.lstrip("/")
                entry = {"path": path, "range": self.headers.get("Range"), "status": None}
                server.requests.append(entry)
                if path in server.stall:
                    server._stop.wait(server.stall_seconds)
                    return
                body = server.files.get(path)
                if body is None:
                    entry["status"] = 404
                    self.send_error(404)
                    return
                start, status = 0, 200
                if entry["range"] and not server.ignore_range:
                    start, status = int(entry["range"].split("=")[1].split("-")[0]), 206
                    if start >= len(body):
                        entry["status"] = 416
                        self.send_error(416)
                        return
                entry["status"] = status
                self.send_response(status)
                self.send_header("Content-Length", str(len(body) - start))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.end_headers()
                if path in server.cut_once:
                    server.cut_once.discard(path)
                    self.wfile.write(body[start:start + (len(body) - start) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body[start:])

        return Handler

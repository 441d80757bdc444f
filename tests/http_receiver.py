"""An HTTP endpoint run by a test on loopback, standing in for an SNS subscriber: it records every
POST and can answer the first few with an error."""

from __future__ import annotations

import json
import queue
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Received:
    """One request the receiver got."""

    def __init__(self, path: str, headers: dict[str, str], body: bytes) -> None:
        self.path = path
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """An HTTP endpoint in the test: records every POST; answers ``fail`` times with ``fail_status`` first."""

    def __init__(self) -> None:
        self.requests: queue.Queue[Received] = queue.Queue()
        self.fail = 0
        self.fail_status = 500
        self.count = 0
        lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with lock:
                    owner.count += 1
                    status = owner.fail_status if owner.fail > 0 else 200
                    owner.fail = max(owner.fail - 1, 0)
                owner.requests.put(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def next(self, timeout: float = 30) -> Received:
        return self.requests.get(timeout=timeout)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

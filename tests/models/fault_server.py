"""A faulty OpenAI-compatible server on loopback, to test that the openai answerer survives it.

    with FaultServer({"Where is item 4?": ["hang", "hang"]}) as server:
        load_answerer("openai:m", base_url=server.url, timeout_s=0.3, ...)

Each question (the text after the prompt's last "Question: ") has a script: the behaviours
of its first, second, ... request; once the script is used up the server answers well, so a
later run finds it healthy. Every behaviour is something real servers and the proxies in
front of them do. The server logs the questions it is asked and, when the `with` block ends,
releases hung requests and stops, so no test waits on it.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BEHAVIOURS = ("ok", "slow", "retry_after", "5xx", "hang", "trickle", "bad_json",
              "content_number", "no_choices", "null_content", "echo_headers", "drop",
              "drop_mid_body", "echo_in_content")
SLOW_S = 0.1  # under any client timeout the tests use
HANG_S = 10.0  # past any client timeout the tests use; stopping the server ends it early
RETRY_AFTER = "0.3"  # seconds (decimal, so that the tests stay fast)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chat_reply(content: object) -> dict:
    return {"id": "x", "object": "chat.completion", "usage": {"prompt_tokens": 7},
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": "stop"}]}


class FaultHandler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args):
        pass

    def do_GET(self):  # /models, the answerer's start-up check
        self.send_json(200, {"data": [{"id": "faulty"}]})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        question = body["messages"][-1]["content"].rsplit("Question: ", 1)[1]
        behaviour = self.server.fault.next_behaviour(question, time.monotonic())
        getattr(self, "do_" + behaviour)()

    def send_json(self, status: int, payload: object, headers: dict | None = None) -> None:
        self.send_bytes(status, json.dumps(payload).encode(), headers)

    def send_bytes(self, status: int, data: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_ok(self):
        self.send_json(200, chat_reply(self.server.fault.answer))

    def do_slow(self):
        time.sleep(SLOW_S)
        self.do_ok()

    def do_retry_after(self):
        self.send_json(429, {"error": "rate limited"}, {"Retry-After": RETRY_AFTER})

    def do_5xx(self):
        self.send_json(503, {"error": "overloaded"})

    def do_hang(self):  # say nothing until the client has long given up
        self.server.fault.stopping.wait(HANG_S)
        self.close_connection = True

    def do_trickle(self):  # a byte at a time, each well within a read timeout, never done
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        while not self.server.fault.stopping.wait(SLOW_S / 2):
            self.wfile.write(b" ")
            self.wfile.flush()

    def do_bad_json(self):
        self.send_bytes(200, b'{"choices": [{"message": {"content": "gard')

    def do_content_number(self):
        self.send_json(200, chat_reply(42))

    def do_no_choices(self):
        self.send_json(200, {"id": "x", "object": "chat.completion"})

    def do_null_content(self):
        self.send_json(200, chat_reply(None))

    def do_echo_headers(self):  # a debugging proxy that shows what it received
        self.send_json(500, {"error": "internal", "request_headers": dict(self.headers)})

    def do_drop(self):  # the connection closes with no reply at all
        self.close_connection = True

    def do_drop_mid_body(self):
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b'{"choices": [')
        self.close_connection = True

    def do_echo_in_content(self):  # a "model" that repeats the request's credentials
        self.send_json(200, chat_reply(f"Authorization: {self.headers.get('Authorization')}"))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 refuses a burst of concurrent requests
    fault: FaultServer

    def handle_error(self, request, client_address):
        pass  # a client that gave up on a hung request is expected here, not news


class FaultServer:
    """The server, its scripts and a log of the requests it got."""

    def __init__(self, scripts: dict[str, list[str]], answer: str = "garden"):
        unknown = {b for script in scripts.values() for b in script} - set(BEHAVIOURS)
        assert not unknown, f"unknown behaviours {unknown}"
        self.scripts, self.answer = scripts, answer
        self.attempts: Counter[str] = Counter()  # requests per question, ever
        self.log: list[tuple[str, float]] = []  # (question, arrival time) since take_log
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.http = _Server(("127.0.0.1", free_port()), FaultHandler)
        self.http.fault = self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}/v1"

    def next_behaviour(self, question: str, now: float) -> str:
        with self.lock:
            attempt = self.attempts[question]
            self.attempts[question] += 1
            self.log.append((question, now))
        script = self.scripts.get(question, [])
        return script[attempt] if attempt < len(script) else "ok"

    def take_log(self) -> list[tuple[str, float]]:
        """The requests since the last call, in arrival order."""
        with self.lock:
            log, self.log = self.log, []
        return log

    def __enter__(self) -> FaultServer:
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.http.shutdown()
        self.http.server_close()

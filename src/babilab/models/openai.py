"""The `openai` answerer: any OpenAI-compatible server (OpenAI, vLLM, llama.cpp, SGLang, ...).

    load_answerer("openai:gpt-4o-mini")                                  # api.openai.com
    load_answerer("openai:smollm2", base_url="http://127.0.0.1:8000/v1", mode="completions")

Formatting is pure and tested on canned JSON (`build_payload`, `parse_response`); the
transport around it owns concurrency (a bounded thread pool), timeouts (`timeout_s` bounds
a whole reply, not only each read) and retries with exponential backoff, or the server's
`Retry-After` (seconds, capped), on 429, 5xx, dropped connections, timeouts and malformed
replies (invalid JSON, missing fields, content that is null or not text). A request that
still fails is recorded in its answer's `error` and the run goes on; the run store counts
it as not done, so the next run asks it again. Nothing a server sends can raise out of
`answer`: one faulty reply must not end a run and lose the batch in flight.

The API key is read from an environment variable (`OPENAI_API_KEY` unless `api_key_env`
names another) at request time; it is never stored, logged or part of a fingerprint. Error
texts (and outputs, should a server echo the request) go through `redact`, which removes
the key, header credentials, a password in `base_url` and credential-like query values
(`?api_key=...`), since servers echo requests. The fingerprint names the server (`server_id`:
scheme, host, port and path of `base_url`, without user, password or query), so one model
name on two servers is two models, while a new password for the same server changes nothing.
Temperature 0 and 20 new tokens by default, as BABILong runs API models.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from ..errors import BabilabError
from ..prompts import PromptConfig, chat_messages, format_prompt
from .base import Answer, Answerer, Request, fingerprint_of, redact, register

MODES = ("chat", "completions")
RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}
MAX_RETRY_AFTER_S = 60.0
ERROR_CHARS = 300  # of a reply's text kept in an error, after redaction


@dataclass(frozen=True)
class Outcome:
    """One attempt at a request: a reply, an over-long prompt, or why it failed."""

    reply: tuple[str, int | None] | None = None  # (text, prompt tokens)
    over_window: bool = False
    error: str | None = None
    retry: bool = False  # worth asking again
    wait_s: float | None = None  # what the server's Retry-After asked for


def build_payload(model: str, request: Request, config: PromptConfig, mode: str,
                  max_new_tokens: int, temperature: float) -> tuple[str, dict]:
    """-> (endpoint path, JSON body) for one request.

    With the chat template on, chat mode sends BABILong's messages (optional system message,
    then the whole prompt as one user message); completions mode sends the plain prompt.
    """
    body: dict = {"model": model, "max_tokens": max_new_tokens, "temperature": temperature}
    if mode == "chat":
        if not config.chat_template:
            raise BabilabError("the chat endpoint always applies the server's chat template; "
                               "use a chat_template_yes configuration or mode=completions")
        body["messages"] = chat_messages(request.task, request.context, request.question, config)
        return "/chat/completions", body
    if config.chat_template:
        raise BabilabError("completions mode sends raw text; use a chat_template_no "
                           "configuration or mode=chat")
    body["prompt"] = format_prompt(request.task, request.context, request.question, config)
    return "/completions", body


def parse_response(data: object) -> tuple[str, int | None]:
    """-> (generated text, prompt tokens if the server reports them).

    Anything but text where the answer belongs raises ValueError naming what is wrong: a
    number or a null would otherwise be stored as an answer and never asked again.
    """
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ValueError("no choices in the reply")
    choice = choices[0]
    if "message" in choice:
        message = choice["message"]
        text = message.get("content") if isinstance(message, dict) else None
    else:
        text = choice.get("text")
    if text is None:
        raise ValueError("the reply's content is null or missing")
    if not isinstance(text, str):
        raise ValueError(f"the reply's content is a {type(text).__name__}, not text")
    usage = data.get("usage")
    tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    return text.strip(), tokens if type(tokens) is int else None


def retry_after_s(value: str | None) -> float | None:
    """The wait a `Retry-After: SECONDS` header asks for, capped at MAX_RETRY_AFTER_S so that
    one server cannot stall a run; None when absent or not a number of seconds (the
    HTTP-date form), and our own backoff applies.

    >>> retry_after_s("3"), retry_after_s("86400"), retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT")
    (3.0, 60.0, None)
    """
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return min(seconds, MAX_RETRY_AFTER_S) if math.isfinite(seconds) and seconds >= 0 else None


def server_id(base_url: str) -> str:
    """The server a base URL names, as the fingerprint keeps it: scheme, host, port (when not
    the scheme's default) and path; never the user, password, query or fragment.

    >>> server_id("https://me:pw@API.example.com:443/v1/?api_key=sk-1#x")
    'https://api.example.com/v1'
    >>> server_id("http://127.0.0.1:8000/v1")
    'http://127.0.0.1:8000/v1'
    """
    try:
        url = urlsplit(base_url.strip())
        port = url.port
    except ValueError as e:
        raise BabilabError(f"base_url is not a URL ({e})") from None
    scheme, host = url.scheme.lower(), url.hostname or ""
    if ":" in host:  # an IPv6 address keeps its brackets
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(scheme)
    netloc = host if port in (None, default) else f"{host}:{port}"
    return f"{scheme}://{netloc}{url.path.rstrip('/')}"


SECRET_QUERY = re.compile(r"(?i)key|token|secret|pass|sig|auth|cred")  # query names to hide


def is_over_window(status: int, message: str) -> bool:
    """Servers answer a too-long prompt with 400 and a message about the context."""
    text = message.lower()
    return status == 400 and ("context" in text or "too long" in text or "n_ctx" in text)


@register("openai")
class OpenAIAnswerer(Answerer):
    def __init__(self, model: str, base_url: str | None = None, mode: str = "chat",
                 api_key_env: str = "OPENAI_API_KEY", max_new_tokens: int = 20,
                 temperature: float = 0.0, concurrency: int = 4, timeout_s: float = 120.0,
                 retries: int = 4, backoff_s: float = 1.0):
        import httpx

        if mode not in MODES:
            raise BabilabError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if concurrency < 1 or retries < 0 or max_new_tokens < 1 or not timeout_s > 0:
            raise BabilabError("concurrency and max_new_tokens must be >= 1, retries >= 0, "
                               "timeout > 0")
        self.model, self.mode = model, mode
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL")
                         or "https://api.openai.com/v1").rstrip("/")
        # the endpoint paths go before a query the URL may carry (?api-version=..., a key)
        root, _, self.query = self.base_url.partition("?")
        self.root = root.rstrip("/")
        self.server = server_id(self.base_url)
        self.api_key_env = api_key_env
        self.max_new_tokens, self.temperature = max_new_tokens, temperature
        self.concurrency, self.retries, self.backoff_s = concurrency, retries, backoff_s
        self.timeout_s = timeout_s
        self.client = httpx.Client(timeout=timeout_s)
        self._check_reachable()

    @classmethod
    def from_spec(cls, arg: str, **options) -> OpenAIAnswerer:
        if not arg:
            raise BabilabError("openai needs a model name: openai:MODEL (and base_url for "
                               "a local server)")
        return cls(arg, **options)

    def _headers(self) -> dict:
        key = os.environ.get(self.api_key_env)
        return {"Authorization": f"Bearer {key}"} if key else {}

    def endpoint(self, path: str) -> str:
        """`/chat/completions` -> the full URL, with the base URL's query kept at its end."""
        return self.root + path + (f"?{self.query}" if self.query else "")

    def _secrets(self) -> list[str | None]:
        """What must never be stored or printed: the API key, the URL's password, the
        Basic credential httpx builds from it, and query values named like credentials."""
        import httpx

        query = [v for k, v in parse_qsl(self.query) if SECRET_QUERY.search(k)]
        try:
            url = httpx.URL(self.base_url)
        except httpx.InvalidURL:
            return [os.environ.get(self.api_key_env), *query]
        basic = base64.b64encode(f"{url.username}:{url.password}".encode()).decode()
        return [os.environ.get(self.api_key_env), url.password or None,
                basic if url.password else None, *query]

    def _redact(self, text: str) -> str:
        return redact(text, self._secrets())

    def _check_reachable(self) -> None:
        """Fail at start, in one line, when nothing answers at the base URL."""
        import httpx

        try:
            self.client.get(self.endpoint("/models"), headers=self._headers(), timeout=10)
        except (httpx.HTTPError, httpx.InvalidURL) as e:
            self.client.close()
            raise BabilabError(self._redact(
                f"cannot reach {self.base_url} ({type(e).__name__}); is the server running "
                "and is base_url right?")) from None

    @property
    def label(self) -> str:
        return self.model.replace("/", "_")

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(backend="openai", model=self.model, server=self.server,
                              mode=self.mode, max_new_tokens=self.max_new_tokens,
                              temperature=self.temperature)

    def _send(self, url: str, body: dict) -> tuple[int, Mapping[str, str], str]:
        """POST and read the whole reply within `timeout_s`: httpx's timeout bounds each
        read, so a server trickling bytes could otherwise hold a worker for ever."""
        import httpx

        deadline = time.monotonic() + self.timeout_s
        with self.client.stream("POST", url, json=body, headers=self._headers()) as response:
            chunks = []
            for chunk in response.iter_bytes():
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout(f"the reply took over {self.timeout_s:g} s")
                chunks.append(chunk)
            text = b"".join(chunks).decode("utf-8", errors="replace")
            return response.status_code, response.headers, text

    def _attempt(self, url: str, body: dict) -> Outcome:
        """One request; every way a server can fail becomes an Outcome, never an exception."""
        import httpx

        try:
            status, headers, text = self._send(url, body)
        except httpx.HTTPError as e:  # refused, dropped, timed out
            return Outcome(error=f"{type(e).__name__}: {e}", retry=True)
        if status == 200:
            try:
                return Outcome(reply=parse_response(json.loads(text)))
            except ValueError as e:  # invalid JSON (a JSONDecodeError is one) or wrong shape
                return Outcome(error=f"malformed reply ({e}): {text}", retry=True)
        if is_over_window(status, text):
            return Outcome(over_window=True)
        return Outcome(error=f"HTTP {status}: {text}", retry=status in RETRY_STATUS,
                       wait_s=retry_after_s(headers.get("retry-after")))

    def _post(self, request: Request, config: PromptConfig) -> Answer:
        path, body = build_payload(self.model, request, config, self.mode,
                                   self.max_new_tokens, self.temperature)
        began, outcome = time.perf_counter(), Outcome(error="no attempt made")
        for attempt in range(self.retries + 1):
            if attempt:
                backoff = self.backoff_s * 2 ** (attempt - 1)
                time.sleep(backoff if outcome.wait_s is None else outcome.wait_s)
            outcome = self._attempt(self.endpoint(path), body)
            if not outcome.retry:
                break
        elapsed = time.perf_counter() - began
        if outcome.reply is not None:
            text, prompt_tokens = outcome.reply
            return Answer(self._redact(text), elapsed, prompt_tokens)  # a "model" may echo the key
        if outcome.over_window:
            return Answer("", elapsed, over_window=True)
        # redact, then clip: a key cut in two by the clip would slip past the redaction
        return Answer("", elapsed, error=self._redact(outcome.error or "")[:ERROR_CHARS])

    def _answer_one(self, request: Request, config: PromptConfig) -> Answer:
        """`_post`, with any failure it did not foresee recorded, not raised: one odd reply
        must not end the run and lose the rest of the batch."""
        try:
            return self._post(request, config)
        except BabilabError:
            raise  # a configuration mistake (build_payload): every request would fail alike
        except Exception as e:
            return Answer("", error=self._redact(f"{type(e).__name__}: {e}")[:ERROR_CHARS])

    def answer(self, requests: list[Request], config: PromptConfig) -> list[Answer]:
        # A bad configuration raises BabilabError from build_payload; pool.map re-raises it here.
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(lambda r: self._answer_one(r, config), requests))

    def close(self) -> None:
        self.client.close()

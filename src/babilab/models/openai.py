"""The `openai` answerer: any OpenAI-compatible server (OpenAI, vLLM, llama.cpp, SGLang, ...).

    load_answerer("openai:gpt-4o-mini")                                  # api.openai.com
    load_answerer("openai:smollm2", base_url="http://127.0.0.1:8000/v1", mode="completions")

Formatting is pure and tested on canned JSON (`build_payload`, `parse_response`); the
transport around it owns concurrency (a bounded thread pool), timeouts and retries with
exponential backoff on 429, 5xx and dropped connections. A request that still fails is
recorded in its answer's `error` and the run goes on.

The API key is read from an environment variable (`OPENAI_API_KEY` unless `api_key_env`
names another) at request time; it is never stored, logged or part of a fingerprint.
Temperature 0 and 20 new tokens by default, as BABILong runs API models.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

from ..errors import BabilabError
from ..prompts import PromptConfig, chat_messages, format_prompt
from .base import Answer, Answerer, Request, fingerprint_of, register

MODES = ("chat", "completions")
RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


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


def parse_response(data: dict) -> tuple[str, int | None]:
    """-> (generated text, prompt tokens if the server reports them)."""
    try:
        choice = data["choices"][0]
        text = choice["message"]["content"] if "message" in choice else choice["text"]
    except (KeyError, IndexError, TypeError):
        raise ValueError(f"unexpected response shape: {str(data)[:200]}") from None
    usage = data.get("usage") or {}
    return (text or "").strip(), usage.get("prompt_tokens")


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
        if concurrency < 1 or retries < 0 or max_new_tokens < 1:
            raise BabilabError("concurrency and max_new_tokens must be >= 1, retries >= 0")
        self.model, self.mode = model, mode
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL")
                         or "https://api.openai.com/v1").rstrip("/")
        self.api_key_env = api_key_env
        self.max_new_tokens, self.temperature = max_new_tokens, temperature
        self.concurrency, self.retries, self.backoff_s = concurrency, retries, backoff_s
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

    def _check_reachable(self) -> None:
        """Fail at start, in one line, when nothing answers at the base URL."""
        import httpx

        try:
            self.client.get(f"{self.base_url}/models", headers=self._headers(), timeout=10)
        except httpx.HTTPError as e:
            self.client.close()
            raise BabilabError(f"cannot reach {self.base_url} ({type(e).__name__}); is the "
                               "server running and is base_url right?") from None

    @property
    def label(self) -> str:
        return self.model.replace("/", "_")

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(backend="openai", model=self.model, mode=self.mode,
                              max_new_tokens=self.max_new_tokens, temperature=self.temperature)

    def _post(self, request: Request, config: PromptConfig) -> Answer:
        import httpx

        path, body = build_payload(self.model, request, config, self.mode,
                                   self.max_new_tokens, self.temperature)
        began, error = time.perf_counter(), "no attempt made"
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                response = self.client.post(self.base_url + path, json=body,
                                            headers=self._headers())
            except httpx.HTTPError as e:
                error = f"{type(e).__name__}: {e}"
                continue
            if response.status_code == 200:
                try:
                    text, prompt_tokens = parse_response(response.json())
                except ValueError as e:
                    return Answer("", time.perf_counter() - began, error=str(e))
                return Answer(text, time.perf_counter() - began, prompt_tokens)
            error = f"HTTP {response.status_code}: {response.text[:200]}"
            if is_over_window(response.status_code, response.text):
                return Answer("", time.perf_counter() - began, over_window=True)
            if response.status_code not in RETRY_STATUS:
                break
        return Answer("", time.perf_counter() - began, error=error)

    def answer(self, requests: list[Request], config: PromptConfig) -> list[Answer]:
        # A bad configuration raises BabilabError from build_payload; pool.map re-raises it here.
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(lambda r: self._post(r, config), requests))

    def close(self) -> None:
        self.client.close()

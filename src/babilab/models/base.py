"""The answerer interface and its registry.

An answerer maps a batch of requests (a context and a question, plus the prompt
configuration) to one answer per request, in input order:

    answerer = load_answerer("oracle")
    answers = answerer.answer([Request(...), ...], PromptConfig())

Contract (every backend; each backend's tests in tests/models/ check it):
  - `answer` returns exactly one `Answer` per request, in the order given. Backends may
    reorder internally (longest first, to surface out-of-memory errors at once).
  - A prompt longer than the backend's window is never cut silently: the answer has
    `over_window=True` and an empty output, unless the user asked for left truncation, in
    which case `truncated=True` records that it happened.
  - A failure of one request (a server error, a timeout, a malformed reply, after retries)
    is recorded in `error`, not raised; the run goes on and the next run asks again. Error
    texts pass through `redact`, so no credential reaches the store or the terminal.
  - `fingerprint` is a stable hash of everything that can change an answer (backend, model
    id and weights, dtype, decoding settings) and never of secrets, paths that do not
    change content, or the time. The run store keys predictions by it.
  - `resume_dir`, when set (`evaluate` sets it to RUN/partial), is where a backend whose
    single answers take long may keep work in progress, so that a call interrupted part
    way continues from there (the memory answerers save their state mid-read).

Backends register with `@register("name")`; `ANSWERERS` maps names to "module:Class" so
that `import babilab` never imports torch or an HTTP client.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import inspect
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import BabilabError
from ..prompts import PromptConfig


@dataclass(frozen=True)
class Request:
    sample_id: str
    task: str  # "qa1"
    context: str  # facts hidden in background text, without the question
    question: str
    facts: tuple[str, ...] = ()  # the bAbI statements, when known (the oracle reads them)
    supporting: tuple[int, ...] = ()  # indices into `facts` of the ones the answer rests on
    fact_char_offsets: tuple[int, ...] = ()  # where each fact starts in `context`


@dataclass(frozen=True)
class Answer:
    output: str
    elapsed_s: float = 0.0  # this request's share of its batch's wall time
    prompt_tokens: int | None = None
    over_window: bool = False  # the prompt did not fit; nothing was generated
    truncated: bool = False  # the prompt was cut on the left because the user asked for it
    error: str | None = None  # why the backend failed on this request, after retries
    extra: dict | None = None  # backend-specific measurements (e.g. retrieval recall), JSON-able


class Answerer(ABC):
    name: str = "answerer"
    resume_dir: Path | None = None  # where work in progress may be kept between calls

    @abstractmethod
    def answer(self, requests: list[Request], config: PromptConfig) -> list[Answer]:
        """One answer per request, in the order of `requests`."""

    @property
    @abstractmethod
    def fingerprint(self) -> str:
        """A stable hash of everything that can change an answer."""

    @property
    def label(self) -> str:
        """A short human-readable name used in reports and export paths."""
        return self.name

    def close(self) -> None:  # noqa: B027 - an optional hook, most backends hold nothing
        """Release resources (servers, threads). Idempotent."""


def folder_label(path: str | Path) -> str:
    """A model folder's name for labels; `babilab train` exports to RUN/model, named by RUN.

    >>> folder_label("out/cpu_smollm2_rmt/model"), folder_label("ckpt/qa1")
    ('cpu_smollm2_rmt', 'qa1')
    """
    path = Path(path)
    return path.parent.name if path.name == "model" and path.parent.name else path.name


def fingerprint_of(**fields: object) -> str:
    """sha256 of the fields as sorted-key JSON; a field that is not plain data raises."""
    try:
        text = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    except TypeError as e:
        raise TypeError(f"fingerprint fields must be plain data: {e}") from None
    return hashlib.sha256(text.encode()).hexdigest()[:16]


REDACTED = "[redacted]"
_CREDENTIALS = (
    # a header's credential, however a server echoes it: `Authorization: Bearer X`,
    # "api-key": "X", x-api-key=X (the scheme word stays, the value goes)
    re.compile(r"(?i)((?:proxy-)?authorization|(?:x-)?api[-_]?key)([\"']?\s*[:=]\s*[\"']?"
               r"(?:(?:bearer|basic|token)\s+)?)[^\s\"',;}&]+"),
    # a URL's password: scheme://user:PASSWORD@host
    re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^/\s:@]*)(:)[^/\s@]+(?=@)"),
)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` without credentials: each of `secrets` (an API key, a password) wherever it
    appears, header credentials and URL passwords. Every error text that is stored or
    printed goes through here, since servers echo requests and URLs carry passwords.

    >>> redact('401 {"authorization": "Bearer sk-1"} at http://me:pw@host/v1', ["sk-1"])
    '401 {"authorization": "Bearer [redacted]"} at http://me:[redacted]@host/v1'
    """
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    for pattern in _CREDENTIALS:
        text = pattern.sub(rf"\1\2{REDACTED}", text)
    return text


ANSWERERS: dict[str, str] = {
    "oracle": "babilab.models.oracle:OracleAnswerer",
    "heuristic": "babilab.models.heuristic:HeuristicAnswerer",
    "hf": "babilab.models.hf:HFAnswerer",
    "openai": "babilab.models.openai:OpenAIAnswerer",
    "rag": "babilab.models.rag:RagAnswerer",
    "memory": "babilab.models.memory:AnyMemoryAnswerer",
    "rmt": "babilab.models.memory:RMTAnswerer",
    "rmt_r": "babilab.models.memory:RMTRAnswerer",
    "armt": "babilab.models.memory:ARMTAnswerer",
}
_registered: dict[str, type[Answerer]] = {}


def register(name: str):
    """Class decorator: make an answerer loadable as `name:ARG`."""

    def wrap(cls: type[Answerer]) -> type[Answerer]:
        _registered[name] = cls
        cls.name = name
        return cls

    return wrap


def answerer_class(name: str) -> type[Answerer]:
    if name not in _registered:
        if name not in ANSWERERS:
            close = difflib.get_close_matches(name, ANSWERERS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise BabilabError(f"unknown model type {name!r}{hint} Known: {', '.join(sorted(ANSWERERS))}")
        module, _ = ANSWERERS[name].split(":")
        importlib.import_module(module)
    return _registered[name]


def answerer_options(cls: type[Answerer]) -> list[str] | None:
    """The keyword options an answerer class takes: its `__init__`'s parameters with a
    default (the one without, if any, is the spec's argument). None: it takes any (**kwargs).
    Read from the signature, so asking costs no model load."""
    if cls.__init__ is object.__init__:  # no __init__ of its own (the oracle)
        return []
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]  # after self
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return sorted(p.name for p in params if p.default is not inspect.Parameter.empty
                  and p.kind is not inspect.Parameter.VAR_POSITIONAL)


def check_options(spec: str, options: dict) -> None:
    """Refuse, in one line, options the answerer of `spec` does not take, before it loads.

    A class may also check the options it passes on (rag, to its reader) with a
    `check_spec(arg, options)` classmethod.
    """
    name, _, arg = spec.partition(":")
    name = name.strip().lower()
    cls = answerer_class(name)
    accepted = answerer_options(cls)
    unknown = [] if accepted is None else sorted(k for k in options if k not in accepted)
    if unknown:
        takes = f"it takes {', '.join(accepted)}" if accepted else "it takes no options"
        raise BabilabError(f"option {', '.join(unknown)} does not apply to {name} models; {takes}")
    hook = getattr(cls, "check_spec", None)
    if hook is not None:
        hook(arg, options)


def load_answerer(spec: str, **options: object) -> Answerer:
    """`"oracle"`, `"hf:PATH_OR_ID"`, `"openai:MODEL"` ... -> an answerer.

    The part after the first colon is the backend's one positional argument; everything
    else comes as keyword options (`max_new_tokens`, `base_url`, ...), checked first.
    """
    check_options(spec, options)
    name, _, arg = spec.partition(":")
    return answerer_class(name.strip().lower()).from_spec(arg, **options)  # type: ignore[attr-defined]

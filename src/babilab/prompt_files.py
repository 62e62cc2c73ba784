"""Prompts from a file: `babilab eval --prompts FILE` sends the exact prompts of a published
evaluation instead of babilab's own wording (prompts.py, which stays the default).

Three shapes are read:

    prompts.yaml     per task: instruction, examples, post_prompt (text, "" for none) and an
                     optional template; a top-level `template` serves every task without one

                         template: "{instruction}\\n\\n{examples}\\n\\n{post_prompt}\\n\\n..."
                         qa1:
                           instruction: I will give you context with the facts ...
                           examples: "<example>\\n...\\n</example>"
                           post_prompt: Always return your answer in the following format: ...

    qaN_*.json       one of the prompt files BABILong's scripts write beside each predictions
                     CSV (`<task>_<length>_<config>.json`: {"prompt": {"instruction",
                     "examples", "post_prompt", "template"}, "generate_kwargs": ...}, or the
                     same keys at the top level): that task's prompts
    a folder         every `qaN_<length>_*.json` in it, merged per task and length: a run with
                     a part switched off stores that part as "", so each part takes the text
                     its files agree on. Published runs did not always use one text at every
                     length (Mistral-7B-Instruct-v0.2's qa3 at 0k has a later-fixed example and
                     answer format): each part's most common text serves every length, and a
                     length whose files give another text keeps its own (`by_length`,
                     `at_length`)

The text is put together as BABILong does (github.com/booydar/babilong, get_formatted_input):
`template.format(instruction=..., examples=..., post_prompt=..., context=..., question=...)`,
stripped, with a part the prompt configuration switches off given as "". Blank lines stay
where BABILong leaves them, so a published run's inputs are reproduced byte for byte.

`digest` is the sha256 of the prompts the file gives (canonical JSON of each task's four
texts, and of the per-length ones), not of its bytes: a comment or a BABILong file's decoding
settings do not change what a model is asked, so they do not split stored predictions; any
change to a prompt does.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import BabilabError

if TYPE_CHECKING:
    from .prompts import PromptConfig

# BABILong's template, as its released prompt files record it
BABILONG_TEMPLATE = ("{instruction}\n\n{examples}\n\n{post_prompt}\n\n<context>\n{context}\n"
                     "</context>\n\nQuestion: {question}")
PARTS = ("instruction", "examples", "post_prompt")
KEYS = (*PARTS, "template")  # a FilePrompt's fields
FIELDS = (*PARTS, "context", "question")  # what a template may name
TASKS = tuple(f"qa{i}" for i in range(1, 21))
_JSON_TASK = re.compile(r"^(qa\d+)_")
_JSON_LENGTH = re.compile(r"^qa\d+_(\d+(?:\.\d+)?[kKmM]?)_")


@dataclass(frozen=True)
class FilePrompt:
    """One task's texts from a prompt file."""

    instruction: str
    examples: str
    post_prompt: str
    template: str = BABILONG_TEMPLATE


@dataclass(frozen=True)
class PromptFile:
    """The prompts of one file (or folder); equal files have equal digests."""

    source: str  # the path as given, for messages and the report
    digest: str  # sha256 of the prompts (see the module docstring)
    tasks: Mapping[str, FilePrompt] = field(compare=False, hash=False, repr=False)
    # (task, length) -> texts a published run used at that length instead of the task's own
    by_length: Mapping[tuple[str, str], FilePrompt] = field(default_factory=dict, compare=False,
                                                            hash=False, repr=False)

    @property
    def short(self) -> str:
        """The digest prefix that names this file in prediction keys and reports."""
        return self.digest[:12]

    def at_length(self, length: str) -> PromptFile:
        """The texts used at one length (the same digest: it is still this file)."""
        own = {t: p for (t, n), p in self.by_length.items() if n == length}
        return replace(self, tasks={**self.tasks, **own}, by_length={}) if own else self

    def format(self, task: str, context: str, question: str, config: PromptConfig) -> str:
        """The prompt text for one request, exactly as BABILong builds it."""
        if task not in self.tasks:
            raise BabilabError(f"{self.source}: no prompt for {task}")
        p = self.tasks[task]
        return p.template.format(instruction=p.instruction if config.instruction else "",
                                 examples=p.examples if config.examples else "",
                                 post_prompt=p.post_prompt if config.post_prompt else "",
                                 context=context, question=question).strip()

    def check_covers(self, tasks: Iterable[str]) -> None:
        """Refuse, before anything runs, tasks the file has no prompt for."""
        missing = [t for t in tasks if t not in self.tasks]
        if missing:
            raise BabilabError(f"{self.source}: no prompt for {', '.join(missing)} (it has "
                               f"{', '.join(self.tasks) or 'none'}); add them or filter with --tasks")


def load_prompt_file(path: Path | str) -> PromptFile:
    """A YAML prompts file, a BABILong prompt .json, or a folder of those .json files."""
    path = Path(path)
    by_length: dict[tuple[str, str], FilePrompt] = {}
    if path.is_dir():
        tasks, by_length = _read_json_folder(path)
    elif path.suffix.lower() == ".json":
        tasks = _read_json_file(path)
    else:
        tasks = _read_yaml(path)
    for name, prompt in [*tasks.items(), *((f"{t} at {n}", p) for (t, n), p in by_length.items())]:
        _check_template(path, name, prompt.template)
    canonical = json.dumps({"tasks": {t: asdict(p) for t, p in tasks.items()},
                            "by_length": {f"{t}/{n}": asdict(p) for (t, n), p in by_length.items()}},
                           sort_keys=True)
    return PromptFile(str(path), hashlib.sha256(canonical.encode()).hexdigest(),
                      dict(sorted(tasks.items(), key=lambda kv: int(kv[0][2:]))), by_length)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BabilabError(f"{path}: no such prompts file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise BabilabError(f"{path}: cannot read the prompts file ({e})") from None


def _read_yaml(path: Path) -> dict[str, FilePrompt]:
    import yaml

    try:
        data = yaml.safe_load(_read_text(path))
    except yaml.YAMLError as e:
        raise BabilabError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict) or not data:
        raise BabilabError(f"{path}: expected a mapping of task (qa1..qa20) to its instruction, "
                           "examples, post_prompt and optional template")
    if _is_babilong_record(data):  # a BABILong record saved under another suffix
        return {_json_task(path): _babilong_prompt(path, data)}
    default_template = _text(path, "template", data.get("template", BABILONG_TEMPLATE))
    unknown = [str(k) for k in data if k not in TASKS and k != "template"]
    if unknown:
        raise BabilabError(f"{path}: unknown key {unknown[0]!r}; keys are qa1..qa20 and template")
    tasks = {task: _task_prompt(path, task, value, default_template)
             for task, value in data.items() if task != "template"}
    if not tasks:
        raise BabilabError(f"{path}: no task prompts in it (keys qa1..qa20)")
    return tasks


def _task_prompt(path: Path, task: str, value: Any, default_template: str) -> FilePrompt:
    """One task's mapping: the three parts are required (write "" for none), so a typo never
    leaves a part silently empty."""
    if not isinstance(value, dict):
        raise BabilabError(f"{path}: {task} must be a mapping of instruction, examples, "
                           "post_prompt (and optional template)")
    unknown = sorted(set(value) - {*PARTS, "template"})
    if unknown:
        raise BabilabError(f"{path}: {task}: unknown key {unknown[0]!r}; keys are "
                           f"{', '.join(PARTS)} and template")
    missing = [p for p in PARTS if p not in value]
    if missing:
        raise BabilabError(f"{path}: {task}: missing {missing[0]} (write {missing[0]}: \"\" "
                           "for none)")
    texts = {p: _text(path, f"{task}.{p}", value[p]) for p in PARTS}
    return FilePrompt(**texts, template=_text(path, f"{task}.template",
                                              value.get("template", default_template)))


def _text(path: Path, where: str, value: Any) -> str:
    if not isinstance(value, str):
        raise BabilabError(f"{path}: {where} must be text, got {type(value).__name__}")
    return value


def _is_babilong_record(data: dict) -> bool:
    return isinstance(data.get("prompt"), dict) or "instruction" in data


def _json_task(path: Path) -> str:
    m = _JSON_TASK.match(path.name)
    if m is None or m.group(1) not in TASKS:
        raise BabilabError(f"{path}: a BABILong prompt file's name starts with its task, e.g. "
                           "qa1_4k_instruction_yes_examples_yes_post_prompt_yes.json")
    return m.group(1)


def _babilong_prompt(path: Path, data: dict) -> FilePrompt:
    """A BABILong record: the prompt keys under "prompt" (older files) or at the top level."""
    record = data["prompt"] if isinstance(data.get("prompt"), dict) else data
    missing = [p for p in PARTS if p not in record]
    if missing:
        raise BabilabError(f"{path}: not a BABILong prompt file (no {missing[0]!r}; expected "
                           f"{', '.join(PARTS)} and template)")
    texts = {p: _text(path, p, record[p] or "") for p in PARTS}  # null: a part left out
    return FilePrompt(**texts, template=_text(path, "template",
                                              record.get("template") or BABILONG_TEMPLATE))


def _load_json(path: Path) -> Any:
    try:
        return json.loads(_read_text(path))
    except json.JSONDecodeError as e:
        raise BabilabError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None


def _read_json_file(path: Path) -> dict[str, FilePrompt]:
    data = _load_json(path)
    if not isinstance(data, dict):
        raise BabilabError(f"{path}: expected a JSON object")
    if _is_babilong_record(data):
        return {_json_task(path): _babilong_prompt(path, data)}
    return _read_yaml(path)  # babilab's own layout, written as JSON (YAML reads JSON)


def _read_json_folder(folder: Path) -> tuple[dict[str, FilePrompt],
                                             dict[tuple[str, str], FilePrompt]]:
    """Per task its most common texts, and per (task, length) the texts that differ from them."""
    files = sorted(f for f in folder.glob("qa*_*.json") if f.is_file())
    if not files:
        raise BabilabError(f"{folder}: no BABILong prompt files (qaN_<length>_<config>.json) in it")
    found: dict[tuple[str, str], list[tuple[Path, FilePrompt]]] = {}
    for f in files:
        length = _JSON_LENGTH.match(f.name)
        if length is None:
            raise BabilabError(f"{f}: expected a name like qa1_4k_<config>.json in a folder of "
                               "BABILong prompt files")
        for task, prompt in _read_json_file(f).items():
            found.setdefault((task, length.group(1)), []).append((f, prompt))
    cells = {key: _merge(folder, key, files) for key, files in found.items()}
    tasks, by_length = {}, {}
    for task in dict.fromkeys(t for t, _ in cells):
        mine = {n: p for (t, n), p in cells.items() if t == task}
        tasks[task] = FilePrompt(**{key: _most_common(mine, key) for key in KEYS})
        for n, p in mine.items():  # a part a length's files leave empty is not a text of its own
            own = FilePrompt(**{key: getattr(p, key) or getattr(tasks[task], key) for key in KEYS})
            if own != tasks[task]:
                by_length[(task, n)] = own
    return tasks, by_length


def _most_common(by_length: dict[str, FilePrompt], key: str) -> str:
    """The non-empty text of one part that most lengths used; a tie goes to the longest
    length's; "" when no file has it."""
    from .suite.files import parse_length

    texts = {n: getattr(p, key) for n, p in by_length.items() if getattr(p, key)}
    if not texts:
        return ""
    counts = Counter(texts.values())
    longest = {t: max(parse_length(n) for n, u in texts.items() if u == t) for t in counts}
    return max(counts, key=lambda t: (counts[t], longest[t]))


def _merge(folder: Path, cell: tuple[str, str], found: list[tuple[Path, FilePrompt]]) -> FilePrompt:
    """One (task, length)'s files as one prompt: each part is the non-empty text they agree on."""
    merged = {}
    for key in KEYS:
        texts = {getattr(p, key): f for f, p in found if getattr(p, key)}
        if len(texts) > 1:
            a, b = list(texts.values())[:2]
            raise BabilabError(f"{folder}: the {cell[0]} prompt files at {cell[1]} disagree on the "
                               f"{key} ({a.name} vs {b.name}); point --prompts at one of them")
        merged[key] = next(iter(texts), "")
    return FilePrompt(**merged)


def _check_template(path: Path, task: str, template: str) -> None:
    """A template names only BABILong's fields, and at least the context and the question."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as e:
        raise BabilabError(f"{path}: {task}'s template is not a format string ({e})") from None
    bad = [n for n in names if n not in FIELDS]
    if bad:
        raise BabilabError(f"{path}: {task}'s template names {{{bad[0]}}}; it may name "
                           f"{', '.join('{' + f + '}' for f in FIELDS)}")
    for needed in ("context", "question"):
        if needed not in names:
            raise BabilabError(f"{path}: {task}'s template has no {{{needed}}}")

"""`babilab eval --config run.yaml`: a whole evaluation in one file, and the record of it.

    suite: out/demo/suite
    run: out/demo/run
    tasks: qa1                       # optional filters, as --tasks and --lengths
    models:
      - model: oracle
      - model: hf:smollm2
        options: {max_new_tokens: 10, dtype: float32}

Top-level keys mirror `babilab eval`'s options (`prompts` is the list of --prompt names,
`prompts_file` the --prompts file: YAML, a BABILong prompt .json or a folder of them); a
model's `options` are its answerer's keyword options (`max_new_tokens`, `timeout_s`,
`chunk`, ...). Unknown keys are errors (extra="forbid", as training recipes), so a typo
never runs with a default. The command line overrides the file: --suite, --run, --tasks ...
replace its values, --model replaces its model list, and answerer options (--max-new-tokens,
--model-arg KEY=VALUE, ...) go to every model, over the model's own.

Before anything loads or is written, every model's options are checked against what its
answerer takes (from the signature, models/base.py), and the suite and filters are opened.
Then RUN/eval_config.yaml gets the resolved config of this call (credentials in options
redacted), which runs again as it is: `babilab eval --config RUN/eval_config.yaml`.
Paths are read relative to the working directory, as on the command line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..babi import parse_tasks
from ..config_files import config_error, read_yaml
from ..errors import BabilabError
from ..models.base import check_options, redact
from ..outputs import write_text_atomic
from ..prompt_files import load_prompt_file
from ..prompts import PromptConfig
from ..scoring import MODES
from ..suite.files import Suite
from .evaluate import EvalSummary, check_prompt_files, check_run_dir, evaluate, select_cells

RECORD_FILE = "eval_config.yaml"
_FLOAT = re.compile(r"[-+]?\d+(\.\d*)?[eE][-+]?\d+")  # YAML 1.1 reads 1e-4 as a string


class ModelRun(BaseModel):
    """One model of the run: its spec, as --model takes it, and its answerer's options."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(min_length=1)
    options: dict[str, Any] = {}


class EvalConfig(BaseModel):
    """What `babilab eval` does; the defaults are the command's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    suite: str
    run: str
    models: list[ModelRun] = Field(min_length=1)
    prompts: list[str] = []  # prompt configuration names; none: BABILong's full prompt
    system_prompt: str | None = None
    prompts_file: str | None = None  # prompt texts from a file instead of babilab's own
    tasks: list[str] | None = None  # None: every task the suite has
    lengths: list[str] | None = None
    batch_size: int = Field(8, ge=1)
    mode: str = "babilong"  # scoring mode of the printed summary

    @field_validator("models", mode="before")
    @classmethod
    def _models(cls, v: Any) -> Any:
        """`- oracle` is short for `- model: oracle`."""
        return [{"model": m} if isinstance(m, str) else m for m in v] if isinstance(v, list) else v

    @field_validator("tasks", mode="before")
    @classmethod
    def _tasks(cls, v: Any) -> Any:
        return v if v is None else parse_tasks(v if isinstance(v, str) else ",".join(map(str, v)))

    @field_validator("lengths", mode="before")
    @classmethod
    def _lengths(cls, v: Any) -> Any:
        return [x.strip() for x in v.split(",")] if isinstance(v, str) else v

    @field_validator("mode")
    @classmethod
    def _mode(cls, v: str) -> str:
        if v not in MODES:
            raise ValueError(f"must be one of {', '.join(MODES)}, got {v!r}")
        return v

    @field_validator("prompts")
    @classmethod
    def _prompts(cls, v: list[str]) -> list[str]:
        for name in v:  # a bad name fails here, before any model loads
            PromptConfig.from_name(name, "")
        return v

    def prompt_configs(self, options: Mapping[str, Any]) -> list[PromptConfig]:
        """The configurations to run, each with the prompts file's texts when there is one
        (read here, so a bad file is refused before anything is written)."""
        if self.prompts:
            configs = [PromptConfig.from_name(p, self.system_prompt) for p in self.prompts]
        else:  # BABILong's full prompt; a completions endpoint takes raw text: no chat template
            configs = [PromptConfig(chat_template=options.get("mode") != "completions",
                                    system_prompt=self.system_prompt)]
        if self.prompts_file is None:
            return configs
        prompts = load_prompt_file(self.prompts_file)
        return [replace(c, prompts=prompts) for c in configs]


def yaml_value(text: str) -> Any:
    """A --model-arg value: `32` -> 32, `true` -> True, `1e-4` -> 0.0001, `left` -> 'left'."""
    import yaml

    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        raise BabilabError(f"--model-arg value {text!r} is not a YAML value") from None
    return float(value) if isinstance(value, str) and _FLOAT.fullmatch(value) else value


def parse_model_args(assignments: Sequence[str]) -> dict[str, Any]:
    """`["max_new_tokens=32", "dtype=float32"]` -> {"max_new_tokens": 32, "dtype": "float32"}."""
    options: dict[str, Any] = {}
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise BabilabError(f"--model-arg {assignment!r}: expected KEY=VALUE, e.g. max_new_tokens=32")
        if key in options:
            raise BabilabError(f"--model-arg {key} is given twice")
        options[key] = yaml_value(text)
    return options


def cli_model_options(flags: Mapping[str, tuple[str, Any]], model_args: Sequence[str]) -> dict[str, Any]:
    """Answerer options from the command line: the dedicated flags that are set
    (`{"--api-mode": ("mode", "chat")}`) and the --model-arg ones; a key set both ways is
    an error, since neither could be said to win."""
    options = {key: value for key, value in flags.values() if value is not None}
    for key, value in parse_model_args(model_args).items():
        if key in options:
            flag = next(f for f, (k, v) in flags.items() if k == key and v is not None)
            raise BabilabError(f"{key} is given twice, by {flag} and by --model-arg {key}=...; "
                               "keep one")
        options[key] = value
    return options


REQUIRED = {"suite": "--suite", "run": "--run", "models": "--model"}  # key -> its flag


def resolve_eval_config(path: Path | None, overrides: Mapping[str, Any], model: str | None = None,
                        options: Mapping[str, Any] | None = None) -> EvalConfig:
    """The file's values (if any), then the command line's: `overrides` (top-level keys whose
    value is not None), `model` (replacing the file's models), `options` (to every model)."""
    where = f"{path}: " if path else ""
    data = read_yaml(path) if path else {}
    data.update({k: v for k, v in overrides.items() if v is not None})
    if model is not None:
        data["models"] = [{"model": model}]
    for key, flag in REQUIRED.items():
        if not data.get(key):
            also = f" or `{key}:` in the file" if path else f" (or --config with `{key}:`)"
            raise BabilabError(f"{where}no {key}: give {flag}{also}")
    try:
        cfg = EvalConfig(**data)
    except ValueError as e:  # pydantic's ValidationError and our validators' errors
        raise config_error(e, where) from None
    if options:
        models = [m.model_copy(update={"options": {**m.options, **options}}) for m in cfg.models]
        cfg = cfg.model_copy(update={"models": models})
    return cfg


def check_eval_config(cfg: EvalConfig, where: str = "") -> Suite:
    """Everything that can be checked without loading a model: the run folder (a folder,
    with readable run files of this format), the suite (every sample of the cells asked
    for, read once), the filters, and each model's options against its answerer's
    signature. Returns the opened suite."""
    check_run_dir(Path(cfg.run))
    suite = Suite(cfg.suite)
    suite.check(select_cells(suite, cfg.tasks, cfg.lengths))
    for i, m in enumerate(cfg.models):
        try:
            check_options(m.model, m.options)
        except BabilabError as e:
            prefix = f"{where}models.{i}: " if len(cfg.models) > 1 else where
            raise BabilabError(f"{prefix}{e}") from None
    return suite


def redacted(value: Any) -> Any:
    """Options as they may be written down: strings without credentials (a URL's password)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redacted(v) for v in value]
    return value


def write_record(cfg: EvalConfig) -> Path:
    """RUN/eval_config.yaml: this call's resolved config, written atomically."""
    import yaml

    data = cfg.model_dump()
    for m in data["models"]:
        m["options"] = redacted(m["options"])
    run_dir = Path(cfg.run)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / RECORD_FILE
    write_text_atomic(path, "# the resolved config of the latest `babilab eval` into this run; "
                      f"run it again:\n#   babilab eval --config {path}\n"
                      + yaml.safe_dump(data, sort_keys=False))
    return path


def run_eval_config(cfg: EvalConfig, where: str = "",
                    progress: bool | None = None) -> list[EvalSummary]:
    """Check everything, then evaluate each model in turn; the config is recorded once the
    first model has loaded, so a model that cannot load leaves the run folder as it was."""
    suite = check_eval_config(cfg, where)
    configs = [cfg.prompt_configs(m.options) for m in cfg.models]  # may refuse: before writing
    cells = select_cells(suite, cfg.tasks, cfg.lengths)
    for c in configs:
        check_prompt_files(c, cells)
    return [evaluate(suite, m.model, cfg.run, configs=c, batch_size=cfg.batch_size,
                     tasks=cfg.tasks, lengths=cfg.lengths, progress=progress,
                     before_writing=lambda: write_record(cfg), **m.options)
            for m, c in zip(cfg.models, configs, strict=True)]

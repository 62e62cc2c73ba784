"""Build a BABILong suite: the same bAbI questions hidden in background books at every length.

For each task, the first `samples` questions of the task's stream (split, seed) are taken
once; each is assembled at every length by haystack.assemble with its own random generator,
seeded by (seed, task, length, index), so any sample can be rebuilt alone and the same
inputs give the same bytes. A question whose facts do not fit a length is dropped there and
counted, as BABILong does.

Suites are named by how they were made (datasets-style fingerprints, made strict): the
sha256 of the suite format, the full resolved config (defaults included), the bAbI
generator version and the background's fingerprint (corpus *content* + tokenizer + how it
was prepared), never paths or times. `out` and `progress` are the only settings left out
(NOT_HASHED). Building into a folder that already holds the same fingerprint is a no-op, and
without `out` suites live in the user cache under their fingerprint.

Every sample records where its background came from (`meta["background"]`: the stretches of
books, background tokens, distinct tokens and the repetition factor, see haystack/assemble.py)
and every cell its largest repetition factor; `background_report` turns those into the lines
`babilab generate` prints, with a warning when contexts repeat text.

NIAH-style grids (`generate --depths 0,25,50,75,100`) are one ordinary suite per depth, each
built with placement `depth:D` into OUT/depth-D: placement is part of the config, so each
depth has its own fingerprint (the same one `--placement depth:D` gives) and the suite format
stays one placement per suite. Predictions record their suite's placement, so a run that
evaluates all of them reports accuracy by depth x length.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from ..babi import GENERATOR_VERSION, SPLITS, parse_tasks, take_qas
from ..cache import cache_root
from ..errors import BabilabError
from .files import SUITE_FILE, SUITE_FORMAT, Sample, Suite, SuiteWriter, length_name, parse_length

NOT_HASHED = frozenset({"out", "progress"})
MAX_LENGTH_TOKENS = 100_000_000  # ten times BABILong's longest (10M): one sample sits in memory
MAX_SAMPLES = 100_000  # questions per task (BABILong has 100 to 1,000)


class GenerateConfig(BaseModel):
    """What `babilab generate` builds. Every field changes the suite's content."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tasks: list[str] = ["qa1", "qa2", "qa3", "qa4", "qa5"]
    lengths: list[str] = ["0k", "1k", "2k", "4k", "8k"]  # k = 1,000 tokens, M = 1,000,000
    samples: int = 100  # questions per task; the same ones at every length
    corpus: str = "gutenberg"  # gutenberg|austen|sotu|bible|shakespeare|pg19|dir:PATH|file:PATH, A+B
    tokenizer: str = "gpt2"  # gpt2 (BABILong's unit) | cl100k | an HF folder or GGUF file
    placement: str = "uniform"  # uniform | spread | window:START-END | depth:D
    split: str = "test"  # bAbI stories and books: test for evaluation; valid and train use train books
    seed: int = 0
    reserve_tokens: int = 300  # left for the prompt: context = length - reserve (0k: facts only)

    @field_validator("tasks", mode="before")
    @classmethod
    def _tasks(cls, v):
        return parse_tasks(v if isinstance(v, str) else ",".join(v))

    @field_validator("lengths", mode="before")
    @classmethod
    def _lengths(cls, v):
        names = [x.strip() for x in (v.split(",") if isinstance(v, str) else v)]
        for name in names:
            if parse_length(name) > MAX_LENGTH_TOKENS:  # one sample is built in memory
                raise ValueError(f"{name} is over the longest length babilab builds, "
                                 f"{length_name(MAX_LENGTH_TOKENS)} tokens")
        if not names:
            raise ValueError("give at least one length")
        return names

    @field_validator("samples")
    @classmethod
    def _samples(cls, v):
        if not 1 <= v <= MAX_SAMPLES:  # 0 builds an empty suite; the questions are held in memory
            raise ValueError(f"must be between 1 and {MAX_SAMPLES:,} questions per task, got {v}")
        return v

    @field_validator("seed")
    @classmethod
    def _seed(cls, v):
        if v < 0:
            raise ValueError(f"must be >= 0 (it seeds numpy's generators), got {v}")
        return v

    @field_validator("reserve_tokens")
    @classmethod
    def _reserve(cls, v, info: ValidationInfo):
        if v < 0:
            raise ValueError(f"must be >= 0, got {v}")
        shortest = min((parse_length(n) for n in info.data.get("lengths", [])
                        if parse_length(n) > 0), default=None)
        if shortest is not None and v >= shortest:  # no room for any context: all dropped
            raise ValueError(f"{v} leaves no context at {length_name(shortest)}; give a reserve "
                             f"below the shortest length ({shortest} tokens)")
        return v

    @field_validator("split")
    @classmethod
    def _split(cls, v):
        if v not in SPLITS:
            raise ValueError(f"unknown split {v!r}; splits are {', '.join(SPLITS)}")
        return v


def suite_fingerprint(cfg: GenerateConfig, background_fingerprint: str) -> str:
    from ..haystack import ASSEMBLY_VERSION

    fields = {"format": SUITE_FORMAT, "config": cfg.model_dump(), "babi": GENERATOR_VERSION,
              "assembly": ASSEMBLY_VERSION, "background": background_fingerprint}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def sample_rng(seed: int, task: str, length_tokens: int, index: int):
    import numpy as np

    return np.random.default_rng([seed, int(task[2:]), length_tokens, index])


def suites_dir() -> Path:
    """Where a suite built without --out goes: the babilab cache's suites/, by fingerprint."""
    return cache_root() / "suites"


def generate_suite(cfg: GenerateConfig, out: Path | str | None = None,
                   progress: bool | None = None) -> Suite:
    """Build the suite `cfg` describes (or find it already built) and open it."""
    from ..haystack import FactsDoNotFitError, assemble, parse_placement, prepare_background

    parse_placement(cfg.placement)  # a bad policy fails before any work
    show = sys.stderr.isatty() if progress is None else progress
    # Validation questions take the train books: nothing but the test suite touches test books.
    book_split = "test" if cfg.split == "test" else "train"
    background = prepare_background(cfg.corpus, cfg.tokenizer, split=book_split, progress=show)
    fingerprint = suite_fingerprint(cfg, background.fingerprint)
    out = Path(out) if out is not None else suites_dir() / fingerprint[:24]
    if (out / SUITE_FILE).is_file():
        existing = Suite(out)
        if existing.fingerprint == fingerprint:
            return existing

    info = {"fingerprint": fingerprint, "config": cfg.model_dump(),
            "babi_generator": GENERATOR_VERSION, "background": background.meta}
    meta = {"seed": cfg.seed, "corpus": cfg.corpus, "tokenizer": cfg.tokenizer,
            "placement": cfg.placement, "split": cfg.split, "babi_generator": GENERATOR_VERSION}
    lengths = {name: parse_length(name) for name in cfg.lengths}
    total_tokens = len(cfg.tasks) * cfg.samples * sum(max(n - cfg.reserve_tokens, 0) for n in
                                                       lengths.values())
    with SuiteWriter(out, info) as writer, progress_bar(total_tokens, show) as bar:
        for task in cfg.tasks:
            qas = take_qas(task, cfg.split, cfg.samples, cfg.seed)
            for name, length in lengths.items():
                cell, dropped, repetition = writer.cell(task, name), 0, []
                for index, qa in enumerate(qas):
                    rng = sample_rng(cfg.seed, task, length, index)
                    try:
                        ctx = assemble(qa, length, rng, background, placement=cfg.placement,
                                       reserve_tokens=cfg.reserve_tokens)
                    except FactsDoNotFitError:
                        dropped += 1
                        continue
                    cell.add(Sample(
                        task=task, length=name, index=index, input=ctx.text(),
                        question=qa.question, target=qa.answer, facts=qa.facts,
                        supporting=qa.supporting,
                        fact_char_offsets=tuple(p.char_offset for p in ctx.positions),
                        fact_token_offsets=tuple(p.token_offset for p in ctx.positions),
                        fact_depths=tuple(round(p.depth_pct, 3) for p in ctx.positions),
                        context_tokens=ctx.n_tokens,
                        meta={**meta, "books": list(ctx.books), "background": provenance(ctx)},
                    ))
                    repetition.append(ctx.repetition_factor)
                    bar.update(max(length - cfg.reserve_tokens, 0))
                writer.finish_cell(cell, dropped, repetition_stats(repetition))
    return Suite(out)


class SilentBar:
    """What a progress bar nobody sees does."""

    def update(self, n: int = 1) -> None:
        pass


def progress_bar(total_tokens: int, show: bool):
    """tqdm's bar over the tokens assembled, or a silent one: importing and starting tqdm took
    20 ms of a 0.5 s `babilab generate`, for a bar that is off when stderr is no terminal."""
    if not show:
        return contextlib.nullcontext(SilentBar())
    from tqdm import tqdm

    return tqdm(total=total_tokens, unit="tok", unit_scale=True, desc="assembling")


def provenance(ctx) -> dict:
    """A context's background provenance as plain data, for a sample's meta["background"]."""
    return {"spans": [span.as_dict() for span in ctx.spans],
            "tokens": sum(span.n_tokens for span in ctx.spans),
            "distinct_tokens": ctx.n_distinct_background_tokens,
            "repetition": round(ctx.repetition_factor, 4)}


def repetition_stats(factors: list[float]) -> dict:
    """A cell's summary in suite.json: the largest and mean repetition factor, and how many
    samples repeat background text."""
    if not factors:
        return {}
    return {"repetition_max": round(max(factors), 4),
            "repetition_mean": round(sum(factors) / len(factors), 4),
            "repeating": sum(f > 1 for f in factors)}


# Where to get more distinct text: every offline corpus together (its test split holds about
# 1.2M GPT-2 tokens, docs/suites.md), then PG-19.
BIGGER_CORPUS = "gutenberg+austen+sotu+bible+shakespeare"


def background_report(info: dict) -> tuple[list[str], list[str]]:
    """(summary lines, warnings) about a suite's background: one line per length with the
    repetition factor, and a warning for each length whose contexts repeat text.

    Suites of format 1 (and official sets) carry no repetition: no lines, no warnings.
    """
    by_length: dict[str, list[dict]] = {}
    for key, cell in info.get("cells", {}).items():
        if "repetition_max" in cell:
            by_length.setdefault(key.partition("/")[2], []).append(cell)
    lines, warnings = [], []
    bg = info.get("background") or {}
    for name in sorted(by_length, key=parse_length):
        cells = by_length[name]
        worst = max(c["repetition_max"] for c in cells)
        samples = sum(c["samples"] for c in cells)
        mean = sum(c["repetition_mean"] * c["samples"] for c in cells) / max(samples, 1)
        repeating = sum(c["repeating"] for c in cells)
        if parse_length(name) == 0:
            lines.append(f"{name}: facts only, no background")
            continue
        lines.append(f"{name}: repetition factor {mean:.2f} (max {worst:.2f}), "
                     f"{repeating} of {samples} contexts repeat background text")
        if repeating:
            corpus = bg.get("corpus", "the corpus")
            held = (f" holds {bg['n_tokens']:,} tokens" if "n_tokens" in bg else " is too small")
            bigger = ("" if corpus == BIGGER_CORPUS else f"--corpus {BIGGER_CORPUS} (all offline "
                      f"corpora, about 1.2M test tokens) or ")
            warnings.append(f"{name} contexts repeat background text (up to {worst:.2f} times): "
                            f"the {corpus} {bg.get('split', '')} split{held}; for more distinct "
                            f"text use {bigger}--corpus pg19 (see docs/suites.md)")
    return lines, warnings


def parse_depths(text: str) -> list[float]:
    """`"0,25,50"` -> [0.0, 25.0, 50.0]: distinct depths in percent of the context."""
    try:
        depths = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise BabilabError(f"--depths {text!r}: expected percentages, e.g. 0,25,50,75,100") from None
    if not depths or any(not 0 <= d <= 100 for d in depths):
        raise BabilabError(f"--depths {text!r}: expected percentages within 0..100, e.g. 0,25,50,75,100")
    if len(set(depths)) != len(depths):
        raise BabilabError(f"--depths {text!r}: a depth is given twice")
    return depths


def depth_suite_dir(out: Path | str, depth: float) -> Path:
    """Where `--depths` puts one depth's suite: OUT/depth-25."""
    return Path(out) / f"depth-{depth:g}"


def generate_depth_suites(cfg: GenerateConfig, depths: list[float], out: Path | str | None = None,
                          progress: bool | None = None) -> list[Suite]:
    """One suite per depth: `cfg` with placement depth:D, into OUT/depth-D (or the cache)."""
    if "placement" in cfg.model_fields_set:
        raise BabilabError(f"--depths places the facts at each depth itself; drop placement "
                           f"{cfg.placement!r}")
    return [generate_suite(cfg.model_copy(update={"placement": f"depth:{d:g}"}),
                           None if out is None else depth_suite_dir(out, d), progress)
            for d in depths]


def config_error(e: Exception) -> BabilabError:
    """A GenerateConfig validation error as one line; an unknown option names the options."""
    from ..config_files import config_error as one_line

    return one_line(e, options=GenerateConfig.model_fields)

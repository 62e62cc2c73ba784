"""The `babilab` command: one verb per public function, no logic of its own.

Any `BabilabError`, usage mistake or OSError (a full disk, a folder that cannot be written)
becomes one line on stderr and exit code 2; anything else (a bug) one line and exit code 1
(BABILAB_TRACEBACK=1 shows the traceback). Ctrl-C and SIGTERM stop a command with one line
saying what it keeps, and exit code 130. Inputs are checked here or in the functions each
verb calls before anything is written or loaded (outputs.py: where and how files are written).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from . import babi
from .errors import BabilabError

app = typer.Typer(help="Generate BABILong, evaluate models on it, train memory models, report.",
                  add_completion=False, pretty_exceptions_enable=False)
babi_app = typer.Typer(help="The bAbI tasks: generate stories, measure them, check them.")
app.add_typer(babi_app, name="babi")
MAX_QUESTIONS = 1_000_000  # per bAbI file: the stories are held in memory (en-10k has 10,000)


@app.callback(invoke_without_command=True)
@babi_app.callback(invoke_without_command=True)
def show_help(ctx: typer.Context) -> None:
    """A group called without a verb prints its help."""
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)


@babi_app.command("generate")
def babi_generate(
    out: Annotated[Path, typer.Option(help="folder for the qaN_<name>_<split>.txt files")],
    tasks: Annotated[str, typer.Option(help="qa1,qa2 or qa1-qa5 or all")] = "all",
    split: Annotated[str, typer.Option(help="train, valid or test (disjoint story sets)")] = "train",
    questions: Annotated[int, typer.Option(min=1, max=MAX_QUESTIONS,
                                           help="questions per task file")] = 1000,
    seed: Annotated[int, typer.Option(min=0)] = 0,
) -> None:
    """Generate fresh bAbI v1.2 files, one per task."""
    names = babi.parse_tasks(tasks)
    with typer_progress(len(names), "generating") as bar:  # all files or none
        paths = babi.write_files(names, split, questions, seed, out, lambda _: bar.update(1))
    for path in paths:
        typer.echo(path)


@babi_app.command("stats")
def babi_stats(
    path: Annotated[Path, typer.Argument(help="a bAbI file or a folder of them")],
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per file")] = False,
) -> None:
    """Per-task statistics: lengths, answers, templates, recency."""
    for file in babi.find_files(path):
        for stats in babi.compute_stats(babi.read_file(file)).values():
            if as_json:
                typer.echo(json.dumps({"file": str(file), **stats.as_dict()}))
            else:
                typer.echo(f"{file}\n{babi.format_stats(stats)}\n")


@babi_app.command("check")
def babi_check(
    path: Annotated[Path, typer.Argument(help="a bAbI file or a folder of them")],
    show: Annotated[int, typer.Option(min=0, help="errors to print per file")] = 10,
) -> None:
    """Re-derive every answer and supporting id with the solver; exit 1 on any error."""
    failed = False
    for file in babi.find_files(path):
        checked, errors = babi.check_stories(babi.read_file(file))
        typer.echo(f"{file}: {checked} questions, {len(errors)} errors")
        for error in errors[:show]:
            typer.echo(f"  {error}")
        failed |= bool(errors)
    if failed:
        raise typer.Exit(1)


@app.command()
def generate(
    out: Annotated[Path | None, typer.Option(help="suite folder (default: the user cache, "
                                                  "named by the suite's fingerprint)")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML with any of the options below")] = None,
    tasks: Annotated[str | None, typer.Option(help="qa1-qa5, qa1,qa3 or all [qa1-qa5]")] = None,
    lengths: Annotated[str | None, typer.Option(help="0k,1k,4k,32k,128k,1M,10M [0k-8k]")] = None,
    samples: Annotated[int | None, typer.Option(help="questions per task [100]")] = None,
    corpus: Annotated[str | None, typer.Option(
        help="gutenberg | austen | sotu | bible | shakespeare | pg19[:SOURCE] | dir:PATH | "
             "file:PATH, or several joined by + (gutenberg+austen+sotu)")] = None,
    tokenizer: Annotated[str | None, typer.Option(help="gpt2 | cl100k | HF folder | .gguf")] = None,
    placement: Annotated[str | None, typer.Option(
        help="uniform | spread | window:START-END | depth:D")] = None,
    depths: Annotated[str | None, typer.Option(
        help="depth x length grids (needle-in-a-haystack style): one suite per depth, e.g. "
             "0,25,50,75,100, placement depth:D, in OUT/depth-D")] = None,
    split: Annotated[str | None, typer.Option(help="test (evaluation) or train")] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    reserve_tokens: Annotated[int | None, typer.Option(help="tokens left for the prompt [300]")] = None,
    official: Annotated[bool, typer.Option(help="load RMT-team/babilong instead (needs the hub)")] = False,
    official_source: Annotated[str, typer.Option(help="hub id or local copy of an official set")] =
        "RMT-team/babilong",
) -> None:
    """Build a BABILong suite: bAbI facts hidden in background books, token-exact."""
    from .config_files import read_yaml
    from .outputs import check_output_dir
    from .suite import GenerateConfig, generate_suite, load_official
    from .suite.build import config_error
    from .suite.files import check_suite_out

    # before the background is prepared, which can take minutes; --depths fills OUT/depth-D
    if out is not None and depths:
        check_output_dir(out, "--out")
    elif out is not None:
        check_suite_out(out)
    if official:
        if out is None:
            raise BabilabError("--official needs --out")
        if depths:
            raise BabilabError("--depths builds suites; it does not apply to --official")
        suite = load_official([x.strip() for x in (lengths or "0k").split(",")],
                              babi.parse_tasks(tasks or "qa1-qa5"), out, official_source)
    else:
        given = {"tasks": tasks, "lengths": lengths, "samples": samples, "corpus": corpus,
                 "tokenizer": tokenizer, "placement": placement, "split": split, "seed": seed,
                 "reserve_tokens": reserve_tokens}
        values = read_yaml(config) if config else {}
        values.update({k: v for k, v in given.items() if v is not None})
        try:
            cfg = GenerateConfig(**values)
        except ValueError as e:
            raise config_error(e) from None
        if depths:
            from .suite.build import generate_depth_suites, parse_depths

            for each in generate_depth_suites(cfg, parse_depths(depths), out):
                echo_suite(each)
            typer.echo("evaluate each into one run (babilab eval --suite SUITE ... --run RUN); "
                       "babilab report RUN gives accuracy by depth x length")
            return
        suite = generate_suite(cfg, out)
    echo_suite(suite)


def echo_suite(suite) -> None:
    """What `generate` built: background, samples per cell, fingerprint and path."""
    bg = suite.info.get("background")
    if bg:
        other = "train" if bg["split"] == "test" else "test"
        disjoint = (f"books disjoint from the {other} split" if bg.get("disjoint_splits")
                    else f"the corpus is too small to keep its {other} books apart")
        typer.echo(f"background: {bg['corpus']} {bg['split']} split, {bg['n_books']} books, "
                   f"{bg['n_tokens']:,} {bg['tokenizer']} tokens ({disjoint})")
    for key, cell in suite.info["cells"].items():
        dropped = f", {cell['dropped']} dropped (facts do not fit)" if cell.get("dropped") else ""
        typer.echo(f"{key}: {cell['samples']} samples{dropped}")
    from .suite.build import background_report

    lines, warnings = background_report(suite.info)  # per length: how often text repeats
    for line in lines:
        typer.echo(line)
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(f"suite {suite.fingerprint[:12]} at {suite.path}")


EXIT_FAILED_PREDICTIONS = 3  # `eval` finished, but some predictions are stored as failed
EVAL_EXIT_CODES = (f"Exit code 0: every prediction is stored; {EXIT_FAILED_PREDICTIONS}: some are "
                   "stored as failed (server errors, timeouts, malformed replies) and running the "
                   "same command again asks just those; 2: a usage or configuration error.")


@app.command("eval", epilog=EVAL_EXIT_CODES)
def eval_(
    suite: Annotated[Path | None, typer.Option(help="a suite folder made by `babilab generate`")] = None,
    model: Annotated[str | None, typer.Option(help="oracle | heuristic:last-place | hf:ID_DIR_OR_GGUF | "
                                                   "hf:smollm2 | openai:MODEL | rag:READER (e.g. "
                                                   "rag:hf:smollm2) | rmt:TRAINED_DIR")] = None,
    run: Annotated[Path | None, typer.Option(
        "--run", "--run-dir",  # torchrun takes `--run` for its own --run-path; --run-dir passes
        help="run folder; re-running skips finished predictions")] = None,
    config: Annotated[Path | None, typer.Option(
        help="a run file (YAML): suite, run, models with their options, prompts, filters; "
             "the options given here override it")] = None,
    model_arg: Annotated[list[str] | None, typer.Option(
        help="an answerer option as KEY=VALUE (VALUE read as YAML), e.g. max_new_tokens=32; "
             "repeat for several")] = None,
    prompt: Annotated[list[str] | None, typer.Option(
        help="prompt configuration name(s), e.g. instruction_yes_examples_yes_post_prompt_yes_"
             "chat_template_yes_system_prompt_no; repeat for several")] = None,
    system_prompt: Annotated[str | None, typer.Option(help="system message text")] = None,
    prompts: Annotated[Path | None, typer.Option(
        "--prompts", help="prompt texts from a file instead of babilab's own: YAML (per task: "
                          "instruction, examples, post_prompt, template), a BABILong prompt "
                          ".json, or a folder of them")] = None,
    tasks: Annotated[str | None, typer.Option(help="only these tasks, e.g. qa1-qa5")] = None,
    lengths: Annotated[str | None, typer.Option(help="only these lengths, e.g. 0k,4k")] = None,
    batch_size: Annotated[int | None, typer.Option(help="samples per answerer call and per "
                                                         "commit [8]")] = None,
    max_new_tokens: Annotated[int | None, typer.Option(help="tokens to generate (default 20)")] = None,
    base_url: Annotated[str | None, typer.Option(help="openai: e.g. http://127.0.0.1:8000/v1")] = None,
    api_mode: Annotated[str | None, typer.Option(help="openai: chat or completions")] = None,
    timeout: Annotated[float | None, typer.Option(help="openai: seconds a reply may take [120]")] = None,
    retries: Annotated[int | None, typer.Option(help="openai: retries of a failed request [4]")] = None,
    concurrency: Annotated[int | None, typer.Option(help="openai: requests in flight [4]")] = None,
    truncate: Annotated[str | None, typer.Option(help="hf: 'left' to cut over-long prompts")] = None,
    dtype: Annotated[str | None, typer.Option(
        help="hf, memory models: auto (default: bfloat16 where the hardware has it, else "
             "float32), bfloat16, float16, float32")] = None,
    device: Annotated[str | None, typer.Option(
        help="hf: auto (default: this process's GPU when there is one, else the CPU), cpu, "
             "cuda or cuda:N")] = None,
    rag_chunk: Annotated[str | None, typer.Option(help="rag: sentence (default) or tokens:N")] = None,
    rag_k: Annotated[int | None, typer.Option(help="rag: chunks retrieved (default 5)")] = None,
    rag_order: Annotated[str | None, typer.Option(help="rag: similarity (default) or doc")] = None,
    rag_embedder: Annotated[str | None, typer.Option(
        help="rag: sentence-transformers folder or cached hub id [all-MiniLM-L6-v2]")] = None,
    rag_index: Annotated[str | None, typer.Option(help="rag: flat (exact, default), hnsw or ivf")] = None,
    mode: Annotated[str | None, typer.Option(help="scoring mode for the printed summary: "
                                                  "babilong or strict [babilong]")] = None,
) -> None:
    """Answer every sample of a suite with a model (or each model of --config); predictions
    go to the run store, the resolved settings to RUN/eval_config.yaml."""
    from .runs import score_run
    from .runs.eval_config import cli_model_options, resolve_eval_config, run_eval_config

    options = cli_model_options({
        "--max-new-tokens": ("max_new_tokens", max_new_tokens), "--base-url": ("base_url", base_url),
        "--api-mode": ("mode", api_mode), "--timeout": ("timeout_s", timeout),
        "--retries": ("retries", retries), "--concurrency": ("concurrency", concurrency),
        "--truncate": ("truncate", truncate), "--dtype": ("dtype", dtype),
        "--device": ("device", device),
        "--rag-chunk": ("chunk", rag_chunk), "--rag-k": ("k", rag_k),
        "--rag-order": ("order", rag_order), "--rag-embedder": ("embedder", rag_embedder),
        "--rag-index": ("index", rag_index)}, model_arg or [])
    overrides = {"suite": str(suite) if suite else None, "run": str(run) if run else None,
                 "prompts": prompt, "system_prompt": system_prompt,
                 "prompts_file": str(prompts) if prompts else None, "tasks": tasks,
                 "lengths": lengths, "batch_size": batch_size, "mode": mode}
    cfg = resolve_eval_config(config, overrides, model, options)
    summaries = run_eval_config(cfg, f"{config}: " if config else "")
    from .hardware import launched_processes

    if launched_processes().rank > 0:  # under torchrun or accelerate launch, 0 reports the job
        return
    for summary in summaries:
        typer.echo(f"{summary.model}: {summary.new} new predictions, {summary.skipped} already "
                   f"stored, {summary.failed} failed -> {summary.run_dir}")
    print_summary(score_run(cfg.run, cfg.mode))
    failed = [s for s in summaries if s.failed]
    if failed:
        typer.echo(f"babilab: {sum(s.failed for s in failed)} predictions failed (e.g. "
                   f"{failed[0].first_error}); run the same command again to retry them", err=True)
        raise typer.Exit(EXIT_FAILED_PREDICTIONS)


EFFECTIVE_HELP = ("when a length counts as handled, for the effective context length: "
                  "relative:F (accuracy at least F times the task's 0k accuracy, or its "
                  "shortest length's) or absolute:F (at least F, e.g. absolute:0.5 for 50%)")


def effective_rule(text: str):
    from .scoring import EffectiveRule

    return EffectiveRule.parse(text)


@app.command()
def rescore(
    run: Annotated[Path, typer.Argument(help="a run folder")],
    mode: Annotated[str, typer.Option(help="babilong (the official metric) or strict")] = "babilong",
    effective_threshold: Annotated[str, typer.Option(help=EFFECTIVE_HELP)] = "relative:0.85",
    out: Annotated[Path | None, typer.Option(help="folder for the scores and summary files "
                                                  "(default RUN; the run is only read)")] = None,
) -> None:
    """Score stored predictions again, without running any model."""
    from .runs import score_run

    folder = out or run
    print_summary(score_run(run, mode, effective_rule(effective_threshold), folder))
    typer.echo(f"wrote {folder / f'scores_{mode}.csv'} and {folder / f'summary_{mode}.json'}")


@app.command()
def report(
    run: Annotated[Path, typer.Argument(help="a run folder")],
    mode: Annotated[str, typer.Option(help="babilong or strict")] = "babilong",
    out: Annotated[Path | None, typer.Option(help="output folder (default RUN/report)")] = None,
    effective_threshold: Annotated[str, typer.Option(help=EFFECTIVE_HELP)] = "relative:0.85",
    min_samples: Annotated[int, typer.Option(min=0, help="mark cells with fewer samples than "
                                                         "this (0: mark none)")] = 20,
) -> None:
    """Heatmaps, tables and one HTML page from a run's predictions (a leaderboard of all its
    models first, then one section per model); prints the summary."""
    from .outputs import check_output_dir, staged_dir
    from .report import build_report
    from .runs import RunStore
    from .runs.results import check_mode

    check_mode(mode)
    rule = effective_rule(effective_threshold)
    out = out or run / "report"
    check_output_dir(out, "--out")
    RunStore(run, create=False).close()  # a run, readable, before any folder is made
    with staged_dir(out) as tmp:  # the files appear together, or not at all
        index = out / build_report(run, mode, tmp, rule, min_samples).name
    print_summary(json.loads((out / f"summary_{mode}.json").read_text()))
    typer.echo(f"report: {index}")


@app.command()
def export(
    run: Annotated[Path, typer.Argument(help="a run folder")],
    out: Annotated[Path, typer.Option(help="folder for <model>/<task>_<length>_<config>.csv")],
) -> None:
    """Write predictions in BABILong's layout, for leaderboard submissions."""
    from .runs import export_babilong

    typer.echo(f"wrote {len(export_babilong(run, out))} files under {out}")


@app.command("export-suite")
def export_suite(
    suite: Annotated[Path, typer.Argument(help="a suite folder (from babilab generate)")],
    out: Annotated[Path, typer.Option(help="new or empty folder for the hub layout")],
    license: Annotated[str, typer.Option(help="license id for the dataset card")] = "apache-2.0",
) -> None:
    """Write a suite in RMT-team/babilong's hub layout: load_dataset(OUT, "4k")["qa1"]."""
    from .suite.hub import export_hub

    typer.echo(f"wrote {export_hub(suite, out, license)}; load it: "
               f"datasets.load_dataset(\"{out}\", LENGTH)[TASK]")


@app.command("push")
def push(
    suite: Annotated[Path, typer.Argument(help="a suite folder (from babilab generate)")],
    repo_id: Annotated[str, typer.Argument(help="dataset repo on the Hugging Face hub: OWNER/NAME")],
    public: Annotated[bool, typer.Option("--public", help="make a new repo public (default: "
                                                          "private)")] = False,
    license: Annotated[str, typer.Option(help="license id for the dataset card")] = "apache-2.0",
    stage_only: Annotated[Path | None, typer.Option(
        help="write the exact files that would be uploaded to this new folder and stop: no "
             "token, no network")] = None,
) -> None:
    """Upload a suite to the hub in RMT-team/babilong's layout (token: HF_TOKEN or `hf auth
    login`; never stored or printed): load_dataset(REPO_ID, "4k")["qa1"]."""
    from .suite.push import push_suite, stage_push, staged_files

    if stage_only is not None:
        folder = stage_push(suite, stage_only, repo_id, license)
        for name, size in staged_files(folder):
            typer.echo(f"{size:>12,}  {name}")
        typer.echo(f"staged in {folder}; nothing uploaded (the upload needs a token and the network)")
        return
    url = push_suite(suite, repo_id, private=not public, license=license)
    typer.echo(f"uploaded to {url}; load it: datasets.load_dataset(\"{repo_id}\", LENGTH)[TASK]")


@app.command("export-lm-eval")
def export_lm_eval(
    suite: Annotated[Path, typer.Argument(help="a suite folder (from babilab generate)")],
    out: Annotated[Path, typer.Option(help="new or empty folder for the task YAMLs and the data")],
) -> None:
    """Write lm-evaluation-harness tasks (lm-eval's babilong tasks on this suite):
    lm_eval --model hf --model_args pretrained=MODEL --include_path OUT --tasks GROUP."""
    from .suite.lmeval import export_lm_eval as export

    groups = export(suite, out)
    typer.echo(f"wrote lm-eval tasks to {out} (groups {', '.join(groups)}; tag babilab for all); "
               f"run: lm_eval --model hf --model_args pretrained=MODEL --include_path {out} "
               f"--tasks {groups[0]}")


@app.command("import")
def import_(
    pred_dir: Annotated[Path, typer.Argument(help="BABILong predictions: a folder of "
                                                  "<org>/<model>/<task>_<length>_<config>.csv, "
                                                  "or one model's folder")],
    run: Annotated[Path, typer.Option(help="run folder; importing the same files again adds nothing")],
) -> None:
    """Store published BABILong predictions in a run, as that model's predictions."""
    from .runs import import_babilong

    for s in import_babilong(pred_dir, run):
        typer.echo(f"{s.label}: {s.new} new predictions, {s.skipped} already stored, from "
                   f"{s.files} files -> {run}")
    typer.echo(f"score them: babilab rescore {run} (or babilab report {run})")


@app.command("train")
def train_(
    recipe: Annotated[Path, typer.Argument(help="a training recipe (YAML), e.g. recipes/cpu_smoke.yaml")],
    resume: Annotated[bool, typer.Option("--resume", help="continue the run in out_dir from its "
                                                          "last checkpoint")] = False,
    out_dir: Annotated[str | None, typer.Option(help="where the run goes (instead of the "
                                                     "recipe's out_dir)")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override a recipe value: "
                                                   "KEY=VALUE, e.g. lr=1e-4 or stages.0.steps=5")] = None,
    stop_after: Annotated[float | None, typer.Option(
        min=0, help="minutes: stop at the next step after this, with a checkpoint, to continue "
                    "later with --resume")] = None,
) -> None:
    """Train a memory model (or a plain backbone) through a curriculum of lengths."""
    import logging

    from .outputs import check_output_dir
    from .train import load_recipe, train

    cfg = load_recipe(recipe, set_ or [], {"out_dir": out_dir} if out_dir else None)
    check_output_dir(Path(cfg.out_dir), "out_dir")  # before any weights load
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    result = train(cfg, resume=resume, stop_after_s=None if stop_after is None else 60 * stop_after)
    if not result.finished:
        typer.echo(f"stopped after {stop_after:g} minutes with a checkpoint; continue: "
                   f"babilab train {result.out_dir / 'config.json'} --resume")
        return
    for s in result.stages:
        typer.echo(f"stage {s['stage']} ({s['segments']} segments): {s['steps']} steps, stopped "
                   f"by {s['stopped']}, best validation accuracy {s['best_accuracy']:.3f} at "
                   f"step {s['best_step']}")
    typer.echo(f"model: {result.model_dir}\nevaluate it: babilab eval --suite SUITE "
               f"{result.eval_args} --run RUN")


def print_summary(summary: dict) -> None:
    """Per model: accuracy per task and length, each task's effective context length, and the
    qa1-qa5 row as the leaderboard prints it, and where the supporting facts' depths are
    known, accuracy with them in the first 25% vs the rest; then the effective-length rule."""
    from .scoring import EffectiveRule, effective_label

    for model, s in summary["models"].items():
        lengths = s["lengths"]
        typer.echo(f"\n{model} ({summary['mode']} metric, best prompt configuration per task)")
        typer.echo("task   " + "".join(f"{n:>8}" for n in lengths) + f"{'effective':>11}")
        for task in s["tasks"]:
            cells = [s["cells"].get(f"{task}/{n}") for n in lengths]
            effective = effective_label(s["effective_length"][task], at_least=">=")
            typer.echo(f"{task:<7}" + "".join(f"{c['accuracy']:>8.1f}" if c else f"{'':>8}"
                                               for c in cells) + f"{effective:>11}")
        if any(v is not None for v in s["leaderboard"].values()):
            typer.echo("qa1-5  " + "".join(f"{'' if v is None else v:>8}"
                                           for v in s["leaderboard"].values())
                       + "  (leaderboard rounding)")
        if any((s.get("depth") or {}).get("early_vs_rest", {}).values()):
            from .runs.depth import early_vs_rest_line

            typer.echo(early_vs_rest_line(s["depth"]))
    if summary["models"]:
        rule = EffectiveRule.parse(summary["effective_rule"]["rule"])
        typer.echo("\n" + rule.describe(at_least=">="))


class typer_progress:
    """A tqdm bar on stderr that stays quiet when stderr is not a terminal."""

    def __init__(self, total: int, desc: str):
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=desc, unit="task", disable=not sys.stderr.isatty())

    def __enter__(self):
        return self.bar

    def __exit__(self, *exc):
        self.bar.close()


EXIT_STOPPED = 130  # Ctrl-C or SIGTERM, as a shell reports an interrupt
KEPT_WHEN_STOPPED = {  # what a command stopped midway leaves, and how to go on
    "eval": "the predictions stored so far are kept; the same command continues from them",
    "train": "the checkpoints written so far are kept; continue with the same command and "
             "--resume",
    "import": "each model's predictions are stored whole or not at all; the same command "
              "finishes the import",
}
KEPT_OTHERWISE = "nothing half-written is left; run the same command again"


class StopSignals:
    """While a command runs, SIGTERM (`kill`, a scheduler taking the machine back) stops it
    like Ctrl-C, so what Ctrl-C keeps is kept (a memory model's read in progress); either
    signal is remembered, for the line that says the command was stopped."""

    def __init__(self):
        self.received: str | None = None
        self.previous: dict[int, object] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():  # signals need the main one
            for signum in (signal.SIGINT, signal.SIGTERM):
                self.previous[signum] = signal.signal(signum, self.stop)
        return self

    def stop(self, signum, frame) -> None:
        self.received = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        raise KeyboardInterrupt

    def __exit__(self, *exc) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def line(self, argv: list[str]) -> str:
        words = [a for a in argv if not a.startswith("-")][:2]
        name = " ".join(words) if words[:1] == ["babi"] else "".join(words[:1])
        how = f"by {self.received}" if self.received else "(interrupted)"
        return f"babilab: {name or 'babilab'} stopped {how}; {KEPT_WHEN_STOPPED.get(name, KEPT_OTHERWISE)}"


def main(argv: list[str] | None = None) -> int:
    """Run one command line; every failure is one line on stderr and a non-zero exit code."""
    argv = sys.argv[1:] if argv is None else argv
    command = typer.main.get_command(app)
    with StopSignals() as signals:
        try:
            code = command.main(args=argv, prog_name="babilab", standalone_mode=False)
        except typer.Exit as e:
            code = e.exit_code
        except (typer.Abort, KeyboardInterrupt):
            code = EXIT_STOPPED
        except typer.TyperException as e:  # usage errors: bad option, bad value, missing argument
            return error_line(e.format_message())
        except BabilabError as e:
            return error_line(str(e))
        except OSError as e:  # a disk that filled up, a folder made read-only mid-run
            from .outputs import os_error_line

            return error_line(os_error_line(e))
        except Exception as e:  # a bug: still one line, the traceback on request
            if os.environ.get("BABILAB_TRACEBACK"):
                raise
            first = str(e).splitlines()[0] if str(e) else ""
            return error_line(f"internal error ({type(e).__name__}: {first}); please report it "
                              "with the command line (BABILAB_TRACEBACK=1 shows where)", code=1)
    if code == EXIT_STOPPED:  # typer turns KeyboardInterrupt into this exit code, silently
        print(signals.line(argv), file=sys.stderr)
    return code if isinstance(code, int) else 0


def error_line(message: str, code: int = 2) -> int:
    print(f"babilab: error: {' '.join(message.split())}", file=sys.stderr)  # one line, always
    return code


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()

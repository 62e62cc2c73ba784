"""Verbs on a run: answer a suite into it (`eval`), score it again (`rescore`), report it,
export its predictions in BABILong's layout."""

# No `from __future__ import annotations`: typer reads every verb's annotations each time
# `babilab` runs, and string annotations cost it an eval each (30 ms of a 0.5 s command).

import json
from pathlib import Path
from typing import Annotated

import typer

from .app import app

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
    from ..runs import score_run
    from ..runs.eval_config import cli_model_options, resolve_eval_config, run_eval_config

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
    from ..hardware import launched_processes

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
    from ..scoring import EffectiveRule

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
    from ..runs import score_run

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
    from ..outputs import check_output_dir, staged_dir
    from ..report import build_report
    from ..runs import RunStore
    from ..runs.results import check_mode

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
    from ..runs import export_babilong

    typer.echo(f"wrote {len(export_babilong(run, out))} files under {out}")



def print_summary(summary: dict) -> None:
    """Per model: accuracy per task and length, each task's effective context length, and the
    qa1-qa5 row as the leaderboard prints it, and where the supporting facts' depths are
    known, accuracy with them in the first 25% vs the rest; then the effective-length rule."""
    from ..scoring import EffectiveRule, effective_label

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
            from ..runs.depth import early_vs_rest_line

            typer.echo(early_vs_rest_line(s["depth"]))
    if summary["models"]:
        rule = EffectiveRule.parse(summary["effective_rule"]["rule"])
        typer.echo("\n" + rule.describe(at_least=">="))

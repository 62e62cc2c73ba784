"""End-to-end runs on a tiny backbone: every architecture trains and exports a model that
`babilab eval` loads; model selection, LoRA, top layers; bad input fails at start-up."""

import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from babilab import cli
from babilab.babi import take_qas
from babilab.memory import load_memory_model
from babilab.models.base import Request, load_answerer
from babilab.models.memory import stream_segments
from babilab.prompts import PromptConfig
from babilab.train import train
from babilab.train.checkpoint import TRAINABLE_FILE, find_checkpoint
from babilab.train.config import make_config
from babilab.train.data import SampleMaker, collate, haystack_tokenizer
from babilab.train.loop import architecture_config, build_model
from babilab.train.plain import PlainLM

from .train_fixtures import SEGMENT, recipe

MEMORY_OPTIONS = {"rmt": {"num_mem_tokens": 4},
                  "rmt_r": {"num_write_mem_tokens": 4, "num_read_mem_tokens": 6, "dropout": 0.0},
                  "armt": {"num_mem_tokens": 4, "d_mem": 4, "nu": 2},
                  "plain": {}}


def records(out: Path, kind: str) -> list[dict]:
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


@pytest.mark.parametrize("arch", list(MEMORY_OPTIONS))
def test_each_architecture_learns_and_exports_an_evaluable_model(arch, tmp_path, corpus, backbone):
    values = recipe(tmp_path, backbone, corpus, architecture=arch, memory=MEMORY_OPTIONS[arch],
                    stages=[{"segments": 1, "steps": 6}], eval_interval=3, lr=1e-2)
    result = train(values)
    valid = records(result.out_dir, "valid")
    assert valid[-1]["loss"] < valid[0]["loss"]  # answer-token loss falls
    assert result.stages[0]["stopped"] == "steps" and result.stages[0]["steps"] == 6
    assert result.model_dir.resolve() == (result.out_dir / "stage0-seg1" / "model").resolve()
    # the documented path: babilab eval --model rmt:DIR (plain: hf:DIR with the bare prompt)
    spec = result.eval_args.split()[1]
    answerer = load_answerer(spec, dtype="float32")
    qa = take_qas("qa1", "test", 1)[0]
    config = PromptConfig.from_name(result.eval_args.split()[3]) if arch == "plain" else PromptConfig()
    [answer] = answerer.answer([Request("0", "qa1", " ".join(qa.facts), qa.question)], config)
    assert not answer.over_window and answer.error is None


def tiny_setup(tmp_path, corpus, backbone, arch):
    cfg = make_config(recipe(tmp_path, backbone, corpus, architecture=arch,
                             memory=MEMORY_OPTIONS[arch]))
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    torch.manual_seed(0)
    model = build_model(cfg, AutoModelForCausalLM.from_pretrained(backbone), architecture_config(cfg))
    from babilab.haystack import prepare_background

    bg = prepare_background(f"dir:{corpus}", haystack_tokenizer(tokenizer, "tiny"), split="train",
                            cache_dir=tmp_path / "cache")
    maker = SampleMaker(tokenizer, bg, layout="plain" if arch == "plain" else "memory",
                        segment_size=SEGMENT, tasks=["qa1"], seed=0, eos_id=tokenizer.eos_token_id)
    return model.eval(), maker


@pytest.mark.parametrize("arch", ["rmt", "rmt_r", "armt"])
def test_validation_scores_what_greedy_decoding_would_answer(arch, tmp_path, corpus, backbone):
    """Teacher-forced argmax at the first answer position == the first token the answerer's
    decoding produces (stream_segments: context segments, then a read-only question)."""
    model, maker = tiny_setup(tmp_path, corpus, backbone, arch)
    samples = [maker.valid_sample(i, segments) for i, segments in enumerate((1, 2, 2, 3))]
    with torch.no_grad():
        batch = collate(samples)
        out = model(batch.input_ids, batch.attention_mask, batch.labels)
        keep = batch.labels[:, 1:] != -100
        first = torch.cumsum(keep.int(), 1)[keep] == 1  # (N,) each row's first scored position
        forced = out.logits.argmax(-1)[first]
        contexts = [s.input_ids[:s.n_context_tokens] for s in samples]
        questions = [s.input_ids[s.n_context_tokens:int((s.labels != -100).argmax())]
                     for s in samples]
        steps = stream_segments(contexts, questions, SEGMENT, model.config.align)
        generated = model.generate(steps, max_new_tokens=1, eos_token_id=[]).tokens[:, 0]
    assert forced.tolist() == generated.tolist()


def test_plain_loss_is_the_backbone_loss_on_answer_tokens(tmp_path, corpus, backbone):
    model, maker = tiny_setup(tmp_path, corpus, backbone, "plain")
    batch = collate([maker.valid_sample(i, 1) for i in range(3)])
    with torch.no_grad():
        ours = model(batch.input_ids, batch.attention_mask, batch.labels).loss
        reference = model.backbone(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                                   labels=batch.labels).loss  # full logits, HF's own shift
    assert torch.allclose(ours, reference, atol=1e-5)
    assert isinstance(model, PlainLM)


def test_model_selection_keeps_the_best_and_stops_early(tmp_path, corpus, backbone, monkeypatch):
    """Scripted validation accuracies: the stage stops on patience and ends with the weights
    of its best evaluation, which equal a run stopped right there."""
    from babilab.train import loop

    def scripted(accuracies):
        it = iter(accuracies)
        return lambda *args, **kw: (next(it), 1.0)

    base = dict(stages=[{"segments": 1, "steps": 6}], eval_interval=1, checkpoint_interval=100)
    monkeypatch.setattr(loop, "evaluate", scripted([0.0, 0.5, 0.3, 0.2]))
    long = train(recipe(tmp_path / "a", backbone, corpus, patience=2, **base))
    assert long.stages[0] | {"model": None} == {
        "stage": 0, "segments": 1, "steps": 3, "stopped": "patience", "best_accuracy": 0.5,
        "best_loss": 1.0, "best_step": 1, "model": None}
    monkeypatch.setattr(loop, "evaluate", scripted([0.0, 1.0]))
    short = train(recipe(tmp_path / "b", backbone, corpus, target_accuracy=1.0, **base))
    assert short.stages[0]["stopped"] == "target" and short.stages[0]["steps"] == 1
    weights = [load_file(find_checkpoint(r.out_dir / "checkpoints").path / "trainable.safetensors")
               for r in (long, short)]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


@pytest.mark.parametrize("arch", ["rmt", "armt"])
def test_lora_exports_its_trained_parts_alone_and_they_compute_the_trained_model(
        arch, tmp_path, corpus, backbone):
    values = recipe(tmp_path, backbone, corpus, architecture=arch, memory=MEMORY_OPTIONS[arch],
                    trainable="lora", lora_r=2, lr=1e-2, stages=[{"segments": 1, "steps": 2}])
    result = train(values)
    best = load_file(result.out_dir / "stage0-seg1" / "best.safetensors")
    assert best and all("lora_" in k or not k.startswith("backbone.") for k in best)
    assert any("lora_" in k for k in best) and "memory" in best
    # the export holds the memory parameters and the adapters, not a copy of the backbone
    exported_files = {p.name for p in result.model_dir.iterdir()}
    assert {"memory.safetensors", "adapters.safetensors"} <= exported_files
    assert "backbone" not in exported_files
    # folded into a fresh backbone, they compute what the trained model computes
    model, maker = tiny_setup(tmp_path, corpus, backbone, arch)
    cfg = make_config(values)
    torch.manual_seed(0)
    trained = build_model(cfg, AutoModelForCausalLM.from_pretrained(backbone),
                          architecture_config(cfg)).eval()
    trained.load_state_dict(best, strict=False)
    exported = load_memory_model(result.model_dir,
                                 AutoModelForCausalLM.from_pretrained(backbone)).eval()
    assert not any("lora" in n for n, _ in exported.named_parameters())
    batch = collate([maker.valid_sample(i, 2) for i in range(2)])
    with torch.no_grad():
        a = trained(batch.input_ids, batch.attention_mask, batch.labels).logits
        b = exported(batch.input_ids, batch.attention_mask, batch.labels).logits
    assert torch.allclose(a, b, atol=1e-4)
    # the documented path finds the backbone the recipe named, without being told
    answerer = load_answerer(f"memory:{result.model_dir}", dtype="float32")
    qa = take_qas("qa1", "test", 1)[0]
    [answer] = answerer.answer([Request("0", "qa1", " ".join(qa.facts), qa.question)],
                               PromptConfig())
    assert answer.error is None


def test_top_layers_train_with_the_memory(tmp_path, corpus, backbone):
    result = train(recipe(tmp_path, backbone, corpus, trainable="top:1",
                          stages=[{"segments": 1, "steps": 1}]))
    names = set(load_file(result.out_dir / "stage0-seg1" / "best.safetensors"))
    assert "memory" in names and "backbone.transformer.ln_f.weight" in names
    assert any(n.startswith("backbone.transformer.h.1.") for n in names)
    assert not any(n.startswith(("backbone.transformer.h.0.", "backbone.transformer.wte")) for n in names)


def run_cli(args, capsys) -> tuple[int, list[str]]:
    code = cli.main(["train", *map(str, args)])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("babilab:")]
    return code, err


@pytest.mark.parametrize("change, message", [
    ({"lr_typo": 1e-4}, "lr_typo: unknown key"),
    ({"batch_size": 6, "micro_batch_size": 4}, "batch_size 6 is not a multiple of micro_batch_size 4"),
    ({"backbone": "/nonexistent/model"}, "/nonexistent/model: not a model folder"),
    ({"memory": {"num_mem_tokens": 4, "memory_size": 3}}, "memory: unknown option 'memory_size'"),
    ({"segment_size": 250}, "exceeds the backbone's window"),
    ({"architecture": "plain", "memory": {}, "stages": [{"segments": 6, "steps": 1}]},
     "plain backbone's window is 256"),
    ({"corpus": "dir:/nonexistent"}, "no such folder"),
])
def test_bad_input_fails_at_start_up_with_one_line(change, message, tmp_path, corpus, backbone, capsys):
    values = {**recipe(tmp_path, backbone, corpus), **change}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(values))
    code, err = run_cli([path], capsys)
    assert code == 2 and len(err) == 1 and message in err[0], err
    assert not (tmp_path / "run" / "checkpoints").exists()  # nothing was trained


def test_a_diverging_run_skips_steps_that_are_not_finite_then_stops(tmp_path, corpus, backbone,
                                                                      capsys):
    values = recipe(tmp_path, backbone, corpus, stages=[{"segments": 1, "steps": 8}], lr=1e12,
                    eval_interval=100, log_interval=100, checkpoint_interval=2)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(values))
    code, err = run_cli([path], capsys)
    assert code == 2 and len(err) == 1, err
    assert "training diverged" in err[0] and "up to stage0-seg1 step 4" in err[0]
    assert "lr below 1e+12" in err[0]
    logged = records(tmp_path / "run", "train")  # step 1 always, skipped steps always
    assert [(r["step"], r.get("skipped")) for r in logged] == \
        [(1, None), (2, "not finite"), (3, "not finite"), (4, "not finite")]
    # the checkpoint taken before step 4 holds the weights of step 1: finite, not NaN
    tensors = find_checkpoint(tmp_path / "run" / "checkpoints").tensors(TRAINABLE_FILE)
    assert tensors and all(bool(torch.isfinite(t).all()) for t in tensors.values())


def test_resume_rules(tmp_path, corpus, backbone, capsys):
    values = recipe(tmp_path, backbone, corpus, stages=[{"segments": 1, "steps": 2}])
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(values))
    code, err = run_cli([path, "--resume"], capsys)
    assert code == 2 and "holds no checkpoint" in err[0]
    assert cli.main(["train", str(path)]) == 0
    capsys.readouterr()
    code, err = run_cli([path], capsys)
    assert code == 2 and "already holds a run" in err[0] and "--resume" in err[0]
    code, err = run_cli([path, "--resume", "--set", "lr=0.1"], capsys)
    assert code == 2 and "the recipe differs from the run" in err[0] and "lr: 0.1 != 0.003" in err[0]
    # a finished run resumes to nothing more; infrastructure values may change
    assert cli.main(["train", str(path), "--resume", "--set", "threads=2"]) == 0
    assert "evaluate it: babilab eval --suite SUITE --model rmt:" in capsys.readouterr().out


def test_training_never_asks_for_test_stories_or_test_books(tmp_path, corpus, backbone, monkeypatch):
    from babilab.train import data, loop

    stories, backgrounds = set(), set()
    real_story_at, real_prepare = data.story_at, loop.prepare_background

    def story_at(task, split, seed, index):
        stories.add(split)
        return real_story_at(task, split, seed, index)

    def prepare_background(corpus, tokenizer, **kw):
        backgrounds.add(kw["split"])
        return real_prepare(corpus, tokenizer, **kw)

    monkeypatch.setattr(data, "story_at", story_at)
    monkeypatch.setattr(loop, "prepare_background", prepare_background)
    train(recipe(tmp_path, backbone, corpus, stages=[{"segments": 1, "steps": 1},
                                                     {"segments": 2, "steps": 1}]))
    assert stories == {"train", "valid"} and backgrounds == {"train"}


def test_bfloat16_autocast_and_gradient_checkpointing(tmp_path, corpus, backbone):
    """Checkpointing recomputes the same activations: the same step as without it. bfloat16
    runs in the same process after float32 runs (no process-wide precision state)."""
    base = dict(stages=[{"segments": 2, "steps": 2}], eval_interval=2)
    plain = train(recipe(tmp_path / "a", backbone, corpus, **base))
    ckpt = train(recipe(tmp_path / "b", backbone, corpus, gradient_checkpointing=True, **base))
    for a, b in zip(records(plain.out_dir, "train"), records(ckpt.out_dir, "train"), strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)
    half = train(recipe(tmp_path / "c", backbone, corpus, dtype="bfloat16", **base))
    losses = [r["loss"] for r in records(half.out_dir, "train")]
    first = records(plain.out_dir, "train")[0]["loss"]
    assert losses[0] == pytest.approx(first, rel=0.05) and losses[-1] < losses[0]


def test_memory_only_training_exports_without_the_backbone(tmp_path, corpus, backbone):
    result = train(recipe(tmp_path, backbone, corpus, trainable="memory",
                          stages=[{"segments": 1, "steps": 1}]))
    assert set(load_file(result.out_dir / "stage0-seg1" / "best.safetensors")) == {"memory"}
    assert not (result.model_dir / "backbone").exists()  # the backbone folder is referenced
    exported = load_memory_model(result.model_dir, AutoModelForCausalLM.from_pretrained(backbone))
    assert exported.config.num_mem_tokens == 4

"""Long runs in pieces: a run stopped by its time limit and resumed, again and again, ends
exactly where an uninterrupted run ends; a new run can start from shipped trained parts."""

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from babilab.errors import BabilabError
from babilab.memory import load_memory_model
from babilab.train import train
from babilab.train.checkpoint import find_checkpoint
from babilab.train.config import make_config
from babilab.train.loop import architecture_config, build_model, init_from

from .train_fixtures import recipe

LORA_ARMT = dict(architecture="armt", memory={"num_mem_tokens": 4, "d_mem": 4, "nu": 2},
                 trainable="lora", lora_r=2)


def final_weights(out):
    return load_file(find_checkpoint(out / "checkpoints").path / "trainable.safetensors")


def test_a_run_in_time_limited_pieces_equals_an_uninterrupted_run(tmp_path, corpus, backbone):
    values = recipe(tmp_path, backbone, corpus, stages=[{"segments": 1, "steps": 3},
                                                        {"segments": 2, "steps": 4}])
    reference = train({**values, "out_dir": str(tmp_path / "reference")})
    values["out_dir"] = str(tmp_path / "pieces")
    result, pieces = train(values, stop_after_s=0.0), 1
    while not result.finished:  # a limit of 0 s: every piece runs exactly one step
        result, pieces = train(values, resume=True, stop_after_s=0.0), pieces + 1
    assert pieces == 7  # one optimiser step a piece
    a, b = final_weights(reference.out_dir), final_weights(result.out_dir)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    lines = [json.loads(x) for x in (result.out_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["global_step"] for r in lines if r["kind"] == "train"] == list(range(1, 8))


def test_a_new_run_starts_from_saved_trained_parts(tmp_path, corpus, backbone):
    first = train(recipe(tmp_path, backbone, corpus, **LORA_ARMT, lr=1e-2,
                         stages=[{"segments": 1, "steps": 2}], out_dir=str(tmp_path / "a")))
    shipped = tmp_path / "shipped"
    load_memory_model(first.model_dir, AutoModelForCausalLM.from_pretrained(backbone))
    trained = load_file(first.out_dir / "stage0-seg1" / "best.safetensors")
    # the shipped form: the export's parts in bfloat16
    cfg = make_config(recipe(tmp_path, backbone, corpus, **LORA_ARMT, init=str(first.model_dir)))
    torch.manual_seed(1)  # another initialisation than the first run's
    model = build_model(cfg, AutoModelForCausalLM.from_pretrained(backbone),
                        architecture_config(cfg))
    model.load_state_dict(trained, strict=False)
    model.save(shipped, backbone_source=str(backbone), dtype=torch.bfloat16)
    assert all(t.dtype == torch.bfloat16 for t in load_file(shipped / "adapters.safetensors").values())

    torch.manual_seed(2)
    fresh = build_model(cfg, AutoModelForCausalLM.from_pretrained(backbone),
                        architecture_config(cfg))
    init_from(fresh, cfg.model_copy(update={"init": str(shipped)}))
    state = fresh.state_dict()
    for name, value in trained.items():  # every trained tensor, to bfloat16's precision
        assert torch.equal(state[name], value.to(torch.bfloat16).float()), name

    # and a run with `init` trains on from there
    run = train(recipe(tmp_path, backbone, corpus, **LORA_ARMT, init=str(shipped),
                       stages=[{"segments": 2, "steps": 1}], out_dir=str(tmp_path / "b")))
    assert run.finished and run.stages[0]["steps"] == 1


def test_init_from_parts_of_another_recipe_is_one_clear_error(tmp_path, corpus, backbone):
    first = train(recipe(tmp_path, backbone, corpus, **LORA_ARMT,
                         stages=[{"segments": 1, "steps": 1}], out_dir=str(tmp_path / "a")))
    other = {**LORA_ARMT, "memory": {"num_mem_tokens": 4, "d_mem": 8, "nu": 2}}
    with pytest.raises(BabilabError, match="other memory settings .*d_mem"):
        train(recipe(tmp_path, backbone, corpus, **other, init=str(first.model_dir),
                     out_dir=str(tmp_path / "b")))
    with pytest.raises(BabilabError, match="holds LoRA adapters, the recipe trains all"):
        train(recipe(tmp_path, backbone, corpus, **{**LORA_ARMT, "trainable": "all"},
                     init=str(first.model_dir), out_dir=str(tmp_path / "c")))
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()

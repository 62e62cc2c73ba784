"""Checkpoints: exact round trips of weights, AdamW state and RNG; LATEST always names a
complete folder; nothing is unpickled."""

import torch
from torch import nn

from babilab.train.checkpoint import (
    LATEST,
    OPTIMIZER_FILE,
    RNG_FILE,
    TRAINABLE_FILE,
    find_checkpoint,
    load_optimizer,
    load_trainable,
    rng_state,
    save_checkpoint,
    set_rng_state,
)


def toy() -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    model[0].bias.requires_grad_(False)  # a frozen parameter is not saved
    params = [p for p in model.parameters() if p.requires_grad]
    return model, torch.optim.AdamW(params, lr=1e-2)


def steps(model, optimizer, n):
    for i in range(n):
        loss = model(torch.full((3, 4), float(i))).pow(2).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()


def test_resumed_training_is_bit_exact(tmp_path):
    model, optimizer = toy()
    steps(model, optimizer, 3)
    path = save_checkpoint(tmp_path, model, optimizer, {k: v[None] for k, v in rng_state().items()},
                           {"global_step": 3}, {"lr": 1e-2})
    reference = torch.randn(5)  # the RNG stream after the checkpoint
    steps(model, optimizer, 2)

    restored, opt2 = toy()
    ckpt = find_checkpoint(tmp_path)
    assert ckpt.path == path and ckpt.state["global_step"] == 3 and ckpt.config == {"lr": 1e-2}
    load_trainable(restored, ckpt.tensors(TRAINABLE_FILE), "test")
    load_optimizer(opt2, ckpt.tensors(OPTIMIZER_FILE))
    set_rng_state({k: v[0] for k, v in ckpt.tensors(RNG_FILE).items()})
    assert torch.equal(torch.randn(5), reference)
    steps(restored, opt2, 2)
    for a, b in zip(model.parameters(), restored.parameters(), strict=True):
        assert torch.equal(a, b)
    assert "0.bias" not in ckpt.tensors(TRAINABLE_FILE)


def test_latest_names_a_complete_folder_and_old_ones_go(tmp_path):
    model, optimizer = toy()
    rng = {k: v[None] for k, v in rng_state().items()}
    (tmp_path / ".step-00000009.tmp-abc").mkdir()  # what a kill during a save leaves
    first = save_checkpoint(tmp_path, model, optimizer, rng, {"global_step": 2}, {})
    second = save_checkpoint(tmp_path, model, optimizer, rng, {"global_step": 4}, {})
    assert (tmp_path / LATEST).read_text().strip() == second.name
    assert sorted(p.name for p in tmp_path.iterdir()) == [LATEST, second.name]
    assert not first.exists()
    # saving the same step again (a resumed run) never overwrites the folder LATEST names
    third = save_checkpoint(tmp_path, model, optimizer, rng, {"global_step": 4}, {})
    assert third.name == "step-00000004-1" and find_checkpoint(tmp_path).path == third


def test_no_checkpoint_yet(tmp_path):
    assert find_checkpoint(tmp_path / "nothing") is None

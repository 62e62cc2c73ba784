"""The campaign script's bookkeeping on a tiny run: a piece stops and the next continues it,
the best stage ships as bfloat16 parts, and a fresh machine restarts from the shipped parts
at the right stage."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from .train_fixtures import recipe

SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "qa1_memory_campaign.py"


@pytest.fixture(scope="module")
def campaign():
    spec = importlib.util.spec_from_file_location("qa1_memory_campaign", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pieces_ship_and_a_restart_from_shipped_parts(campaign, tmp_path, corpus, backbone,
                                                      monkeypatch):
    monkeypatch.setattr(campaign, "RESULTS", tmp_path / "results")  # metrics copies
    values = recipe(tmp_path, backbone, corpus, architecture="armt", trainable="lora", lora_r=2,
                    memory={"num_mem_tokens": 4, "d_mem": 4, "nu": 2},
                    stages=[{"segments": 1, "steps": 2}, {"segments": 2, "steps": 3},
                            {"segments": 3, "steps": 2}])
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(values))
    run_dir, ship = tmp_path / "runs" / "qa1", tmp_path / "models" / "qa1-memory"

    hours = 1e-9  # every piece stops after its first step
    for _ in range(3):  # stage 0's two steps, then the first step of stage 1
        campaign.run_piece(path, run_dir, ship, hours, threads=1)
    stages = campaign.stage_summaries(run_dir)
    assert stages[0]["finished"] == "steps" and stages[1]["finished"] is None
    assert stages[1]["steps"] == 1

    campaign.ship_best(run_dir, ship)
    shipped = json.loads((ship / campaign.TRAINING_FILE).read_text())
    assert (shipped["stage"], shipped["segments"], shipped["stopped"]) == (1, 2, None)
    assert {p.name for p in ship.iterdir()} == {"memory.safetensors", "adapters.safetensors",
                                                "memory_config.json", "training.json"}
    assert all(t.dtype == torch.bfloat16 for t in load_file(ship / "adapters.safetensors").values())

    # a fresh machine: no run folder; the next piece starts from the shipped stage 1
    cfg, first = campaign.piece_config(path, tmp_path / "runs" / "fresh", ship, threads=1)
    assert first == 1 and cfg.init == str(ship)
    assert [s.segments for s in cfg.stages] == [2, 3]
    campaign.run_piece(path, tmp_path / "runs" / "fresh", ship, 1.0, threads=1)  # to the end
    fresh = campaign.stage_summaries(tmp_path / "runs" / "fresh")
    assert [s["segments"] for s in fresh.values()] == [2, 3]
    assert all(s["finished"] == "steps" for s in fresh.values())
    assert len(list((tmp_path / "results").glob("*.metrics.jsonl"))) == 2  # one per run
    said = campaign.status(tmp_path / "runs" / "fresh", ship)
    assert f"started from {ship} (recipe stage 1, 2 segments" in said
    assert "stage 0 (2 segments)" in said and "stage 1 (3 segments)" in said
    assert "shipped:" in said


def test_the_baseline_replays_every_sample_of_the_memory_models_lineage(campaign, tmp_path, corpus,
                                                                        backbone, monkeypatch):
    """A memory run continued from shipped parts counts its stages from 0 again, so its samples
    repeat stage indices; the no-memory baseline must still draw exactly the samples the
    shipped model's history and the continued run drew, no more, no fewer."""
    from babilab.train.data import SampleMaker

    drawn = {"memory": [], "plain": []}
    original = SampleMaker.train_sample

    def recording(self, *key):
        drawn[self.layout].append(key)
        return original(self, *key)

    monkeypatch.setattr(SampleMaker, "train_sample", recording)
    monkeypatch.setattr(campaign, "RESULTS", tmp_path / "results")
    values = recipe(tmp_path, backbone, corpus, architecture="armt", trainable="lora", lora_r=2,
                    memory={"num_mem_tokens": 4, "d_mem": 4, "nu": 2}, log_interval=5,
                    stages=[{"segments": 1, "steps": 2}, {"segments": 2, "steps": 2},
                            {"segments": 3, "steps": 1}])
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(values))
    first, ship, fresh = tmp_path / "runs" / "first", tmp_path / "ship", tmp_path / "runs" / "fresh"
    for _ in range(3):  # stage 0's two steps, then the first step of stage 1
        campaign.run_piece(path, first, ship, 1e-9, threads=1)
    assert campaign.stage_summaries(first)[1]["steps"] == 1  # from the checkpoint, not the log
    campaign.ship_best(first, ship)
    campaign.run_piece(path, fresh, ship, 1.0, threads=1)  # recipe stages 1 and 2, as 0 and 1

    lineage = campaign.lineage(fresh)
    assert [(st["segments"], st["steps"], st["data_stage"]) for st in lineage] == [
        (1, 2, 0), (2, 1, 1), (2, 2, 0), (3, 1, 1)]
    assert ("lineage (what --baseline replays): 1 seg 2 x 4, 2 seg 1 x 4, 2 seg 2 x 4, "
            "3 seg 1 x 4 = 24 samples") in campaign.status(fresh, ship)
    campaign.run_baseline(fresh, 1.0, threads=1)
    assert len(drawn["plain"]) == 4 * 6  # batch 4, six steps
    assert sorted(drawn["plain"]) == sorted(drawn["memory"])

    # parts whose samples were drawn with other settings cannot be replayed by one recipe
    shipped = json.loads((ship / campaign.TRAINING_FILE).read_text())
    shipped["recipe"]["questions_per_sample"] += 1
    (ship / campaign.TRAINING_FILE).write_text(json.dumps(shipped))
    with pytest.raises(SystemExit, match="questions_per_sample"):
        campaign.lineage(fresh)

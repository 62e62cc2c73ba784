"""RUN/run.json keeps every model's entry when several evals write it at once."""

import json
import multiprocessing

from babilab.runs.evaluate import RUN_FILE, note_model

WRITERS, ROUNDS = 4, 25


def write_notes(run_dir, writer):
    for k in range(ROUNDS):
        note_model(run_dir, f"model-{writer}-{k}", {"spec": f"w{writer}", "round": k})


def test_concurrent_writers_lose_no_entry(tmp_path):
    context = multiprocessing.get_context("spawn")  # real processes, each its own file handles
    procs = [context.Process(target=write_notes, args=(tmp_path, w)) for w in range(WRITERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    models = json.loads((tmp_path / RUN_FILE).read_text())["models"]
    assert len(models) == WRITERS * ROUNDS
    assert all(models[f"model-{w}-{k}"]["round"] == k for w in range(WRITERS) for k in range(ROUNDS))

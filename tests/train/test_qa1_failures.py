"""experiments/qa1_failures.py names what each wrong qa1 answer is."""

import importlib.util
from pathlib import Path
from types import SimpleNamespace

SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "qa1_failures.py"


def answer_kind(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPT.parent))  # it imports the campaign script beside it
    spec = importlib.util.spec_from_file_location("qa1_failures", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.answer_kind


def test_each_kind_of_wrong_answer(monkeypatch):
    kind = answer_kind(monkeypatch)
    story = SimpleNamespace(question="Where is Mary?", target="office", facts=(
        "Mary went to the kitchen.", "John moved to the garden.", "Mary journeyed to the office."))
    assert kind(story, "office", True) == "right"
    assert kind(story, "office", False) == "wrong: the right place, then a wrong token"
    assert kind(story, "kitchen", False) == "wrong: an earlier place of the person"
    assert kind(story, "garden", False) == "wrong: another person's place"
    assert kind(story, "hallway", False) == "wrong: a place not in the story"

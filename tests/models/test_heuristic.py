import re

import pytest

from babilab.babi.generate import take_qas
from babilab.babi.tasks.common import MOVE_RE
from babilab.errors import BabilabError
from babilab.models import Request, load_answerer
from babilab.models.heuristic import actor_places, last_place
from babilab.prompts import PromptConfig

FACTS = ["Mary went to the garden.", "John moved to the office.", "Mary journeyed to the kitchen.",
         "Daniel travelled to the hallway."]


def request(question: str, facts=FACTS, task="qa1", sample_id="s0") -> Request:
    return Request(sample_id=sample_id, task=task, context=" ".join(facts), question=question,
                   facts=tuple(facts))


def test_last_place_is_the_latest_move_of_anyone():
    assert last_place(FACTS, "Where is Mary?") == "hallway"


def test_actor_places_guesses_among_the_asked_actors_places_the_same_way_each_time():
    guesses = {actor_places(FACTS, "Where is Mary?", f"s{i}") for i in range(50)}
    assert guesses == {"garden", "kitchen"}
    assert actor_places(FACTS, "Where is Mary?", "s7") == actor_places(FACTS, "Where is Mary?", "s7")
    assert actor_places(FACTS, "Where is John?", "s7") == "office"


def test_heuristics_sit_between_chance_and_the_oracle_on_generated_qa1():
    qas = take_qas("qa1", "test", 1000)
    last = sum(last_place(list(q.facts), q.question) == q.answer for q in qas) / len(qas)
    guess = sum(actor_places(list(q.facts), q.question, str(i)) == q.answer
                for i, q in enumerate(qas)) / len(qas)
    expected = 0.0  # the guess's expected accuracy: 1 / (distinct places of the asked actor)
    for q in qas:
        actor = re.match(r"Where is (\w+)\?", q.question)[1]
        expected += 1 / len({m["location"] for f in q.facts
                             if (m := MOVE_RE.match(f)) and m["actor"] == actor})
    # last-place is right whenever the asked actor made the latest move, and wrong on some
    latest = [q for q in qas if q.supporting == (len(q.facts) - 1,)]
    assert all(last_place(list(q.facts), q.question) == q.answer for q in latest)
    assert len(latest) / len(qas) <= last < 1
    assert guess == pytest.approx(expected / len(qas), abs=0.05)


def test_answerer_through_the_registry_answers_in_order_and_refuses_other_tasks():
    answerer = load_answerer("heuristic:last-place")
    answers = answerer.answer([request("Where is Mary?"), request("Where is the milk?", task="qa2"),
                               request("Where is John?")], PromptConfig())
    assert [a.output for a in answers] == ["hallway", "", "hallway"]
    assert "qa1 only" in answers[1].error
    assert answerer.fingerprint != load_answerer("heuristic:actor-places").fingerprint


def test_unknown_rule_is_one_clear_error():
    with pytest.raises(BabilabError, match="heuristic:last-place or heuristic:actor-places"):
        load_answerer("heuristic:first-place")

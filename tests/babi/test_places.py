"""qa9-qa14, the "where is an actor" tasks: solver known answers, generator invariants.

Known answers use the spec's own examples (as in the released data) and the tricky cases
it names: negation of an unknown place, "or the" wording, pronoun gender, non-chronological
time phrases and the "immediately preceding slot" rule.
"""

import random
import re

import pytest

from babilab.babi.check import check_stories
from babilab.babi.generate import generate_stories
from babilab.babi.story import Question, Statement, Story
from babilab.babi.tasks import Solution, load_task
from babilab.babi.vocab import GENDER, TIMES

TASKS = ("qa9", "qa10", "qa11", "qa12", "qa13", "qa14")


def solve(task: str, lines: list[str], question: str):
    return load_task(task).solve(list(enumerate(lines, start=1)), question)


def questions(story: Story):
    """(question, statements above it as (id, text)) for each question of a story."""
    for qid in story.question_ids():
        q = story.lines[qid - 1]
        assert isinstance(q, Question)
        yield q, story.statements_before(qid)


@pytest.fixture(scope="module")
def generated():
    """About 2,000 generated train questions per task."""
    return {task: generate_stories(task, "train", 2000, seed=3) for task in TASKS}


# --- solver known answers ---


def test_qa9_negation_moves_and_is_in():
    lines = ["Mary is no longer in the bedroom.", "Daniel moved to the hallway.",
             "Sandra is in the garden.", "John is not in the office."]
    assert solve("qa9", lines, "Is Mary in the bedroom?").answer == "no"
    assert solve("qa9", lines, "Is Mary in the bedroom?").supports == ((1,),)
    assert solve("qa9", lines, "Is Daniel in the hallway?").answer == "yes"
    assert solve("qa9", lines, "Is Sandra in the kitchen?").answer == "no"
    assert solve("qa9", lines, "Is Sandra in the kitchen?").supports == ((3,),)
    assert solve("qa9", lines, "Is John in the office?").answer == "no"
    # Only the latest fact counts: a move after a negation decides.
    later = [*lines, "John went back to the office."]
    assert solve("qa9", later, "Is John in the office?") == Solution("yes", ((5,),))


def test_qa9_undecidable_questions_raise():
    lines = ["Mary is not in the bedroom."]
    with pytest.raises(ValueError, match="undecidable"):
        solve("qa9", lines, "Is Mary in the kitchen?")
    with pytest.raises(ValueError):
        solve("qa9", lines, "Is John in the kitchen?")
    with pytest.raises(ValueError):
        solve("qa9", ["Mary is nowhere."], "Is Mary in the kitchen?")


def test_qa10_either_gives_maybe_or_no():
    lines = ["Julie travelled to the kitchen.", "Bill is either in the school or the office."]
    assert solve("qa10", lines, "Is Bill in the office?").answer == "maybe"
    assert solve("qa10", lines, "Is Bill in the school?").answer == "maybe"
    assert solve("qa10", lines, "Is Bill in the park?").answer == "no"
    assert solve("qa10", lines, "Is Bill in the park?").supports == ((2,),)
    assert solve("qa10", lines, "Is Julie in the kitchen?").answer == "yes"
    later = [*lines, "Bill is in the park."]
    assert solve("qa10", later, "Is Bill in the office?").answer == "no"
    assert solve("qa10", later, "Is Bill in the park?").supports == ((3,),)


def test_qa10_released_wording_is_or_the():
    story = generate_stories("qa10", "train", 200, seed=5)
    either = [line.text for s in story for line in s.lines
              if isinstance(line, Statement) and "either" in line.text]
    assert either, "no either statements generated"
    for text in either:
        m = re.fullmatch(r"[A-Z][a-z]+ is either in the ([a-z]+) or the ([a-z]+)\.", text)
        assert m and m[1] != m[2], text


def test_qa11_pronoun_refers_to_previous_sentence():
    lines = ["Mary went back to the bathroom.", "Following that she went back to the kitchen.",
             "Daniel journeyed to the office.", "Then he moved to the garden."]
    got = solve("qa11", lines, "Where is Mary?")
    assert (got.answer, got.supports) == ("kitchen", ((1, 2),))
    got = solve("qa11", lines, "Where is Daniel?")
    assert (got.answer, got.supports) == ("garden", ((3, 4),))
    # Afterwards / After that are released adverbs; a name sentence alone supports itself.
    more = [*lines, "Mary went to the hallway.", "Afterwards she travelled to the office.",
            "John moved to the bedroom."]
    assert solve("qa11", more, "Where is Mary?").supports == ((5, 6),)
    assert solve("qa11", more, "Where is John?").supports == ((7,),)


def test_qa11_rejects_wrong_gender_and_dangling_pronoun():
    with pytest.raises(ValueError, match="cannot refer"):
        solve("qa11", ["Mary went to the garden.", "Then he moved to the office."],
              "Where is Mary?")
    with pytest.raises(ValueError, match="antecedent"):
        solve("qa11", ["Then she moved to the office."], "Where is Mary?")


def test_qa12_latest_statement_naming_the_actor():
    lines = ["Mary and Daniel travelled to the bathroom.", "John and Daniel went to the office.",
             "Sandra and John moved to the garden."]
    assert solve("qa12", lines, "Where is Daniel?").supports == ((2,),)
    assert solve("qa12", lines, "Where is Daniel?").answer == "office"
    assert solve("qa12", lines, "Where is Mary?").answer == "bathroom"
    assert solve("qa12", lines, "Where is John?").supports == ((3,),)  # second name also counts
    with pytest.raises(ValueError):
        solve("qa12", lines[:1], "Where is Sandra?")


def test_qa13_they_refers_to_both_actors():
    lines = ["Daniel and Sandra journeyed to the office.", "Then they went to the garden.",
             "Sandra and John travelled to the kitchen.", "After that they moved to the hallway."]
    assert solve("qa13", lines, "Where is Daniel?").answer == "garden"
    assert solve("qa13", lines, "Where is Daniel?").supports == ((1, 2),)
    got = solve("qa13", lines, "Where is Sandra?")
    assert (got.answer, got.supports) == ("hallway", ((3, 4),))
    with pytest.raises(ValueError):
        solve("qa13", ["Then they went to the garden."], "Where is John?")


def test_qa14_time_phrase_first_or_last_and_not_chronological():
    lines = ["Mary moved to the school this evening.",  # told before her earlier slots
             "Julie went to the office yesterday.",
             "This afternoon Mary journeyed to the park.",
             "Yesterday Mary went to the school.",
             "This morning Bill journeyed to the office.",
             "This morning Mary went back to the cinema."]
    got = solve("qa14", lines, "Where was Mary before the school?")
    # The school of yesterday has no slot before it; the school of this evening does.
    assert (got.answer, got.supports) == ("park", ((1, 3),))
    got = solve("qa14", lines, "Where was Mary before the cinema?")
    assert (got.answer, got.supports) == ("school", ((6, 4),))
    got = solve("qa14", lines, "Where was Mary before the park?")
    assert (got.answer, got.supports) == ("cinema", ((3, 6),))


def test_qa14_a_place_visited_twice_means_the_latest_visit():
    # The released rule: the latest visit by time slot, whichever was told first.
    lines = ["Julie went to the school this morning.",
             "Yesterday Julie went to the office.",
             "This afternoon Julie travelled to the cinema.",
             "This evening Julie went to the school."]
    got = solve("qa14", lines[:2], "Where was Julie before the school?")
    assert (got.answer, got.supports) == ("office", ((1, 2),))
    got = solve("qa14", lines, "Where was Julie before the school?")
    assert (got.answer, got.supports) == ("cinema", ((4, 3),))
    # Only the latest visit counts: its slot before must be told, even if an earlier one's is.
    with pytest.raises(ValueError, match="not told"):
        solve("qa14", [*lines[:2], lines[3]], "Where was Julie before the school?")


def test_qa14_needs_the_immediately_preceding_slot():
    # Yesterday and this afternoon are told, this morning is not: no answer yet.
    lines = ["Yesterday Fred went to the park.", "Fred moved to the school this afternoon."]
    with pytest.raises(ValueError, match="not told"):
        solve("qa14", lines, "Where was Fred before the school?")
    with pytest.raises(ValueError, match="two moves"):
        solve("qa14", ["Yesterday Fred went to the park.", "Fred went to the school yesterday."],
              "Where was Fred before the school?")
    with pytest.raises(ValueError, match="not a qa14 statement"):
        solve("qa14", ["Fred went to the park."], "Where was Fred before the park?")
    with pytest.raises(ValueError, match="not a qa14 statement"):
        solve("qa14", ["yesterday Fred went to the park."], "Where was Fred before the park?")


# --- generated stories ---


@pytest.mark.parametrize("task", TASKS)
def test_generated_stories_check_clean(task, generated):
    checked, errors = check_stories(generated[task])
    assert checked == 2000
    assert errors == [], [str(e) for e in errors[:5]]


@pytest.mark.parametrize("task", TASKS)
def test_generation_is_deterministic(task):
    module = load_task(task)
    assert module.generate_story(random.Random(11)) == module.generate_story(random.Random(11))
    assert module.generate_story(random.Random(11)) != module.generate_story(random.Random(12))


@pytest.mark.parametrize("task", ("qa9", "qa10", "qa12"))
def test_single_support_is_the_actors_latest_fact(task, generated):
    for story in generated[task]:
        for q, before in questions(story):
            actor = q.text.split()[2 if task == "qa12" else 1].rstrip("?")
            about = [i for i, text in before if re.search(rf"\b{actor}\b", text)]
            assert q.supports == (about[-1],), (q, before)


@pytest.mark.parametrize("task", ("qa11", "qa13"))
def test_coreference_supports_are_antecedent_then_pronoun(task, generated):
    pronoun = r"(he|she)" if task == "qa11" else r"(they)"
    for story in generated[task]:
        for q, before in questions(story):
            named, referring = q.supports
            text = dict(before)
            assert referring == named + 1
            m = re.match(rf"^(After that|Afterwards|Following that|Then) {pronoun} ",
                         text[referring])
            assert m, text[referring]
            actor = q.text.removeprefix("Where is ").rstrip("?")
            assert re.search(rf"\b{actor}\b", text[named])
            if task == "qa11":
                assert m[2] == GENDER[actor]


def _slot(text: str) -> int:
    lowered = text.lower()
    return next(i for i, t in enumerate(TIMES) if t in lowered)


def test_qa14_supports_are_move_to_l_then_slot_before(generated):
    for story in generated["qa14"]:
        for q, before in questions(story):
            text = dict(before)
            to_l, to_answer = q.supports
            place = q.text.rsplit(" ", 1)[1].rstrip("?")
            assert f"the {place}" in text[to_l]
            assert f"the {q.answer}" in text[to_answer]
            assert _slot(text[to_l]) == _slot(text[to_answer]) + 1


def test_qa14_timelines_follow_the_rules(generated):
    """One move per actor and slot, a prefix of the slots, no stay in place, 10-14 lines."""
    solver = load_task("qa14")
    out_of_order = 0
    for story in generated["qa14"]:
        statements = [line.text for line in story.lines if isinstance(line, Statement)]
        if len(story.question_ids()) == 5:
            assert len(statements) in (10, 12, 14)
            assert story.question_ids()[0] == len(statements) - 8 + 1
        timelines: dict[str, dict[int, str]] = {}
        for text in statements:
            actor, place, slot = solver._parse(text)
            assert slot not in timelines.setdefault(actor, {}), text
            if any(s > slot for s in timelines[actor]):
                out_of_order += 1
            timelines[actor][slot] = place
        if len(story.question_ids()) == 5:
            for slots in timelines.values():
                assert sorted(slots) == list(range(len(slots)))
                assert all(slots[s] != slots[s - 1] for s in range(1, len(slots)))
    assert out_of_order > 0  # the spec: statements are not chronological


def test_qa9_negation_never_contradicts_a_known_place(generated):
    for story in generated["qa9"]:
        where: dict[str, str | None] = {}
        for line in story.lines:
            if not isinstance(line, Statement):
                continue
            words = line.text.rstrip(".").split()
            actor, place = words[0], words[-1]
            if " not in " in line.text or " no longer in " in line.text:
                assert where.get(actor) in (None, place), line.text
                where[actor] = None
            else:
                assert where.get(actor) != place, line.text  # moves go somewhere new
                where[actor] = place


def test_qa12_qa13_conjunctions_name_two_different_actors(generated):
    for task in ("qa12", "qa13"):
        for story in generated[task]:
            for line in story.lines:
                if isinstance(line, Statement) and " and " in line.text:
                    first, _, second = line.text.split()[:3]
                    assert first != second, line.text

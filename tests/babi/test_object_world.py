"""The object-world tasks qa2, qa3, qa5, qa6, qa7 and qa8 (as in the released data).

Known-answer tests of each solver on small hand-written stories (the spec's sentence forms,
its tricky cases), a 0-error solver check of generated stories, the support-order rules,
and the world's validity rules read back from the generated text.
"""

import random
import re
from collections import Counter

import pytest

from babilab.babi.check import check_stories
from babilab.babi.generate import generate_stories
from babilab.babi.story import Question, Statement
from babilab.babi.tasks import load_task
from babilab.babi.tasks._objects import (
    DROP_KIND,
    GET_KIND,
    GIVE_KIND,
    MOVE_KIND,
    holdings,
    parse_event,
    parse_events,
)

TASKS = ("qa2", "qa3", "qa5", "qa6", "qa7", "qa8")


def numbered(*texts: str) -> list[tuple[int, str]]:
    return list(enumerate(texts, start=1))


def solve(task: str, statements: list[tuple[int, str]], question: str):
    solution = load_task(task).solve(statements, question)
    return solution.answer, solution.supports


# --- the statement parser -------------------------------------------------------------------


@pytest.mark.parametrize("text, kind, actor, obj, other", [
    ("Mary went back to the kitchen.", MOVE_KIND, "Mary", None, "kitchen"),
    ("John travelled to the office.", MOVE_KIND, "John", None, "office"),
    ("Mary got the milk there.", GET_KIND, "Mary", "milk", None),
    ("Daniel picked up the apple.", GET_KIND, "Daniel", "apple", None),
    ("John put down the football.", DROP_KIND, "John", "football", None),
    ("Sandra left the milk there.", DROP_KIND, "Sandra", "milk", None),
    ("Fred discarded the apple.", DROP_KIND, "Fred", "apple", None),
    ("Jeff handed the football to Bill.", GIVE_KIND, "Jeff", "football", "Bill"),
    ("Mary passed the milk to Fred.", GIVE_KIND, "Mary", "milk", "Fred"),
])
def test_parse_event_reads_every_verb_form(text, kind, actor, obj, other):
    e = parse_event(7, text)
    assert (e.line_id, e.kind, e.actor, e.obj) == (7, kind, actor, obj)
    assert (e.location if kind == MOVE_KIND else e.receiver) == other


@pytest.mark.parametrize("text", [
    "Mary is in the kitchen.", "Mary went to the kitchen", "Mary gave the milk to Mary.",
    "Mary let go of the milk.",
])
def test_parse_event_rejects_other_text(text):
    with pytest.raises(ValueError):
        parse_event(1, text)


def test_holdings_keep_acquisition_order_and_reject_impossible_drops():
    events = parse_events(numbered(
        "Mary took the milk.", "Mary got the apple there.", "Mary passed the milk to John.",
        "John grabbed the football.", "John dropped the milk.", "Mary picked up the milk."))
    # Mary's milk is back, after her apple.
    assert holdings(events) == {"Mary": ["apple", "milk"], "John": ["football"]}
    with pytest.raises(ValueError, match="without holding"):
        holdings(parse_events(numbered("Mary dropped the milk.")))
    with pytest.raises(ValueError, match="while John holds it"):
        holdings(parse_events(numbered("John took the milk.", "Mary took the milk.")))


# --- known answers --------------------------------------------------------------------------

QA2_STORY = numbered(
    "Mary moved to the bathroom.",  # 1
    "Mary got the milk there.",  # 2: the get comes after her move
    "Sandra went to the garden.",  # 3
    "Mary journeyed to the office.",  # 4: the milk is now in the office
    "John went back to the hallway.",  # 5
    "John picked up the football there.",  # 6
    "John put down the football.",  # 7: dropped in the hallway
    "John travelled to the kitchen.",  # 8: John leaves; the football stays
)


def test_qa2_held_object_is_where_its_holder_went_last():
    assert solve("qa2", QA2_STORY, "Where is the milk?") == ("office", ((2, 4),))


def test_qa2_dropped_object_stays_where_it_was_dropped():
    # sup = [the drop, the dropper's last move *before* the drop], not John's later move.
    assert solve("qa2", QA2_STORY, "Where is the football?") == ("hallway", ((7, 5),))


def test_qa2_drop_there_and_regrab():
    story = QA2_STORY + [(9, "Sandra left the milk there.")]  # Sandra never held the milk
    with pytest.raises(ValueError, match="without holding"):
        solve("qa2", story, "Where is the milk?")
    story = QA2_STORY + [(9, "Mary left the milk there."), (10, "Sandra moved to the office."),
                         (11, "Sandra took the milk there."), (12, "Sandra went to the garden.")]
    assert solve("qa2", story, "Where is the milk?") == ("garden", ((11, 12),))


def test_qa2_unknown_location_is_an_error():
    with pytest.raises(ValueError):
        solve("qa2", numbered("Mary got the milk there."), "Where is the milk?")
    with pytest.raises(ValueError):
        solve("qa2", QA2_STORY, "Where is the apple?")


QA3_STORY = numbered(
    "Mary went to the office.",  # 1
    "Mary got the football.",  # 2
    "John moved to the garden.",  # 3
    "Mary went back to the kitchen.",  # 4: football office -> kitchen
    "Mary dropped the football there.",  # 5
    "Mary travelled to the garden.",  # 6: Mary moves on without it
    "Mary journeyed to the hallway.",  # 7
)


def test_qa3_before_is_where_the_object_was_not_where_its_holder_was():
    # Mary was last in the garden before the hallway, but the football stayed in the
    # kitchen; it came there from the office.
    assert solve("qa3", QA3_STORY, "Where was the football before the kitchen?") == (
        "office", ((5, 4, 1),))


def test_qa3_held_object_and_a_return_to_an_earlier_place():
    story = numbered(
        "Daniel moved to the bedroom.",  # 1
        "Daniel took the apple there.",  # 2
        "Daniel went to the office.",  # 3: bedroom -> office
        "Sandra went to the garden.",  # 4
        "Daniel went back to the bedroom.",  # 5: office -> bedroom
    )
    # The latest arrival in the bedroom came from the office; sup = [get, move in, move before].
    assert solve("qa3", story, "Where was the apple before the bedroom?") == (
        "office", ((2, 5, 3),))
    assert solve("qa3", story, "Where was the apple before the office?") == (
        "bedroom", ((2, 3, 1),))
    with pytest.raises(ValueError):  # the apple was never carried into the garden
        solve("qa3", story, "Where was the apple before the garden?")


def test_qa3_carried_from_an_untold_place_is_an_error():
    story = numbered("Sandra grabbed the milk.", "Sandra went to the garden.")
    with pytest.raises(ValueError, match="untold"):
        solve("qa3", story, "Where was the milk before the garden?")


QA5_STORY = numbered(
    "Fred went to the garden.",  # 1
    "Fred got the milk there.",  # 2
    "Jeff moved to the garden.",  # 3
    "Fred gave the milk to Jeff.",  # 4
    "Jeff handed the milk to Fred.",  # 5
    "Fred passed the milk to Jeff.",  # 6
    "Bill went back to the garden.",  # 7
    "Jeff picked up the apple there.",  # 8
    "Jeff handed the apple to Bill.",  # 9
)


@pytest.mark.parametrize("question, answer, sup", [
    ("What did Fred give to Jeff?", "milk", 6),  # the latest give from Fred to Jeff
    ("What did Jeff give to Fred?", "milk", 5),
    ("What did Jeff give to Bill?", "apple", 9),
    ("Who gave the milk?", "Fred", 6),
    ("Who gave the milk to Fred?", "Jeff", 5),
    ("Who received the milk?", "Jeff", 6),
    ("Who received the apple?", "Bill", 9),
    ("Who did Jeff give the milk to?", "Fred", 5),
    ("Who did Jeff give the apple to?", "Bill", 9),
])
def test_qa5_each_template_names_the_latest_give_that_fits(question, answer, sup):
    assert solve("qa5", QA5_STORY, question) == (answer, ((sup,),))


def test_qa5_prefers_a_give_whose_object_has_not_changed_hands_since():
    # As every released question: Bill's football went back, so the question means the apple.
    story = numbered("Bill handed the apple to Jeff.", "Bill passed the football to Jeff.",
                     "Jeff passed the football to Bill.")
    assert solve("qa5", story, "What did Bill give to Jeff?") == ("apple", ((1,),))
    # Both gives still current: ambiguous; the newer answers (the released label in 89 of
    # 109 such questions; the other 20 are the documented quirk).
    assert solve("qa5", story[:2], "What did Bill give to Jeff?") == ("football", ((2,),))


def test_qa5_no_fitting_give_is_an_error():
    with pytest.raises(ValueError):
        solve("qa5", QA5_STORY, "What did Bill give to Fred?")
    with pytest.raises(ValueError):
        solve("qa5", QA5_STORY, "Who gave the football?")


def test_qa6_yes_no_from_the_latest_move():
    story = numbered("John went to the kitchen.", "Mary grabbed the apple there.",
                     "John moved to the garden.", "Mary went back to the office.")
    assert solve("qa6", story, "Is John in the garden?") == ("yes", ((3,),))
    assert solve("qa6", story, "Is John in the kitchen?") == ("no", ((3,),))
    assert solve("qa6", story, "Is Mary in the office?") == ("yes", ((4,),))
    with pytest.raises(ValueError):
        solve("qa6", story, "Is Sandra in the office?")


QA7_STORY = numbered(
    "Daniel went to the garden.",  # 1
    "Daniel picked up the apple there.",  # 2
    "Sandra moved to the garden.",  # 3
    "Daniel got the milk there.",  # 4
    "Daniel gave the apple to Sandra.",  # 5
    "Sandra journeyed to the office.",  # 6
    "Daniel dropped the milk.",  # 7
    "John went to the garden.",  # 8
)


def test_qa7_counts_and_every_object_event_of_the_actor():
    assert solve("qa7", QA7_STORY, "How many objects is Daniel carrying?") == (
        "none", ((2, 4, 5, 7),))
    assert solve("qa7", QA7_STORY, "How many objects is Sandra carrying?") == ("one", ((5,),))
    story = QA7_STORY[:4]
    assert solve("qa7", story, "How many objects is Daniel carrying?") == ("two", ((2, 4),))
    with pytest.raises(ValueError):  # John never handled an object
        solve("qa7", QA7_STORY, "How many objects is John carrying?")


def test_qa8_lists_objects_in_first_handling_order():
    # As in the released data: an object keeps its place in the list from the first time
    # the actor handled it, and the supports come grouped by object in that order.
    story = numbered(
        "Mary took the milk.",  # 1
        "Mary went to the kitchen.",  # 2
        "Mary grabbed the football there.",  # 3
        "Mary discarded the milk there.",  # 4
        "Mary picked up the milk there.",  # 5: got again, still listed first
        "John went to the kitchen.",  # 6
    )
    assert solve("qa8", story, "What is Mary carrying?") == ("milk,football", ((1, 4, 5, 3),))
    assert solve("qa8", story[:3], "What is Mary carrying?") == ("milk,football", ((1, 3),))
    story += [(7, "Mary left the football."), (8, "Mary dropped the milk there.")]
    assert solve("qa8", story, "What is Mary carrying?") == ("nothing", ((1, 4, 5, 8, 3, 7),))


@pytest.mark.parametrize("task", TASKS)
def test_solvers_reject_foreign_questions_and_text(task):
    with pytest.raises(ValueError):
        solve(task, numbered("Mary went to the kitchen."), "What color is Lily?")
    with pytest.raises(ValueError):
        solve(task, numbered("The kitchen is north of the garden."), "Where is the milk?")


# --- generated stories ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated():
    cache = {}

    def get(task):
        if task not in cache:
            cache[task] = generate_stories(task, "train", 2000, seed=7)
        return cache[task]

    return get


@pytest.mark.parametrize("task", TASKS)
def test_generated_stories_pass_the_solver(task, generated):
    checked, errors = check_stories(generated(task))
    assert checked == 2000
    assert not errors, "\n".join(map(str, errors[:5]))


@pytest.mark.parametrize("task", TASKS)
def test_generation_is_deterministic(task):
    module = load_task(task)
    assert module.generate_story(random.Random(5)) == module.generate_story(random.Random(5))
    assert module.generate_story(random.Random(5)) != module.generate_story(random.Random(6))


def kinds_of(story, ids):
    return [parse_event(i, story.lines[i - 1].text).kind for i in ids]


def questions(stories):
    for story in stories:
        for line in story.lines:
            if isinstance(line, Question):
                yield story, line


def test_qa2_supports_are_the_object_fact_then_the_move(generated):
    orders = Counter()
    for story, q in questions(generated("qa2")):
        first, second = kinds_of(story, q.supports)
        assert second == MOVE_KIND and first in (GET_KIND, DROP_KIND)
        # held: the holder moved after the get; dropped: the move came before the drop
        assert (q.supports[0] < q.supports[1]) == (first == GET_KIND)
        orders[first] += 1
    assert 0.6 < orders[DROP_KIND] / sum(orders.values()) < 0.8  # released: 69% dropped


def test_qa3_supports_are_touch_then_two_descending_moves(generated):
    descending = total = 0
    for story, q in questions(generated("qa3")):
        assert kinds_of(story, q.supports) in ([GET_KIND, MOVE_KIND, MOVE_KIND],
                                               [DROP_KIND, MOVE_KIND, MOVE_KIND])
        assert q.supports[1] > q.supports[2]
        descending += q.supports[0] > q.supports[1]
        total += 1
    assert 0.7 < descending / total < 0.88  # released: 79% fully descending


@pytest.mark.parametrize("task", ["qa7", "qa8"])
def test_counting_supports_are_every_object_event_of_the_actor(task, generated):
    """qa7 lists them ascending; qa8 groups them by object, objects in the order the actor
    first handled them (each object's events ascending), as the released data does."""
    for story, q in questions(generated(task)):
        actor = re.search(r"is ([A-Z][a-z]+) carrying", q.text).group(1)
        qid = story.lines.index(q) + 1
        events = [e for e in parse_events(story.statements_before(qid))
                  if e.kind != MOVE_KIND and actor in (e.actor, e.receiver)]
        if task == "qa7":
            assert list(q.supports) == [e.line_id for e in events]
        else:
            objects = list(dict.fromkeys(e.obj for e in events))
            assert list(q.supports) == [e.line_id for o in objects for e in events if e.obj == o]


@pytest.mark.parametrize("task", ["qa2", "qa5", "qa6", "qa7", "qa8"])
def test_newest_support_is_at_most_four_statements_back(task, generated):
    for story, q in questions(generated(task)):
        qid = story.lines.index(q) + 1
        before = [i for i, _ in story.statements_before(qid)]
        assert before.index(max(q.supports)) >= len(before) - 5


@pytest.mark.parametrize("task", TASKS)
def test_generated_text_follows_the_world_rules(task, generated):
    """Read back from the text: moves change location, only holders drop or give, gives
    go between two actors the reader may not place apart, gets where the object lies,
    statements between questions come in pairs, and " there" follows the task's rules."""
    there = Counter()
    for story in generated(task):
        where, lies, run = {}, {}, 0
        events = []
        for line_id, line in enumerate(story.lines, start=1):
            if isinstance(line, Question):
                assert run % 2 == 0 and run > 0
                run = 0
                continue
            run += 1
            e = parse_event(line_id, line.text)
            events.append(e)
            holdings(events)  # raises on a drop or give of an object not held
            if e.kind == MOVE_KIND:
                assert where.get(e.actor) != e.location
                where[e.actor] = e.location
            elif e.kind == DROP_KIND:
                lies[e.obj] = where.get(e.actor)
            elif e.kind == GET_KIND:
                if lies.get(e.obj) and e.actor in where:
                    assert lies[e.obj] == where[e.actor]
                lies.pop(e.obj, None)
            elif e.kind == GIVE_KIND:
                assert task in ("qa5", "qa7")
                if e.actor in where and e.receiver in where:
                    assert where[e.actor] == where[e.receiver]
            if e.kind in (GET_KIND, DROP_KIND):
                there[e.kind, line.text.endswith(" there.")] += 1
    get_there = there[GET_KIND, True] / (there[GET_KIND, True] + there[GET_KIND, False])
    drop_there = there[DROP_KIND, True] / (there[DROP_KIND, True] + there[DROP_KIND, False])
    assert 0.1 < drop_there < 0.3  # about 20% everywhere
    if task == "qa3":
        assert 0.1 < get_there < 0.3  # 19%
    else:
        assert get_there == 1.0


def test_qa5_asks_about_a_recent_give_not_passed_on(generated):
    latest = 0
    for story, q in questions(generated("qa5")):
        (give,) = q.supports
        qid = story.lines.index(q) + 1
        events = parse_events(story.statements_before(qid))
        gives = [e for e in events if e.kind == GIVE_KIND]
        obj = next(e.obj for e in gives if e.line_id == give)
        assert not [e for e in gives if e.obj == obj and e.line_id > give]
        latest += gives[-1].line_id == give
    assert latest / 2000 > 0.95  # released: the most recent give 98.3% of the time


def test_statement_lines_are_plain_sentences(generated):
    for task in TASKS:
        for story in generated(task)[:50]:
            for line in story.lines:
                if isinstance(line, Statement):
                    assert re.fullmatch(r"[A-Z][a-z]+( [a-z]+)+( to [A-Z][a-z]+)?\.", line.text)

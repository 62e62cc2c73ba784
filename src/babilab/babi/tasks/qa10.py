"""qa10 indefinite-knowledge: yes, no or maybe, from moves and "either" facts (as in the released data).

Story: S S Q repeated five times, with actors Bill, Fred, Julie, Mary and the locations of
qa10/qa14. A statement is a move, `A is in the L.`, or `A is either in the L1 or the L2.`
(released wording: "or the", not "or in the"). Each question asks about the actor whose
latest fact sits k statements back (k from the released recency table). After a definite
fact the answer is yes or no; after an "either" fact it is maybe for one of the two places
and no for any other. The supporting id is that latest fact.
"""

from __future__ import annotations

import random
import re

from ..story import Story
from ..vocab import ACTORS_QA10, LOCATIONS_QA10, MOVE, sentence
from . import Solution
from ._places import IS_IN_RE, NAME, PLACE, VERB, latest_facts_k_back
from .common import StoryBuilder, pick_by_recency, weighted

KINDS = ("move", "is in", "either")
KIND_WEIGHTS = (50.0, 25.0, 25.0)  # released train shares
# Weights for "ask about the fact k statements back", fitted with tools/calibrate_recency.py to
# the released recency table: 45.2, 28.7, 14.0, 8.3, 3.8 %.
RECENCY = (25.6, 23.6, 21.7, 16.3, 12.8)
# Ask about the known place (yes) this often after a definite fact, and about one of the two
# places (maybe) this often after an "either" fact; otherwise about some other place (no).
# Fitted to the released answers: no 47.5%, yes 37.7%, maybe 14.7%.
P_YES = 0.5
P_MAYBE = 0.59


def generate_story(rng: random.Random) -> Story:
    story = StoryBuilder("qa10")
    known: dict[str, tuple[str, ...]] = {}  # actor -> their one place, or the two "either" places
    last_fact: dict[str, int] = {}
    actors_of: dict[int, tuple[str, ...]] = {}
    for _ in range(5):
        for _ in range(2):
            actor = rng.choice(ACTORS_QA10)
            kind = weighted(rng, KINDS, KIND_WEIGHTS)
            if kind == "either":
                # The actor went somewhere unseen; the reader is told two candidates.
                places = tuple(rng.sample(LOCATIONS_QA10, 2))
                text = sentence("{a} is either in the {l} or the {m}", a=actor, l=places[0],
                                m=places[1])
            else:
                # Like every move, a definite statement goes somewhere new.
                old = known.get(actor, ())
                places = (rng.choice([loc for loc in LOCATIONS_QA10 if (loc,) != old]),)
                template = rng.choice(MOVE) if kind == "move" else "{a} is in the {l}"
                text = sentence(template, a=actor, l=places[0])
            known[actor] = places
            line_id = story.say(text)
            last_fact[actor] = line_id
            actors_of[line_id] = (actor,)

        found = pick_by_recency(
            rng, RECENCY, lambda k: latest_facts_k_back(story, k, actors_of, last_fact))
        assert found is not None  # the last statement is always someone's latest fact
        actor = rng.choice(found)
        places = known[actor]
        if rng.random() < (P_YES if len(places) == 1 else P_MAYBE):
            location = rng.choice(places)
            answer = "yes" if len(places) == 1 else "maybe"
        else:
            location = rng.choice([loc for loc in LOCATIONS_QA10 if loc not in places])
            answer = "no"
        story.ask(f"Is {actor} in the {location}?", answer, [last_fact[actor]])
    return story.build()


# --- solver: re-reads the text; knows nothing of the generator ---

_MOVE_RE = re.compile(rf"^(?P<actor>{NAME}) {VERB} {PLACE}\.$")
_IS_IN_RE = re.compile(rf"^(?P<actor>{NAME}) is in {PLACE}\.$")
# Also accepts the rewrite's "or in the" so that its output reads too.
_EITHER_RE = re.compile(rf"^(?P<actor>{NAME}) is either in the (?P<first>[a-z]+) "
                        r"or (?:in )?the (?P<second>[a-z]+)\.$")


def solve(statements: list[tuple[int, str]], question: str) -> Solution:
    """The answer from the asked actor's latest fact: one place, or one of two."""
    q = IS_IN_RE.match(question)
    if not q:
        raise ValueError(f"not a qa10 question: {question!r}")
    for line_id, text in reversed(statements):
        if m := _MOVE_RE.match(text) or _IS_IN_RE.match(text):
            if m["actor"] == q["actor"]:
                answer = "yes" if m["location"] == q["location"] else "no"
                return Solution(answer, ((line_id,),))
        elif m := _EITHER_RE.match(text):
            if m["actor"] == q["actor"]:
                answer = "maybe" if q["location"] in (m["first"], m["second"]) else "no"
                return Solution(answer, ((line_id,),))
        else:
            raise ValueError(f"not a qa10 statement: {text!r}")
    raise ValueError(f"nothing is said about {q['actor']} before {question!r}")

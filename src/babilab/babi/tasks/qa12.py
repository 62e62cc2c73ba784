"""qa12 conjunction: where is an actor, from moves of two actors at once (as in the released data).

Story: S S Q repeated five times. Each statement is `A1 and A2 <move> to the L.` with two
different actors in random order, going to a place other than where either of them is.
Each question asks about an actor whose latest mention is the last statement (72%), one
back (24%) or two back (4%); that statement is the single supporting id.
"""

from __future__ import annotations

import random
import re

from ..story import Story
from ..vocab import ACTORS, LOCATIONS, MOVE, sentence
from . import Solution
from ._places import NAME, PLACE, VERB, WHERE_IS_RE, latest_facts_k_back
from .common import StoryBuilder, pick_by_recency

# Weights for "ask about an actor whose latest mention is k statements back", fitted with
# tools/calibrate_recency.py to the released shares: 72, 24, 4 %.
RECENCY = (63.1, 26.9, 10.0)


def generate_story(rng: random.Random) -> Story:
    story = StoryBuilder("qa12")
    where: dict[str, str] = {}
    last_fact: dict[str, int] = {}
    actors_of: dict[int, tuple[str, ...]] = {}
    for _ in range(5):
        for _ in range(2):
            pair = tuple(rng.sample(ACTORS, 2))  # random order of the two names
            location = rng.choice([loc for loc in LOCATIONS
                                   if loc != where.get(pair[0]) and loc != where.get(pair[1])])
            line_id = story.say(sentence(rng.choice(MOVE), a=f"{pair[0]} and {pair[1]}",
                                         l=location))
            for actor in pair:
                where[actor] = location
                last_fact[actor] = line_id
            actors_of[line_id] = pair

        found = pick_by_recency(
            rng, RECENCY, lambda k: latest_facts_k_back(story, k, actors_of, last_fact))
        assert found is not None  # the last statement is always its actors' latest
        actor = rng.choice(found)
        story.ask(f"Where is {actor}?", where[actor], [last_fact[actor]])
    return story.build()


# --- solver: re-reads the text; knows nothing of the generator ---

# "Mary and John went to the office." and, for robustness, a lone "Mary went to the office."
_MOVE_RE = re.compile(rf"^(?P<first>{NAME})(?: and (?P<second>{NAME}))? {VERB} {PLACE}\.$")


def solve(statements: list[tuple[int, str]], question: str) -> Solution:
    """The asked actor's latest place, from the latest statement naming them."""
    q = WHERE_IS_RE.match(question)
    if not q:
        raise ValueError(f"not a qa12 question: {question!r}")
    for line_id, text in reversed(statements):
        m = _MOVE_RE.match(text)
        if m is None:
            raise ValueError(f"not a qa12 statement: {text!r}")
        if q["actor"] in (m["first"], m["second"]):
            return Solution(m["location"], ((line_id,),))
    raise ValueError(f"{q['actor']} never moved before {question!r}")

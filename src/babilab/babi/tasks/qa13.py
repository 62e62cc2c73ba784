"""qa13 compound-coreference: where is an actor, through "they" (as in the released data).

Story: five pairs `A1 and A2 <move> to the L1.` + `<Adverb> they <move> to the L2.`, each
pair followed by a question. The two names come in random order, L1 is new for both actors
and L2 differs from L1. Each question asks about an actor of the latest pair (92%) or of
the pair before (8%), where that pair must be the actor's latest. Supporting ids: the
conjunction sentence, then the "they" sentence (ascending).
"""

from __future__ import annotations

import random
import re

from ..story import Story
from ..vocab import ACTORS, ADVERBS, LOCATIONS, MOVE, sentence
from . import Solution
from ._places import NAME, PLACE, VERB, WHERE_IS_RE, latest_facts_k_back
from .common import StoryBuilder, pick_by_recency

# Weights for "ask about the pair whose "they" sentence is k statements back", fitted with
# tools/calibrate_recency.py to the released shares: latest pair 92%, previous 8% (k = 0, 2;
# a conjunction sentence is never an actor's latest fact, so k = 1 never fits).
RECENCY = (88.0, 0.0, 12.0)


def generate_story(rng: random.Random) -> Story:
    story = StoryBuilder("qa13")
    where: dict[str, str] = {}
    last_fact: dict[str, int] = {}
    actors_of: dict[int, tuple[str, ...]] = {}
    pair_of: dict[str, tuple[int, int]] = {}  # actor -> ids of their latest pair of sentences
    for _ in range(5):
        group = tuple(rng.sample(ACTORS, 2))  # random order of the two names
        first = rng.choice([loc for loc in LOCATIONS
                            if loc != where.get(group[0]) and loc != where.get(group[1])])
        named = story.say(sentence(rng.choice(MOVE), a=f"{group[0]} and {group[1]}", l=first))
        second = rng.choice([loc for loc in LOCATIONS if loc != first])
        they = story.say(sentence(rng.choice(ADVERBS) + " " + rng.choice(MOVE), a="they",
                                  l=second))
        for actor in group:
            where[actor] = second
            last_fact[actor] = they
            pair_of[actor] = (named, they)
        actors_of[they] = group

        found = pick_by_recency(
            rng, RECENCY, lambda k: latest_facts_k_back(story, k, actors_of, last_fact))
        assert found is not None  # the last pair is always its actors' latest
        actor = rng.choice(found)
        story.ask(f"Where is {actor}?", where[actor], pair_of[actor])
    return story.build()


# --- solver: re-reads the text; knows nothing of the generator ---

_NAMED_RE = re.compile(rf"^(?P<first>{NAME})(?: and (?P<second>{NAME}))? {VERB} {PLACE}\.$")
_ADVERB = "(?:After that|Afterwards|Following that|Then)"
_THEY_RE = re.compile(rf"^{_ADVERB} they {VERB} {PLACE}\.$")


def solve(statements: list[tuple[int, str]], question: str) -> Solution:
    """Resolve each "they" to the previous sentence's actors, then take the latest place.

    Supports are [naming sentence, "they" sentence] when the place came through "they",
    else [naming sentence].
    """
    q = WHERE_IS_RE.match(question)
    if not q:
        raise ValueError(f"not a qa13 question: {question!r}")
    latest: dict[str, tuple[str, tuple[int, ...]]] = {}  # actor -> (place, supports)
    previous: tuple[tuple[str, ...], int] | None = None  # (actors, id of the naming sentence)
    for line_id, text in statements:
        if m := _NAMED_RE.match(text):
            group = tuple(a for a in (m["first"], m["second"]) if a)
            previous = (group, line_id)
            for actor in group:
                latest[actor] = (m["location"], (line_id,))
        elif m := _THEY_RE.match(text):
            if previous is None or len(previous[0]) != 2:
                raise ValueError(f"'they' with no two-actor antecedent: {text!r}")
            group, named = previous
            for actor in group:
                latest[actor] = (m["location"], (named, line_id))
        else:
            raise ValueError(f"not a qa13 statement: {text!r}")
    if q["actor"] not in latest:
        raise ValueError(f"{q['actor']} never moved before {question!r}")
    location, supports = latest[q["actor"]]
    return Solution(location, (supports,))

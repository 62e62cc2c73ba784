"""qa11 basic-coreference: where is an actor, through a pronoun (as in the released data).

Story: five pairs `A <move> to the L1.` + `<Adverb> he|she <move> to the L2.`, each pair
followed by a question. The pronoun is the gender of the previous sentence's actor, and
L2 differs from L1. Each question asks about the actor of the latest pair (65%), the pair
before (28%) or the one before that (7%), where that pair must be the actor's latest.
Supporting ids: the name sentence, then the pronoun sentence (ascending).
"""

from __future__ import annotations

import random
import re

from ..story import Story
from ..vocab import ACTORS, ADVERBS, GENDER, LOCATIONS, MOVE, sentence
from . import Solution
from ._places import NAME, PLACE, VERB, WHERE_IS_RE, latest_facts_k_back
from .common import StoryBuilder, pick_by_recency

# Weights for "ask about the pair whose pronoun sentence is k statements back", fitted with
# tools/calibrate_recency.py to the released shares: latest pair 65%, previous 28%, two back
# 7% (k = 0, 2, 4; a name sentence is never an actor's latest fact, so odd k never fit).
RECENCY = (41.8, 0.0, 40.9, 0.0, 17.2)


def generate_story(rng: random.Random) -> Story:
    story = StoryBuilder("qa11")
    where: dict[str, str] = {}
    last_fact: dict[str, int] = {}
    actors_of: dict[int, tuple[str, ...]] = {}
    pair_of: dict[str, tuple[int, int]] = {}  # actor -> ids of their latest pair
    for _ in range(5):
        actor = rng.choice(ACTORS)
        first = rng.choice([loc for loc in LOCATIONS if loc != where.get(actor)])
        named = story.say(sentence(rng.choice(MOVE), a=actor, l=first))
        where[actor] = rng.choice([loc for loc in LOCATIONS if loc != first])
        template = rng.choice(ADVERBS) + " " + rng.choice(MOVE)
        pronoun = story.say(sentence(template, a=GENDER[actor], l=where[actor]))
        last_fact[actor] = pronoun
        actors_of[pronoun] = (actor,)
        pair_of[actor] = (named, pronoun)

        found = pick_by_recency(
            rng, RECENCY, lambda k: latest_facts_k_back(story, k, actors_of, last_fact))
        assert found is not None  # the last pair is always its actor's latest
        actor = rng.choice(found)
        story.ask(f"Where is {actor}?", where[actor], pair_of[actor])
    return story.build()


# --- solver: re-reads the text; knows nothing of the generator ---

_NAMED_RE = re.compile(rf"^(?P<actor>{NAME}) {VERB} {PLACE}\.$")
# The rewrite's "Then he ..." and the released "Afterwards he ..." both read.
_ADVERB = "(?:After that|Afterwards|Following that|Then)"
_PRONOUN_RE = re.compile(rf"^{_ADVERB} (?P<pronoun>he|she) {VERB} {PLACE}\.$")


def solve(statements: list[tuple[int, str]], question: str) -> Solution:
    """Resolve each pronoun to the previous sentence's actor, then take the latest place.

    Supports are [name sentence, pronoun sentence] when the place came through a pronoun,
    else [name sentence].
    """
    q = WHERE_IS_RE.match(question)
    if not q:
        raise ValueError(f"not a qa11 question: {question!r}")
    latest: dict[str, tuple[str, tuple[int, ...]]] = {}  # actor -> (place, supports)
    previous: tuple[str, int] | None = None  # (actor, id of the sentence naming them)
    for line_id, text in statements:
        if m := _NAMED_RE.match(text):
            previous = (m["actor"], line_id)
            latest[m["actor"]] = (m["location"], (line_id,))
        elif m := _PRONOUN_RE.match(text):
            if previous is None:
                raise ValueError(f"pronoun with no antecedent: {text!r}")
            actor, named = previous
            if GENDER.get(actor) != m["pronoun"]:
                raise ValueError(f"{m['pronoun']!r} cannot refer to {actor}: {text!r}")
            latest[actor] = (m["location"], (named, line_id))
        else:
            raise ValueError(f"not a qa11 statement: {text!r}")
    if q["actor"] not in latest:
        raise ValueError(f"{q['actor']} never moved before {question!r}")
    location, supports = latest[q["actor"]]
    return Solution(location, (supports,))

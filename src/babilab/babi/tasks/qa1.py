"""qa1 single-supporting-fact: where is an actor, from their latest move (as in the released data).

Story: S S Q repeated five times. Each statement moves a random actor to a location other
than their current one. Each question asks about the actor whose latest move sits k
statements back, k drawn from the released data's recency table.
"""

from __future__ import annotations

import random
import re

from ..story import Story
from ..vocab import ACTORS, LOCATIONS, MOVE, sentence
from . import Solution
from .common import MOVE_RE, StoryBuilder, pick_by_recency

# Weights for "ask about the fact k statements back", fitted with tools/calibrate_recency.py so
# the generated recency table matches the released one: 45.2, 29.0, 13.3, 8.6, 4.0 %.
RECENCY = (24.9, 24.2, 19.7, 17.2, 13.9)


def generate_story(rng: random.Random) -> Story:
    story = StoryBuilder("qa1")
    where: dict[str, str] = {}
    last_move: dict[str, int] = {}  # actor -> id of their latest move
    mover_of: dict[int, str] = {}  # statement id -> actor
    for _ in range(5):
        for _ in range(2):
            actor = rng.choice(ACTORS)
            where[actor] = rng.choice([loc for loc in LOCATIONS if loc != where.get(actor)])
            line_id = story.say(sentence(rng.choice(MOVE), a=actor, l=where[actor]))
            last_move[actor] = line_id
            mover_of[line_id] = actor

        def latest_move_k_back(k: int) -> str | None:
            if k >= len(story.statement_ids):
                return None
            actor = mover_of[story.statement_ids[-1 - k]]
            return actor if last_move[actor] == story.statement_ids[-1 - k] else None

        actor = pick_by_recency(rng, RECENCY, latest_move_k_back)
        story.ask(f"Where is {actor}?", where[actor], [last_move[actor]])
    return story.build()


_WHERE_RE = re.compile(r"^Where is (?P<actor>[A-Z][a-z]+)\?$")


def solve(statements: list[tuple[int, str]], question: str) -> Solution:
    m = _WHERE_RE.match(question)
    if not m:
        raise ValueError(f"not a qa1 question: {question!r}")
    for line_id, text in reversed(statements):
        move = MOVE_RE.match(text)
        if move is None:
            raise ValueError(f"not a qa1 statement: {text!r}")
        if move["actor"] == m["actor"]:
            return Solution(move["location"], ((line_id,),))
    raise ValueError(f"{m['actor']} never moved before {question!r}")

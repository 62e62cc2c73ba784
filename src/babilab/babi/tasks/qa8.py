"""qa8 lists-sets: what an actor carries, as a list (Weston et al. 2015, task 8).

Story: the qa2 world (moves, gets always ending in " there", drops; no gives), statements
in pairs; after each pair a question about an actor whose latest get or drop is recent.
Question `What is A carrying?`: the held objects comma-joined, or `nothing`.

Order, as in every released question: objects are listed in the order the actor first
handled them (a football got, dropped and got again still comes before an apple got in
between), and the supporting ids are the actor's gets and drops grouped the same way, each
object's own events ascending: "got football (7), got apple (10), dropped football (13)"
gives sup = 7 13 10.
"""

from __future__ import annotations

import random
import re

from ..story import Story
from ..vocab import ACTORS
from . import Solution
from ._objects import MOVE_KIND, Mix, World, ask_by_recency, holdings, parse_events

# Draw weights (move, get, drop, give), fitted so the output mix is the released
# 66.4 / 21.1 / 12.6 / 0 %.
MIX = Mix(weights=(52.8, 27.2, 20.0, 0.0), get_there=1.0, drop_there=0.192)
# Weights for "ask about the fact k statements back", fitted with tools/calibrate_recency.py
# to the released table: 35.5, 28.1, 16.4, 12.7, 7.4 %.
RECENCY = (19.4, 26.7, 18.9, 20.3, 14.7)
TRIES = 20  # draws of k per pair before another pair is told; fits the story lengths


def answer_and_supports(handled: list[tuple[int, str]], held: list[str]) -> tuple[str, list[int]]:
    """The answer and supporting ids for an actor whose gets and drops, in story order, are
    `handled` (line id, object) and who now holds `held`.

    >>> answer_and_supports([(7, "football"), (10, "apple"), (13, "football")], ["apple"])
    ('apple', [7, 13, 10])
    """
    by_object: dict[str, list[int]] = {}  # in the order the actor first handled them
    for line_id, obj in handled:
        by_object.setdefault(obj, []).append(line_id)
    answer = ",".join(obj for obj in by_object if obj in held) or "nothing"
    return answer, [line_id for ids in by_object.values() for line_id in ids]


def _actor_at(world: World, k: int) -> list[str]:
    """The actor whose latest get or drop is the statement k back, if it is one."""
    said = world.back(k)
    if said is None or said.kind == MOVE_KIND:
        return []
    return [said.actor] if world.object_events[said.actor][-1] == said.line_id else []


def generate_story(rng: random.Random) -> Story:
    world = World("qa8", rng, ACTORS, MIX)
    for _ in range(5):
        actor = None
        while actor is None:
            world.step()
            world.step()
            actor = ask_by_recency(rng, RECENCY, [_actor_at(world, k) for k in range(5)], TRIES)
        handled = [(s.line_id, s.obj) for s in world.said if s.kind != MOVE_KIND and s.actor == actor]
        world.ask(f"What is {actor} carrying?", *answer_and_supports(handled, world.held[actor]))
    return world.story()


# --- solver ------------------------------------------------------------------------------

_WHAT_RE = re.compile(r"^What is (?P<actor>[A-Z][a-z]+) carrying\?$")


def solve(statements: list[tuple[int, str]], question: str) -> Solution:
    m = _WHAT_RE.match(question)
    if not m:
        raise ValueError(f"not a qa8 question: {question!r}")
    actor = m["actor"]
    events = parse_events(statements)
    # Gives never occur in qa8; were there any, receiving would count like a get.
    handled = [(e.line_id, e.obj) for e in events
               if e.kind != MOVE_KIND and actor in (e.actor, e.receiver)]
    if not handled:
        raise ValueError(f"{actor} never handled an object before {question!r}")
    answer, supports = answer_and_supports(handled, holdings(events).get(actor, []))
    return Solution(answer, (tuple(supports),))

"""qa17 positional-reasoning: yes/no about two shapes placed via a third (as in the released data).

Story: 2 statements and 8 questions. Three shapes sit on a grid one step apart: a middle
shape M with A and B on two different sides of it, so A and B are diagonal (2/3 of stories)
or in a line (1/3). The statements relate M to A and to B, each with M as subject or object
at random; the questions ask about A and B in either order.

Each question draws its answer first (yes/no 50/50) and then a relation uniformly among
those with that answer. This is what makes the relations uniform overall while about 11% of
questions ask about an axis on which the shapes have no offset (always "no"), as in the data.
"""

from __future__ import annotations

import random
import re

from ..story import Story
from ..vocab import RELATIONS, SHAPES
from . import Solution
from .common import StoryBuilder

# "The X is REL the Y." puts X at Y + STEP[REL]; y points up.
STEP = {"above": (0, 1), "below": (0, -1), "to the left of": (-1, 0), "to the right of": (1, 0)}
_SIDES = tuple(STEP.values())


def _relation(offset: tuple[int, int]) -> str:
    return next(r for r, step in STEP.items() if step == offset)


def holds(relation: str, offset: tuple[int, int]) -> bool:
    """Is a shape at `offset` from another REL it? The offset projected on REL is positive."""
    dx, dy = STEP[relation]
    return dx * offset[0] + dy * offset[1] > 0


def generate_story(rng: random.Random) -> Story:
    a, m, b = rng.sample(SHAPES, 3)
    side_a, side_b = rng.sample(_SIDES, 2)  # A at M + side_a, B at M + side_b
    position = {m: (0, 0), a: side_a, b: side_b}

    story = StoryBuilder("qa17")
    said: dict[str, int] = {}  # outer shape -> the statement that places it
    for outer, side in ((a, side_a), (b, side_b)):
        if rng.random() < 0.5:
            text = f"The {outer} is {_relation(side)} the {m}."
        else:
            text = f"The {m} is {_relation((-side[0], -side[1]))} the {outer}."
        said[outer] = story.say(text)

    for _ in range(8):
        first, second = (a, b) if rng.random() < 0.5 else (b, a)
        offset = (position[first][0] - position[second][0],
                  position[first][1] - position[second][1])
        answer = rng.random() < 0.5
        relation = rng.choice([r for r in RELATIONS if holds(r, offset) == answer])
        story.ask(f"Is the {first} {relation} the {second}?", "yes" if answer else "no",
                  [said[first], said[second]])
    return story.build()


# --- solver ---

_shapes = "|".join(SHAPES)
_relations = "|".join(RELATIONS)
_STATEMENT_RE = re.compile(
    rf"^The (?P<x>{_shapes}) is (?P<rel>{_relations}) the (?P<y>{_shapes})\.$"
)
_QUESTION_RE = re.compile(
    rf"^Is the (?P<x>{_shapes}) (?P<rel>{_relations}) the (?P<y>{_shapes})\?$"
)


def solve(statements: list[tuple[int, str]], question: str) -> Solution:
    q = _QUESTION_RE.match(question)
    if q is None:
        raise ValueError(f"not a qa17 question: {question!r}")
    # Walk from the question's first shape along the statements (a tree of shapes), adding
    # up offsets and remembering which statements the walk used.
    edges: dict[str, list[tuple[str, tuple[int, int], int]]] = {}  # shape -> (other, offset, id)
    for line_id, text in statements:
        m = _STATEMENT_RE.match(text)
        if m is None:
            raise ValueError(f"not a qa17 statement: {text!r}")
        dx, dy = STEP[m["rel"]]
        edges.setdefault(m["y"], []).append((m["x"], (dx, dy), line_id))
        edges.setdefault(m["x"], []).append((m["y"], (-dx, -dy), line_id))
    start, goal = q["x"], q["y"]
    reached = {start: ((0, 0), ())}  # shape -> (offset from start, statement ids used)
    frontier = [start]
    while frontier and goal not in reached:
        shape = frontier.pop(0)
        offset, used = reached[shape]
        for other, (dx, dy), line_id in edges.get(shape, []):
            if other not in reached:
                reached[other] = ((offset[0] + dx, offset[1] + dy), (*used, line_id))
                frontier.append(other)
    if goal not in reached:
        raise ValueError(f"{question!r}: the statements do not connect the {start} and the {goal}")
    goal_offset, used = reached[goal]
    # `goal_offset` is where the goal sits seen from the start; the question asks the reverse.
    answer = holds(q["rel"], (-goal_offset[0], -goal_offset[1]))
    return Solution("yes" if answer else "no", (used,))

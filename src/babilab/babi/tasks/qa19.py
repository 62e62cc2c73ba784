"""qa19 path-finding: the two moves from one location to another (babi_spec.md §4 qa19).

Story: 5 statements "The L1 is DIR of the L2." and one question "How do you go from the La to
the Lb?" answered with two comma-joined letters ("s,w"). The six locations sit on distinct grid
cells: a 2-step path La -> M -> Lb (the second step never reverses the first), then three decoy
locations, each one step from a random location already placed. As in the bAbI generator, a
decoy is refused if, counting every pair of grid neighbours as connected (stated or not), it
would open a second way from La to Lb, so the path cannot be short-cut by geometry either.
Each statement names the pair in a random order; the statements are shuffled.
"""

from __future__ import annotations

import random
import re

from ..story import Story
from ..vocab import DIRECTIONS, LOCATIONS, OPPOSITE
from . import Solution
from ._logic import adjacency, neighbours
from .common import StoryBuilder

DECOYS = 3
# Grid cells are ints x + 16 * y (|x|, |y| <= 5 here), so a step is one addition.
_OFFSET = {"north": 16, "south": -16, "east": 1, "west": -1}
_OFFSETS = tuple(_OFFSET.values())


def _bridge(cells: set[int], a: int, b: int) -> bool:
    """Is the grid edge a-b a bridge: can a reach b only through that edge?

    A 2-step path is the only way from source to target, counting every pair of grid
    neighbours as connected, exactly when both of its edges are bridges.
    """
    seen = {a}
    todo = [a]
    while todo:
        cell = todo.pop()
        for off in _OFFSETS:
            nxt = cell + off
            if nxt in cells and nxt not in seen:
                if nxt == b:
                    if cell != a:
                        return False
                    continue
                seen.add(nxt)
                todo.append(nxt)
    return True


def generate_story(rng: random.Random) -> Story:
    names = rng.sample(LOCATIONS, 6)  # source, middle, target, then the decoys
    first = DIRECTIONS[int(rng.random() * 4)]
    second = rng.choice([d for d in DIRECTIONS if d != OPPOSITE[first]])
    source = 0
    middle = source + _OFFSET[first]
    target = middle + _OFFSET[second]
    cells = {source, middle, target}
    placed = [source, middle, target]
    edges = [(0, first, 1), (1, second, 2)]  # (index of from, direction, index of to)
    while len(placed) < 3 + DECOYS:
        # One draw picks the anchor and the direction (random.choice is slow in this loop).
        k = int(rng.random() * 4 * len(placed))
        direction = DIRECTIONS[k & 3]
        cell = placed[k >> 2] + _OFFSET[direction]
        if cell in cells:
            continue
        cells.add(cell)
        # A cell touching only its anchor closes no cycle, so only look when it touches more.
        touching = (cell + 1 in cells) + (cell - 1 in cells) + (cell + 16 in cells) \
            + (cell - 16 in cells)
        if touching > 1 and not (_bridge(cells, source, middle) and _bridge(cells, middle, target)):
            cells.remove(cell)
            continue
        edges.append((k >> 2, direction, len(placed)))
        placed.append(cell)

    texts = []
    for start, direction, end in edges:
        # "end is direction of start", or the same fact from the other side.
        if rng.random() < 0.5:
            texts.append(adjacency(names[end], direction, names[start]))
        else:
            texts.append(adjacency(names[start], OPPOSITE[direction], names[end]))
    order = list(range(len(texts)))
    rng.shuffle(order)

    story = StoryBuilder("qa19")
    line_of = {}
    for k in order:
        line_of[k] = story.say(texts[k])
    story.ask(f"How do you go from the {names[0]} to the {names[2]}?",
              f"{first[0]},{second[0]}", [line_of[0], line_of[1]])
    return story.build()


# --- solver ---

_locations = "|".join(LOCATIONS)
_QUESTION_RE = re.compile(
    rf"^How do you go from the (?P<start>{_locations}) to the (?P<goal>{_locations})\?$"
)


def solve(statements: list[tuple[int, str]], question: str) -> Solution:
    """The shortest route over the stated adjacencies; it must be unique."""
    q = _QUESTION_RE.match(question)
    if q is None:
        raise ValueError(f"not a qa19 question: {question!r}")
    graph = neighbours(statements, "qa19")
    # Breadth-first, keeping every shortest route: (location, directions, statement ids).
    routes = [(q["start"], (), ())]
    visited = {q["start"]}
    while routes and not any(place == q["goal"] for place, _, _ in routes):
        step = []
        for place, directions, ids in routes:
            for direction, there, line_id in graph.get(place, []):
                if there not in visited:
                    step.append((there, (*directions, direction), (*ids, line_id)))
        visited |= {there for there, _, _ in step}
        routes = step
    found = [(directions, ids) for place, directions, ids in routes if place == q["goal"]]
    if not found:
        raise ValueError(f"{question!r}: the statements do not connect them")
    answers = {directions for directions, _ in found}
    if len(answers) > 1:
        raise ValueError(f"{question!r}: several shortest routes")
    answer = ",".join(d[0] for d in answers.pop())
    return Solution(answer, tuple(ids for _, ids in found))

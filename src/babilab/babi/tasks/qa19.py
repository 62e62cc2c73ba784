"""qa19 path-finding: the two moves from one location to another (Weston et al. 2015, task 19).

Story: 5 statements "The L1 is DIR of the L2." and one question "How do you go from the La to
the Lb?" answered with two comma-joined letters ("s,w"). Six locations: a 2-step path
La -> M -> Lb (the second step never reverses the first) and three decoys.

The layout follows every released story: each decoy hangs off one of the three path
locations (never off another decoy), in a direction not yet taken from there; anchor and
direction are drawn uniformly and drawn again when the direction is taken. Nothing else is
checked, so the decoys are leaves and the path is the only route the statements give; the
grid geometry may disagree (in 43% of released stories a decoy sits next to both ends of a
turn, in 7% two decoys share a cell), unlike the later public generator
(facebookarchive/bAbI-tasks, PathFinding.lua), which refuses such decoys.

Wording and order, fitted to the released stories: a path step names its outer end (La or
Lb) first 56% of the time, a decoy statement names the decoy first 73% of the time; the two
path statements sit later in the story than chance would put them (the last statement is
one of them in 57% of released stories, against 40% for a shuffle), so their positions are
drawn from the released table and the decoys fill the rest in random order.
"""

from __future__ import annotations

import random
import re

from ..story import Story
from ..vocab import DIRECTIONS, LOCATIONS, OPPOSITE
from . import Solution
from ._logic import adjacency, neighbours
from .common import StoryBuilder, weighted

DECOYS = 3
PATH_END_FIRST = 0.56  # a path statement names La or Lb first
DECOY_FIRST = 0.73  # a decoy statement names the decoy first
# Positions (1-5) of the two path statements and their shares (%) in the released stories;
# which step takes which position is 50/50.
PATH_POSITIONS = ((4, 5), (3, 5), (2, 5), (1, 5), (3, 4), (2, 4), (1, 4), (2, 3), (1, 3), (1, 2))
PATH_POSITION_SHARES = (17.0, 14.4, 13.9, 11.6, 9.4, 7.9, 7.3, 6.5, 6.3, 5.6)


def _stated(rng: random.Random, outer: str, direction: str, inner: str, outer_first: float) -> str:
    """`outer` lies `direction` of `inner`, naming `outer` first with chance `outer_first`."""
    if rng.random() < outer_first:
        return adjacency(outer, direction, inner)
    return adjacency(inner, OPPOSITE[direction], outer)


def _decoys(rng: random.Random, first: str, second: str) -> list[tuple[int, str]]:
    """(index of the path location it hangs off, direction from there) for each decoy."""
    taken = {0: {first}, 1: {OPPOSITE[first], second}, 2: {OPPOSITE[second]}}
    out: list[tuple[int, str]] = []
    while len(out) < DECOYS:
        anchor, direction = int(rng.random() * 3), DIRECTIONS[int(rng.random() * 4)]
        if direction not in taken[anchor]:
            taken[anchor].add(direction)
            out.append((anchor, direction))
    return out


def generate_story(rng: random.Random) -> Story:
    names = rng.sample(LOCATIONS, 6)  # source, middle, target, then the decoys
    source, middle, target = names[:3]
    first = DIRECTIONS[int(rng.random() * 4)]
    second = rng.choice([d for d in DIRECTIONS if d != OPPOSITE[first]])
    path = [_stated(rng, source, OPPOSITE[first], middle, PATH_END_FIRST),
            _stated(rng, target, second, middle, PATH_END_FIRST)]
    decoys = [_stated(rng, names[3 + i], direction, names[anchor], DECOY_FIRST)
              for i, (anchor, direction) in enumerate(_decoys(rng, first, second))]

    positions = weighted(rng, PATH_POSITIONS, PATH_POSITION_SHARES)
    step_at = dict(zip(positions, (0, 1) if rng.random() < 0.5 else (1, 0), strict=True))
    rng.shuffle(decoys)
    story = StoryBuilder("qa19")
    line_of_step = {}
    for position in range(1, 3 + DECOYS):
        if position in step_at:
            line_of_step[step_at[position]] = story.say(path[step_at[position]])
        else:
            story.say(decoys.pop())
    story.ask(f"How do you go from the {source} to the {target}?",
              f"{first[0]},{second[0]}", [line_of_step[0], line_of_step[1]])
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

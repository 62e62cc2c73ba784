"""Adjacency statements shared by qa4 and qa19: "The kitchen is north of the garden."

Both tasks state a grid layout this way and reason over it; this module writes and reads
the sentences and nothing else (no random draws, no task rules).
"""

from __future__ import annotations

import re

from ..vocab import DIRECTIONS, LOCATIONS, OPPOSITE

_locations = "|".join(LOCATIONS)
_directions = "|".join(DIRECTIONS)
# "The kitchen is north of the garden." -> subject, direction, object
ADJACENCY_RE = re.compile(
    rf"^The (?P<subject>{_locations}) is (?P<direction>{_directions}) "
    rf"of the (?P<object>{_locations})\.$"
)


def adjacency(subject: str, direction: str, obj: str) -> str:
    """`adjacency("kitchen", "north", "garden")` -> 'The kitchen is north of the garden.'"""
    return f"The {subject} is {direction} of the {obj}."


def parse_adjacency(text: str, task: str) -> tuple[str, str, str]:
    """'The kitchen is north of the garden.' -> ("kitchen", "north", "garden")."""
    m = ADJACENCY_RE.match(text)
    if m is None:
        raise ValueError(f"not a {task} statement: {text!r}")
    return m["subject"], m["direction"], m["object"]


Moves = dict[str, list[tuple[str, str, int]]]  # location -> (direction, location reached, id)


def neighbours(statements: list[tuple[int, str]], task: str) -> Moves:
    """Both readings of every adjacency: location -> [(direction to go, location reached, id)].

    "3 The kitchen is north of the garden." gives garden -(north)-> kitchen and
    kitchen -(south)-> garden, both from statement 3.
    """
    out: Moves = {}
    for line_id, text in statements:
        subject, direction, obj = parse_adjacency(text, task)
        out.setdefault(obj, []).append((direction, subject, line_id))
        out.setdefault(subject, []).append((OPPOSITE[direction], obj, line_id))
    return out


"""Pieces shared by the "where is an actor" tasks qa9-qa14 (as in the released data).

Generator side: `latest_facts_k_back`, the candidate function behind recency-weighted
question choice. Solver side: regex fragments for names, move verbs and locations, and the
two question forms these tasks ask. Nothing here knows a task's rules.
"""

from __future__ import annotations

import re

from ..vocab import MOVE_VERBS
from .common import StoryBuilder

# --- generator ---


def latest_facts_k_back(story: StoryBuilder, k: int, actors_of: dict[int, tuple[str, ...]],
                        last_fact: dict[str, int]) -> list[str] | None:
    """Actors whose latest fact is the statement `k` back (0 = the last one), or None.

    `actors_of` maps a statement id to the actors it is about; `last_fact` maps an actor to the
    id of their latest fact. Pass a lambda over this to `pick_by_recency`.
    """
    if k >= len(story.statement_ids):
        return None
    line_id = story.statement_ids[-1 - k]
    found = [a for a in actors_of.get(line_id, ()) if last_fact[a] == line_id]
    return found or None


# --- solver ---

NAME = r"[A-Z][a-z]+"
# Longest verb first, so "went back to" is not read as "went" + junk.
VERB = "(?:" + "|".join(re.escape(v) for v in sorted(MOVE_VERBS, key=len, reverse=True)) + ")"
PLACE = r"the (?P<location>[a-z]+)"

WHERE_IS_RE = re.compile(rf"^Where is (?P<actor>{NAME})\?$")  # qa11, qa12, qa13
IS_IN_RE = re.compile(rf"^Is (?P<actor>{NAME}) in {PLACE}\?$")  # qa9, qa10

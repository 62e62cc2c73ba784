"""Reading and writing the bAbI v1.2 text format (github.com/facebookarchive/bAbI-tasks).

    1 Mary moved to the bathroom.
    2 John went to the hallway.
    3 Where is Mary? \tbathroom\t1

Ids restart at 1 with each story; question lines carry a tab, the answer, a tab and the
supporting ids. Tasks 1-3 and 5-14 put a space before the first tab, 4 and 15-20 do not.
The reader accepts either spacing so that hand-edited files still load.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from ..errors import BabilabError
from .story import Line, Question, Statement, Story
from .vocab import SPACE_BEFORE_TAB, TASK_NAMES


class BabiFormatError(BabilabError):
    """A bAbI file that does not follow the v1.2 format; the message names file and line."""


def format_line(task: str, line_id: int, line: Line) -> str:
    if isinstance(line, Statement):
        return f"{line_id} {line.text}"
    pad = " " if task in SPACE_BEFORE_TAB else ""
    supports = " ".join(str(s) for s in line.supports)
    return f"{line_id} {line.text}{pad}\t{line.answer}\t{supports}"


def format_story(story: Story) -> str:
    """The story as v1.2 lines, each ending in a newline."""
    return "".join(format_line(story.task, i + 1, line) + "\n" for i, line in enumerate(story.lines))


def format_stories(stories: Iterable[Story]) -> str:
    return "".join(format_story(s) for s in stories)


def file_name(task: str, split: str) -> str:
    """`qa1` and `train` -> `qa1_single-supporting-fact_train.txt`."""
    return f"{task}_{TASK_NAMES[task]}_{split}.txt"


_FILE_RE = re.compile(r"^(qa\d+)_[a-z-]+_(train|test|valid)\.txt$")
_LINE_RE = re.compile(r"^(\d+) (\S.*)$")


def task_of_file(path: Path) -> tuple[str, str]:
    """`.../qa3_three-supporting-facts_test.txt` -> ("qa3", "test")."""
    m = _FILE_RE.match(path.name)
    if not m or m.group(1) not in TASK_NAMES:
        raise BabiFormatError(
            f"{path}: not a bAbI file name; expected qaN_<name>_<train|test|valid>.txt"
        )
    return m.group(1), m.group(2)


def parse_stories(text: str, task: str, source: str = "<text>") -> list[Story]:
    """Parse v1.2 text into stories; raises BabiFormatError naming the first bad line."""
    stories: list[Story] = []
    lines: list[Line] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        where = f"{source}:{n}"
        if not raw.strip():
            raise BabiFormatError(f"{where}: blank line; bAbI files have none")
        m = _LINE_RE.match(raw)
        if not m:
            raise BabiFormatError(f"{where}: expected '<id> <text>', got {raw[:60]!r}")
        line_id, body = int(m.group(1)), m.group(2)
        if line_id == 1 and lines:
            stories.append(Story(task, tuple(lines)))
            lines = []
        if line_id != len(lines) + 1:
            raise BabiFormatError(f"{where}: line id {line_id}, expected {len(lines) + 1}")
        if "\t" not in body:
            lines.append(Statement(body))
            continue
        parts = body.split("\t")
        if len(parts) != 3 or not parts[1]:
            raise BabiFormatError(f"{where}: a question needs '<text>\\t<answer>\\t<ids>'")
        q_text, answer, ids = parts[0].rstrip(" "), parts[1], parts[2].split()
        if not all(i.isdigit() for i in ids) or not ids:
            raise BabiFormatError(f"{where}: supporting ids must be numbers, got {parts[2]!r}")
        supports = tuple(int(i) for i in ids)
        for s in supports:
            if not 1 <= s <= len(lines) or not isinstance(lines[s - 1], Statement):
                raise BabiFormatError(f"{where}: supporting id {s} is not an earlier statement")
        lines.append(Question(q_text, answer, supports))
    if lines:
        stories.append(Story(task, tuple(lines)))
    return stories


def read_file(path: Path) -> list[Story]:
    """Read one `qaN_*_{train,test}.txt` file."""
    task, _ = task_of_file(path)
    try:
        text = path.read_text(encoding="ascii")
    except UnicodeDecodeError as e:
        raise BabiFormatError(f"{path}: not ASCII text ({e.reason} at byte {e.start}); bAbI "
                              "v1.2 files are ASCII: give one, or make one with "
                              "`babilab babi generate`") from None
    except OSError as e:
        raise BabiFormatError(f"{path}: cannot read ({e.strerror})") from None
    return parse_stories(text, task, source=str(path))


def find_files(path: Path) -> list[Path]:
    """The bAbI files at `path` (a file, or a folder searched recursively), sorted by task."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise BabiFormatError(f"{path}: no such file or folder; give a bAbI file or a folder "
                              "of them")
    files = [p for p in path.rglob("qa*_*.txt") if _FILE_RE.match(p.name)]
    if not files:
        raise BabiFormatError(f"{path}: no qaN_<name>_<split>.txt files found")
    return sorted(files, key=lambda p: (int(task_of_file(p)[0][2:]), p.name, str(p)))

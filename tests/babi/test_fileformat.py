"""The v1.2 reader and writer: round trips, the per-task tab quirk, and clear errors."""

from pathlib import Path

import pytest

from babilab.babi import BabiFormatError, find_files, format_stories, parse_stories, read_file
from babilab.babi.fileformat import file_name
from babilab.babi.story import Question, Statement, Story

QA1_TEXT = (
    "1 Mary moved to the bathroom.\n"
    "2 John went to the hallway.\n"
    "3 Where is Mary? \tbathroom\t1\n"
    "4 Daniel went back to the hallway.\n"
    "5 Sandra moved to the garden.\n"
    "6 Where is Daniel? \thallway\t4\n"
    "1 Sandra travelled to the office.\n"
    "2 Mary journeyed to the kitchen.\n"
    "3 Where is Sandra? \toffice\t1\n"
)


def test_parse_known_story():
    stories = parse_stories(QA1_TEXT, "qa1")
    assert len(stories) == 2
    assert stories[0].lines[2] == Question("Where is Mary?", "bathroom", (1,))
    assert stories[0].lines[3] == Statement("Daniel went back to the hallway.")
    assert stories[1].question_ids() == [3]


def test_round_trip_is_byte_exact():
    assert format_stories(parse_stories(QA1_TEXT, "qa1")) == QA1_TEXT


def test_space_before_tab_only_where_the_released_data_has_it():
    q = (Statement("The kitchen is north of the garden."),
         Question("What is north of the garden?", "kitchen", (1,)))
    assert "garden?\tkitchen\t1" in format_stories([Story("qa4", q)])
    q5 = (Statement("Bill gave the milk to Fred."), Question("Who received the milk?", "Fred", (1,)))
    assert "milk? \tFred\t1" in format_stories([Story("qa5", q5)])


def test_questions_flatten_like_babilong():
    story = parse_stories(QA1_TEXT, "qa1")[0]
    first, second = story.questions()
    assert first.facts == ("Mary moved to the bathroom.", "John went to the hallway.")
    # the earlier question is dropped from the second one's facts
    assert len(second.facts) == 4 and "Where" not in " ".join(second.facts)
    assert second.facts[second.supporting[0]] == "Daniel went back to the hallway."


@pytest.mark.parametrize("text, message", [
    ("1 Mary moved to the bathroom.\n3 John went to the hallway.\n", "line id 3, expected 2"),
    ("1 Mary moved to the bathroom.\n\n", "blank line"),
    ("Mary moved to the bathroom.\n", "expected '<id> <text>'"),
    ("1 Mary moved.\n2 Where is Mary? \tbathroom\t2\n", "not an earlier statement"),
    ("1 Mary moved.\n2 Where is Mary? \tbathroom\tone\n", "must be numbers"),
    ("1 Mary moved.\n2 Where is Mary? \tbathroom\n", "needs"),
])
def test_malformed_lines_name_the_line(text, message):
    with pytest.raises(BabiFormatError, match=message) as e:
        parse_stories(text, "qa1", source="f.txt")
    assert str(e.value).startswith("f.txt:")


def test_read_file_checks_name_and_encoding(tmp_path: Path):
    bad_name = tmp_path / "stories.txt"
    bad_name.write_text(QA1_TEXT)
    with pytest.raises(BabiFormatError, match="not a bAbI file name"):
        read_file(bad_name)
    latin = tmp_path / file_name("qa1", "train")
    latin.write_bytes("1 Zoë moved to the bathroom.\n".encode("latin-1"))
    with pytest.raises(BabiFormatError, match="not ASCII"):
        read_file(latin)


def test_find_files(tmp_path: Path):
    for task in ("qa10", "qa2"):
        (tmp_path / file_name(task, "test")).write_text(QA1_TEXT)
    (tmp_path / "README.txt").write_text("x")
    assert [p.name[:4] for p in find_files(tmp_path)] == ["qa2_", "qa10"]
    with pytest.raises(BabiFormatError, match="no such file"):
        find_files(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BabiFormatError, match="no qaN"):
        find_files(empty)

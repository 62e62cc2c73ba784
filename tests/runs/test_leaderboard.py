"""The leaderboard's printed qa1-qa5 row: whole-percent task accuracies, then their mean.

The published predictions check it against the published row (test_import.py); here a
hand-made table where the order of rounding decides the printed number.
"""

from babilab.scoring import Cell, leaderboard_average, leaderboard_row

TASKS = ("qa1", "qa2", "qa3", "qa4", "qa5")


def table(accuracies: dict[str, list[float]]) -> dict[tuple[str, str], Cell]:
    return {(task, length): Cell(a, 1000, 0.0, 100.0)
            for length, values in accuracies.items() for task, a in zip(TASKS, values, strict=True)}


def test_tasks_are_rounded_before_their_mean():
    # Mistral-7B-Instruct-v0.2 at 2k: exact mean 52.544 (53), whole percents 75+32+31+58+66 = 52.4
    cells = table({"2k": [75.3, 31.53, 31.16, 58.36, 66.37], "4k": [64.5, 21.82, 30.33, 59.66, 66.97]})
    assert round(leaderboard_average(cells, ["2k"])["2k"]) == 53
    assert leaderboard_row(cells, ["2k", "4k"]) == {"2k": 52, "4k": 49}


def test_half_percents_round_to_even_as_pandas_does():
    # 86.5 -> 86 and 33.5 -> 34 (half to even): 86+34+34+58+66 = 278 / 5 = 55.6 -> 56;
    # 0.5 -> 0: 0+0+0+0+1 = 0.2 -> 0
    cells = table({"1k": [86.5, 33.5, 33.76, 58.26, 66.4], "8k": [0.5, 0.5, 0.5, 0.5, 1.0]})
    assert leaderboard_row(cells, ["1k", "8k"]) == {"1k": 56, "8k": 0}


def test_a_missing_task_leaves_the_length_empty():
    cells = table({"0k": [90, 80, 70, 60, 50]})
    del cells[("qa3", "0k")]
    assert leaderboard_row(cells, ["0k", "1k"]) == {"0k": None, "1k": None}

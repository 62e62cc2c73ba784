"""The HTML report and the printed summaries: one section per model and settings."""

from babilab.cli import main
from babilab.report import build_report
from tests.runs.test_models_apart import store_two_settings


def test_report_tables_keep_two_settings_of_one_label_apart(tmp_path):
    store_two_settings(tmp_path / "run")
    page = build_report(tmp_path / "run").read_text()
    assert page.count("<h2>org/m@a1b2c3d4</h2>") == page.count("<h2>org/m@f0e1d2c3</h2>") == 1
    assert "<h2>org/m</h2>" not in page
    assert "50.0<small> (n=2)</small>" in page and "0.0<small> (n=2)</small>" in page
    assert "(n=4)" not in page and "25.0" not in page
    tables = sorted(p.name for p in (tmp_path / "run" / "report").glob("*_task_by_length.csv"))
    assert tables == ["org_m_a1b2c3d4_babilong_task_by_length.csv",
                      "org_m_f0e1d2c3_babilong_task_by_length.csv",
                      "other_x_babilong_task_by_length.csv"]


def test_rescore_prints_two_settings_of_one_label_apart(tmp_path, capsys):
    store_two_settings(tmp_path / "run")
    assert main(["rescore", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "org/m@a1b2c3d4 (" in out and "org/m@f0e1d2c3 (" in out
    assert "\norg/m (" not in out

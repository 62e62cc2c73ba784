"""`babilab push`: the files it would upload, loaded back with `datasets`; the upload itself
through a fake HfApi (no network in tests), private by default, the token never shown."""

import pytest

from babilab.cli import main

from .conftest import facts_only_suite

datasets = pytest.importorskip("datasets")
huggingface_hub = pytest.importorskip("huggingface_hub")

TOKEN = "hf_secretTOKEN0123456789"


@pytest.fixture
def suite(tmp_path):
    return facts_only_suite(tmp_path / "suite", tasks=("qa1", "qa2"), n=3, lengths=("0k", "1k"))


class FakeApi:
    """HfApi's two calls, recorded; the staged folder is loaded back while it still exists."""

    calls: list = []

    def __init__(self, token=None):
        FakeApi.calls.append(("init", token))

    def create_repo(self, repo_id, **kwargs):
        FakeApi.calls.append(("create_repo", repo_id, kwargs))
        return f"https://huggingface.co/datasets/{repo_id}"

    def upload_folder(self, **kwargs):
        from pathlib import Path

        folder = Path(kwargs["folder_path"])
        loaded = datasets.load_dataset(str(folder), "1k", cache_dir=str(folder.parent / "cache"))
        FakeApi.calls.append(("upload_folder", kwargs, sorted(loaded),
                              (folder / "README.md").read_text()))


@pytest.fixture
def hub(monkeypatch):
    """A logged-in huggingface_hub whose HfApi is the fake; any other network use fails."""
    FakeApi.calls = []
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: TOKEN)
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    return FakeApi


def test_stage_only_writes_what_loads_back(suite, tmp_path, capsys):
    staged = tmp_path / "staged"
    assert main(["push", str(suite.path), "me/babilong-fresh", "--stage-only", str(staged)]) == 0
    out = capsys.readouterr().out
    assert "nothing uploaded" in out and "data/1k/qa2-00000-of-00001.parquet" in out
    for length in ("0k", "1k"):
        loaded = datasets.load_dataset(str(staged), length, cache_dir=str(tmp_path / "cache"))
        for task in ("qa1", "qa2"):
            assert [(r["input"], r["question"], r["target"]) for r in loaded[task]] == \
                [(s.input, s.question, s.target) for s in suite.samples(task, length)]
    card = (staged / "README.md").read_text()
    assert 'load_dataset("me/babilong-fresh", "1k")' in card and "PATH_TO_THIS_FOLDER" not in card


def test_staged_files_are_export_suites_files(suite, tmp_path):
    assert main(["push", str(suite.path), "me/x", "--stage-only", str(tmp_path / "staged")]) == 0
    assert main(["export-suite", str(suite.path), "--out", str(tmp_path / "export")]) == 0
    files = sorted(p.relative_to(tmp_path / "export") for p in (tmp_path / "export").rglob("*"))
    assert files == sorted(p.relative_to(tmp_path / "staged") for p in (tmp_path / "staged").rglob("*"))
    for name in files:
        if (tmp_path / "export" / name).is_file() and name.name != "README.md":
            assert (tmp_path / "export" / name).read_bytes() == (tmp_path / "staged" / name).read_bytes()


def test_push_is_private_by_default_and_never_shows_the_token(suite, hub, capsys):
    assert main(["push", str(suite.path), "me/babilong-fresh"]) == 0
    (_, token), (_, repo, create), (_, upload, splits, card) = hub.calls
    assert token == TOKEN and repo == "me/babilong-fresh"
    assert create == {"repo_type": "dataset", "private": True, "exist_ok": True}
    assert upload["repo_id"] == "me/babilong-fresh" and upload["repo_type"] == "dataset"
    assert splits == ["qa1", "qa2"] and 'load_dataset("me/babilong-fresh"' in card
    out = capsys.readouterr()
    assert "https://huggingface.co/datasets/me/babilong-fresh" in out.out
    assert TOKEN not in out.out + out.err


def test_public_on_request(suite, hub):
    assert main(["push", str(suite.path), "me/open", "--public"]) == 0
    assert hub.calls[1][2]["private"] is False


@pytest.mark.parametrize("case, message", [
    ("no token", "no Hugging Face token: set HF_TOKEN or run `hf auth login`"),
    ("offline", "HF_HUB_OFFLINE is set"),
    ("bad repo id", "is not a hub repo id"),
])
def test_refusals_are_one_line_before_any_network(suite, hub, monkeypatch, tmp_path, capsys, case,
                                                  message):
    if case == "no token":
        monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    if case == "offline":
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    repo = "not a repo" if case == "bad repo id" else "me/x"
    before = sorted(tmp_path.rglob("*"))
    assert main(["push", str(suite.path), repo]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert hub.calls == []  # no HfApi was even made
    assert sorted(tmp_path.rglob("*")) == before


def test_a_failed_upload_is_one_line_without_the_token(suite, hub, monkeypatch, capsys):
    def refuse(self, **kwargs):
        raise ConnectionError(f"401 Unauthorized for token {TOKEN}\nmore")

    monkeypatch.setattr(FakeApi, "upload_folder", refuse)
    assert main(["push", str(suite.path), "me/x"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("babilab: error: upload to me/x failed: 401 Unauthorized")
    assert TOKEN not in err and "\n" not in err

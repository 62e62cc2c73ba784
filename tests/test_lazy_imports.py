"""`import babilab` loads the public functions' modules on first use (the CLI starts 0.3 s
sooner), yet every public name imports as before."""

import subprocess
import sys


def run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_public_names_load_on_first_use():
    out = run("import sys, babilab\n"
              "print(sorted(m for m in ('babilab.report', 'babilab.runs', 'babilab.suite') "
              "if m in sys.modules))\n"
              "from babilab import *\n"
              "import babilab.suite\n"
              "names = [n for n in babilab.__all__ if getattr(babilab, n, None) is None]\n"
              "print(names, set(babilab.__all__) <= set(dir(babilab)))\n"
              "print(babilab.Suite is babilab.suite.Suite, callable(babilab.generate_suite))")
    assert out.splitlines() == ["[]", "[] True", "True True"]


def test_train_stays_the_function_after_its_modules_load():
    out = run("import babilab.train.config\n"
              "import babilab\n"
              "from babilab import train\n"
              "print(train is babilab.train, callable(train), type(train).__name__)")
    assert out == "True True function"


def test_unknown_names_are_attribute_errors():
    out = run("import babilab, babilab.suite\n"
              "print(hasattr(babilab, 'no_such_name'), hasattr(babilab.suite, 'no_such_name'))\n"
              "from babilab.suite import export_hub\n"
              "print(callable(export_hub))")
    assert out.splitlines() == ["False False", "True"]

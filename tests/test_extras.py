"""A runtime command that needs an optional extra says which one, in one line, exit 2."""
from __future__ import annotations

import subprocess
import sys


from visionlab.cli_errors import USER_ERROR_EXIT
from visionlab.extras import missing_extra


def test_missing_extra_names_the_extra():
    line = missing_extra(ModuleNotFoundError("No module named 'torch'", name="torch"))
    assert "visionlab[train]" in line and "torch" in line
    assert "visionlab[plot]" in missing_extra(ModuleNotFoundError(name="matplotlib.pyplot"))
    assert missing_extra(ModuleNotFoundError(name="not_ours")) is None


def test_run_app_prints_one_line_with_brackets_kept(tmp_path):
    """A real typer app whose command imports a module that is not installed (as torch is not in the runtime)."""
    script = tmp_path / "app.py"
    script.write_text(
        "import typer\nfrom visionlab.cli_errors import run_app\napp = typer.Typer()\n"
        "@app.command()\ndef go():\n    raise ModuleNotFoundError(\"No module named 'mlflow'\", name='mlflow')\n"
        "@app.command()\ndef other():\n    import module_that_is_not_there\n"
        "run_app(app)\n")
    r = subprocess.run([sys.executable, str(script), "go"], capture_output=True, text=True)
    assert r.returncode == USER_ERROR_EXIT
    lines = [x for x in (r.stdout + r.stderr).splitlines() if x.strip()]
    assert lines == ["error: this needs mlflow, which the light runtime does not install: "
                     "pip install 'visionlab[track]' (or 'visionlab[all]')"]
    r = subprocess.run([sys.executable, str(script), "other"], capture_output=True, text=True)
    assert r.returncode == 1 and "Traceback" in r.stderr  # not one of ours: a bug keeps its traceback

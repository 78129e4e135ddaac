"""The Python API mirrors the CLI: every top-level command has a Python twin at ``visionlab.<verb>`` that takes
the same arguments under the same names (a config-generated flag is a keyword of the twin's ``**fields``)."""
from __future__ import annotations

import inspect

import pytest
from typer.main import get_command

import visionlab
from visionlab.cli import app
from visionlab.config import RunConfig
from visionlab.detect.config import SERVE_FIELDS, DetectConfig

TWIN = {"runs": "list_runs", "lr-find": "lr_find"}  # `visionlab.runs` is the run-folder module
# flags a twin takes through **fields, from the typed config its command's flags were generated from
CONFIG_FIELDS = {"train": set(RunConfig.model_fields), "evaluate": set(RunConfig.model_fields),
                 "lr-find": set(RunConfig.model_fields),
                 "detect": set(DetectConfig.model_fields), "serve": set(SERVE_FIELDS)}
# documented differences: predict's positional list may start with the model ([RUN] IMAGES...), the twin
# names the two parts; the demo's twin is the flagship job itself
SPLIT = {"predict": {"inputs": ("run", "inputs")}}


def _commands():
    root = get_command(app)
    return {n: c for n, c in root.commands.items() if not hasattr(c, "commands")}


def _flag_names(command) -> set[str]:
    """The option and argument names a user types, as Python names (--max-upload-mb -> max_upload_mb)."""
    names = set()
    for p in command.params:
        if p.name == "help":
            continue
        opt = next((o for o in p.opts if o.startswith("--")), None) if p.opts else None
        names.add((opt or p.name).lstrip("-").split("/")[0].replace("-", "_") if opt else p.name)
    return names


def test_every_command_has_a_python_twin():
    missing = [n for n in _commands() if getattr(visionlab, TWIN.get(n, n), None) is None]
    assert missing == []
    assert set(_commands()) >= {"train", "evaluate", "predict", "compare", "detect", "export", "models", "serve"}


@pytest.mark.parametrize("name", sorted(_commands()))
def test_twin_takes_the_same_arguments(name):
    twin = getattr(visionlab, TWIN.get(name, name))
    params = inspect.signature(twin).parameters
    has_fields = any(p.kind == p.VAR_KEYWORD for p in params.values())
    wanted = set()
    for flag in _flag_names(_commands()[name]):
        wanted |= set(SPLIT.get(name, {}).get(flag, (flag,)))
    missing = {f for f in wanted if f not in params and not (has_fields and f in CONFIG_FIELDS.get(name, ()))}
    assert missing == set(), f"visionlab.{TWIN.get(name, name)} lacks {sorted(missing)} that `visionlab {name}` takes"


def test_inputs_as_str_path_or_list(tmp_path):
    """predict and detect take one path as a str or a Path, or a list, as the CLI takes one or many."""
    from pathlib import Path

    photo = Path(visionlab.__file__).parent / "assets" / "photos" / "maksssksksss559.jpg"
    one = visionlab.predict(None, str(photo), tmp_path / "a", annotate=False)
    many = visionlab.predict(None, [photo, photo], tmp_path / "b", annotate=False)
    assert len(one["predictions"]) == 1 and len(many["predictions"]) == 2
    faces = visionlab.detect(str(photo))
    summary = visionlab.detect(photo.parent, out=tmp_path / "d", quality="fast")
    assert len(faces) >= 10 and summary["processed"] == len(list(photo.parent.glob("*.jp*g")))
    assert [m["model"] for m in visionlab.models()] == sorted(m["model"] for m in visionlab.models())

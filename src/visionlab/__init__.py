"""visionlab: image classification from a folder of images to a deployed, explained model."""
from .errors import ConfigError, DataError, ModelError, VisionlabError

from .version import __version__  # noqa: E402,F401

# `visionlab runs` on the CLI is `visionlab.list_runs()` here: `visionlab.runs` is the run-folder module.
_API = {"train", "evaluate", "demo", "lr_find", "list_runs", "load_run", "predict", "compare", "detect", "export",
        "models", "serve"}

__all__ = ["ConfigError", "DataError", "ModelError", "VisionlabError", "__version__", *sorted(_API)]


def __getattr__(name: str):
    # The API imports torch; `import visionlab` stays light until a verb is used.
    if name == "demo":  # flagship.py: the demo trains through the API, so it sits above it
        from .flagship import demo
        return demo
    if name in ("train", "evaluate", "lr_find"):
        from . import api
        return getattr(api, name)
    if name in ("load_run", "list_runs"):
        from . import runs
        return getattr(runs, name)
    if name == "predict":
        from .predict import predict
        return predict
    if name in ("detect", "models", "serve"):  # subpackages that are also verbs (verbs.py)
        import importlib
        return importlib.import_module(f".{name}", __name__)
    if name == "export":
        from .inference.export import export_run
        return export_run
    if name == "compare":
        from .compare import compare
        return compare
    raise AttributeError(f"module 'visionlab' has no attribute {name!r}")

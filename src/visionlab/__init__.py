"""visionlab: image classification from a folder of images to a deployed, explained model."""
from .errors import ConfigError, DataError, ModelError, VisionlabError

__version__ = "0.1.0"

# `visionlab runs` on the CLI is `visionlab.list_runs()` here: `visionlab.runs` is the run-folder module.
_API = {"train", "evaluate", "demo", "lr_find", "list_runs", "load_run", "predict", "compare", "detect"}

__all__ = ["ConfigError", "DataError", "ModelError", "VisionlabError", "__version__", *sorted(_API)]


def __getattr__(name: str):
    # The API imports torch; `import visionlab` stays light until a verb is used.
    if name in ("train", "evaluate", "demo", "lr_find"):
        from . import api
        return getattr(api, name)
    if name in ("load_run", "list_runs"):
        from . import runs
        return getattr(runs, name)
    if name == "predict":
        from .predict import predict
        return predict
    if name == "detect":  # the subpackage, callable: visionlab.detect("photo.jpg") -> faces
        import importlib
        return importlib.import_module(".detect", __name__)
    if name == "compare":
        from .compare import compare
        return compare
    raise AttributeError(f"module 'visionlab' has no attribute {name!r}")

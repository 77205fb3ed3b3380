"""Corrupt and hostile data in the real on-disk formats, unwritable outputs, file modes.

Each fault leaves the outputs of the run already done as they were.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
from pathlib import Path

import pytest
from faults_support import (
    OUTPUTS,
    PARAMS,
    malicious_pickle,
    one_line_error,
    snapshot,
    stage,
    train_argv,
)

from dspike.data import CorruptDataError, build_dataset, materialize_bundled
from dspike.io import atomic_outputs
from harness.params import deep_merge
from pipelines import prepare, train

DOWNLOAD = {"data": {"source": "download"}}  # read data.root as real data: nothing rewritten


def _exit_2(main, argv, capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    return capsys.readouterr().err


def test_truncated_mnist_in_a_stage_is_one_line_naming_the_file(ws, monkeypatch, capsys):
    monkeypatch.chdir(ws)
    (ws / "params.yaml").write_text(json.dumps(deep_merge(PARAMS, DOWNLOAD)))
    bad = ws / "data/raw/MNIST/raw/train-images-idx3-ubyte"
    bad.write_bytes(bad.read_bytes()[:10_000])
    before = snapshot(ws, *OUTPUTS)
    one_line_error(_exit_2(train.main, train_argv("a")[1:], capsys), str(bad.relative_to(ws)))
    assert snapshot(ws, *OUTPUTS) == before


def test_missing_dataset_in_a_stage_names_its_path_and_params_keys(tmp_path, monkeypatch, capsys):
    """What ``dvc repro`` in a fresh clone prints first: the library's advice (download=True)
    said in the params keys a stage reads."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(json.dumps(deep_merge(PARAMS, DOWNLOAD)))
    (tmp_path / "data/raw").mkdir(parents=True)
    err = _exit_2(prepare.main, ["mnist", "--out", "data/manifests/mnist.json"], capsys)
    one_line_error(err, "data/raw/MNIST/raw/train-images-idx3-ubyte", "In params.yaml:",
                   "data.download: true", "data.root", "data.source: bundled")  # fmt: skip
    assert not (tmp_path / "data/manifests/mnist.json").exists()


def test_data_root_that_is_a_file_is_one_line_naming_it(ws, monkeypatch, capsys):
    monkeypatch.chdir(ws)
    (ws / "not-a-dir").write_text("x")
    (ws / "params.yaml").write_text(json.dumps(deep_merge(PARAMS, {"data": {"root": "not-a-dir"}})))
    before = snapshot(ws, *OUTPUTS)
    one_line_error(_exit_2(train.main, train_argv("a")[1:], capsys), "not-a-dir")
    assert snapshot(ws, *OUTPUTS) == before


def test_cifar_pickle_vouched_for_by_its_folder_is_not_unpickled(tmp_path, monkeypatch, capsys):
    """A code-running pickle, padded to the bundled file's size, its MD5 written into the bundle
    manifest beside it: ``prepare cifar10`` refuses it, naming the file; the marker never
    appears."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(json.dumps(PARAMS))
    root = tmp_path / "data/raw"
    materialize_bundled("cifar10", root)
    bad = root / "cifar-10-batches-py/data_batch_1"
    marker = tmp_path / "PWNED"
    blob = malicious_pickle(marker)
    blob += b"\0" * (bad.stat().st_size - len(blob))
    bad.write_bytes(blob)
    manifest = root / ".dspike-bundled-cifar10.json"
    info = json.loads(manifest.read_text())
    info["files"]["cifar-10-batches-py/data_batch_1"]["md5"] = hashlib.md5(blob).hexdigest()
    manifest.write_text(json.dumps(info))
    err = _exit_2(prepare.main, ["cifar10", "--out", "data/manifests/cifar10.json"], capsys)
    one_line_error(err, "data_batch_1", "refused to unpickle")
    assert not marker.exists()
    assert not (tmp_path / "data/manifests/cifar10.json").exists()


@pytest.fixture(scope="module")
def imagenet(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("imagenet")
    materialize_bundled("imagenet", root)
    return root


def test_imagenet_val_lacking_a_class_keeps_train_labels(imagenet, tmp_path):
    root = shutil.copytree(imagenet, tmp_path / "in")
    train_set = build_dataset("imagenet", root, train=True, crop_size=32, resize_size=36)
    gone = sorted((root / "val").iterdir())[0]
    shutil.rmtree(gone)
    val = build_dataset("imagenet", root, train=False, crop_size=32, resize_size=36)
    assert val.class_to_idx == train_set.class_to_idx
    for path, label in val.samples:
        assert label == train_set.class_to_idx[Path(path).parent.name]
    assert train_set.class_to_idx[gone.name] not in set(val.targets)


def test_imagenet_val_class_missing_from_train_is_named(imagenet, tmp_path):
    root = shutil.copytree(imagenet, tmp_path / "in")
    extra = root / "val" / "n00000001"
    extra.mkdir()
    shutil.copy(next((root / "val").rglob("*.JPEG")), extra / "x.JPEG")
    with pytest.raises(CorruptDataError, match="n00000001"):
        build_dataset("imagenet", root, train=False)


def test_read_only_output_folder_fails_before_training(ws):
    """As root, with CAP_DAC_OVERRIDE dropped (setpriv), so the mode bits really apply."""
    if not shutil.which("setpriv"):
        pytest.skip("setpriv (util-linux) is needed to drop CAP_DAC_OVERRIDE")
    before = snapshot(ws, *OUTPUTS)
    (ws / "metrics").chmod(0o555)
    try:
        done = stage(ws, *train_argv("a"),
                     prefix=("setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"))
    finally:
        (ws / "metrics").chmod(0o755)
    assert done.returncode == 2, done.stderr
    one_line_error(done, "metrics", "Permission denied")
    assert "epoch 1/" not in done.stdout  # found before training, not after it
    assert snapshot(ws, *OUTPUTS) == before


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_outputs_follow_the_umask(ws, monkeypatch, umask):
    import os

    monkeypatch.chdir(ws)
    old = os.umask(umask)
    try:
        train.main(train_argv("a", 1)[1:])
    finally:
        os.umask(old)
    for folder in OUTPUTS:
        (path,) = (ws / folder).glob("a.*")
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path


def test_outputs_are_committed_as_a_set(tmp_path):
    """A failure while writing the set (an output folder that is a file) or while renaming it
    (a target that is a folder) leaves the previous set in place, and no temporary files."""
    old = {name: tmp_path / name for name in ("m.pt", "m.json", "m.csv")}
    for path in old.values():
        path.write_text(f"old {path.name}")
    (tmp_path / "blocker").write_text("a file, not a folder")
    broken = [
        {**old, "csv": tmp_path / "blocker" / "m.csv"},  # cannot even create its temp file
        {**old, "dir": tmp_path / "a-folder"},  # os.replace onto a folder fails, last
    ]
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "a-folder" / "keep").write_text("")
    for paths in broken:
        with pytest.raises(OSError), atomic_outputs(paths) as tmp:
            for key, path in tmp.items():
                path.write_text(f"new {key}")
        assert {p.name: p.read_text() for p in old.values()} == {
            p.name: f"old {p.name}" for p in old.values()
        }
        assert not list(tmp_path.glob(".*.tmp"))

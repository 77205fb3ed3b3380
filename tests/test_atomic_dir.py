"""dspike.io.atomic_dir: a folder output is replaced whole, or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from dspike.io import atomic_dir


def test_atomic_dir_replaces_the_folder_only_on_success(tmp_path: Path) -> None:
    out = tmp_path / "cache"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(out) as tmp:
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("killed mid-write")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]  # no temporary left
    assert [p.name for p in out.iterdir()] == ["old.txt"]
    with atomic_dir(out) as tmp:
        (tmp / "new.txt").write_text("new")
        assert not (out / "new.txt").exists()  # nothing visible before it is complete
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]
    assert [p.name for p in out.iterdir()] == ["new.txt"]

"""Errors raised by the dataset layer: a missing dataset or a corrupt file, each naming the path."""

from __future__ import annotations

from pathlib import Path


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is not on disk where its loader looks; the message says where and how to get it."""

    def __init__(self, name: str, path: str | Path, how: str) -> None:
        self.name, self.path, self.how = name, Path(path), how
        super().__init__(f"{name}: dataset not found at {self.path}. {how}")

    def __str__(self) -> str:  # FileNotFoundError would otherwise print only the first argument
        return self.args[0]


class CorruptDataError(ValueError, RuntimeError):
    """A dataset file exists but cannot be read (truncated, wrong checksum, wrong format).

    A ``ValueError`` (a bad input, which stages report in one line with exit status 2) and, as
    before, a ``RuntimeError``."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path, self.reason = Path(path), reason
        super().__init__(f"corrupt or unreadable data file {self.path}: {reason}")

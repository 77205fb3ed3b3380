"""tonic's CIFAR10DVS, accepting an extracted tree with fewer than 1,000 recordings.

tonic 1.7 treats a root holding under 1,000 ``.aedat4`` files as not downloaded and starts a
download. This thin subclass changes only that count (``min_files``) and turns a download attempt
into ``DatasetNotFoundError``; the zip-presence check, the directory walk, the labels and
``__getitem__`` are tonic's own. Imported lazily: tonic is the optional ``data`` extra.
"""

from __future__ import annotations

from tonic.datasets import CIFAR10DVS as _TonicCIFAR10DVS

from .errors import DatasetNotFoundError
from .registry import DATASETS


class CIFAR10DVS(_TonicCIFAR10DVS):
    """Same class name as tonic's, so the data still lives in ``<root>/CIFAR10DVS/``."""

    min_files = 1

    def _check_exists(self) -> bool:
        return self._is_file_present() and self._folder_contains_at_least_n_files_of_type(
            self.min_files, ".aedat4"
        )

    def download(self) -> None:
        how = DATASETS["cifar10dvs"].how_to_get
        raise DatasetNotFoundError("cifar10dvs", self.location_on_system, how)

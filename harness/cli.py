"""What every stage module shares: argument parsing, params, and errors that name the key."""

from __future__ import annotations

import argparse
import atexit
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from dspike.data.errors import DatasetNotFoundError
from dspike.io import DiskFullError, is_disk_full

from .params import ParamsChangedError, ParamsError, check_unchanged, load_params

__all__ = ["RECORD_IMPORTS", "fail", "out_dir_argument", "stage_main"]

# Set to a folder, every stage writes there the project files it loaded (the tests compare them
# with the stage's deps in dvc.yaml: a lazy import that escapes them fails the check).
RECORD_IMPORTS = "DSPIKE_RECORD_IMPORTS"
# the library's download=True and root, as a stage's params name them
PARAMS_FOR_DATA = (
    "download=True is data.download: true; the root is data.root (ImageNet: "
    "data.imagenet.root); data.source: bundled runs on the bundled samples"
)


def out_dir_argument(parser: argparse.ArgumentParser) -> None:
    """``--out DIR``: where a stage writes its outputs (dvc.yaml names it)."""
    parser.add_argument("--out", type=Path, required=True, help="output directory")


def stage_main(
    run: Callable[[dict, argparse.Namespace], None],
    description: str,
    argv: Sequence[str] | None = None,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> None:
    """Parse ``--params``, load params.yaml, call ``run(params, args)``.

    A bad key, a missing file or dataset (:class:`FileNotFoundError`, which
    ``dspike.data.DatasetNotFoundError`` is), another OS error on a named file, or a bad value
    (``ValueError``, which ``dspike.data.CorruptDataError`` and ``dspike.engine.ConfigError``
    are) ends the stage with one line naming it and exit status 2, instead of a traceback wall;
    outputs already written stay (they are written atomically). If keys the stage read changed
    in the params file while it ran, it ends with one line naming them and exit status 1
    (:func:`harness.params.check_unchanged`), so DVC does not record values it did not use. A
    write that finds no room is one line naming the file system and the space needed, exit
    status 1. Ctrl-C (``KeyboardInterrupt``) outside a training loop, which checkpoints
    instead, is one line and exit status 130.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--params", default="params.yaml", help="params file (default: %(default)s)"
    )
    if add_arguments:
        add_arguments(parser)
    args = parser.parse_args(argv)
    if os.environ.get(RECORD_IMPORTS):
        atexit.register(_record_imports, Path(os.environ[RECORD_IMPORTS]))
    try:
        params = load_params(args.params)
        run(params, args)
        check_unchanged(params, "; DVC will not record its outputs")
    except ParamsChangedError as err:  # edited while it ran: not a bad input, exit status 1
        fail(err, status=1)
    except DatasetNotFoundError as err:  # its advice speaks the library's arguments
        fail(f"{err} In {args.params}: {PARAMS_FOR_DATA}")
    except (ParamsError, ValueError) as err:
        fail(err)
    except OSError as err:  # a missing file, a data root that is a file, an unwritable output
        if is_disk_full(err):  # no room: one line naming the file system, exit status 1
            if not isinstance(err, DiskFullError):
                err = DiskFullError(err, err.filename or ".")
            fail(err, status=1)
        fail(f"{err.filename}: {err.strerror}" if err.filename and err.strerror else err)
    except KeyboardInterrupt:
        print("stopped: SIGINT (Ctrl-C); outputs written so far are whole (each is written "
              "atomically); run the same command again", file=sys.stderr)  # fmt: skip
        raise SystemExit(130) from None


def fail(err: object, status: int = 2) -> NoReturn:
    """Print ``error: <err>`` as one line on stderr and exit with ``status``."""
    print("error: " + " ".join(str(err).split()), file=sys.stderr)
    raise SystemExit(status) from None


def _record_imports(folder: Path) -> None:
    cwd = Path.cwd().resolve()
    loaded = set()
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if path and name.split(".")[0] in ("dspike", "harness", "paper", "pipelines"):
            loaded.add(os.path.relpath(Path(path).resolve(), cwd))
    folder.mkdir(parents=True, exist_ok=True)
    stage = os.environ.get("DVC_STAGE", Path(sys.argv[0]).stem)
    record = {"stage": stage, "argv": sys.argv, "files": sorted(loaded)}
    (folder / f"{stage}-{os.getpid()}.json").write_text(json.dumps(record, indent=1))

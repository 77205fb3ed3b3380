"""What every stage module shares: argument parsing, params, and errors that name the key."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from .params import ParamsError, load_params

__all__ = ["stage_main"]


def stage_main(
    run: Callable[[dict, argparse.Namespace], None],
    description: str,
    argv: Sequence[str] | None = None,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> None:
    """Parse ``--params``, load params.yaml, call ``run(params, args)``.

    A bad key, a missing dataset or a bad value ends the stage with one line naming it and
    exit status 2, instead of a traceback wall; outputs already written stay (they are
    written atomically).
    """
    from dspike.data import DatasetNotFoundError

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--params", default="params.yaml", help="params file (default: %(default)s)"
    )
    if add_arguments:
        add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        run(load_params(args.params), args)
    except (ParamsError, DatasetNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None

"""``python -m tools.plan``: the compute plan of ``dvc repro`` before it starts.

    python -m tools.plan [--root .] [--device cpu|cuda] [--ips resnet18:6=850 ...]
                             [--throughput FILE] [--clock wall|cpu] [--gpus N] [--all]
    python -m tools.plan measure [--device cpu|cuda] [--stages PATTERN ...]
                             [--steps 3] [--shapes-only | --fixed-only] [--clock wall|cpu] [--all]

The plan lists every stage still to run (``--all``: every stage, as ``dvc repro --force``)
with its dataset, sizes, epochs, steps, T and model, its estimated time on the device from that
device's throughput table (``plans/throughput-<device>.json``, written by ``measure``; or
``--ips MODEL:T=IMAGES_PER_S`` by hand), the total device-hours, and the independent chains
(per dataset and seed) with one ``dvc repro`` per device to run them at once.
``--clock cpu`` (CPU only) counts CPU seconds instead of wall seconds, in a table of its own
(:data:`tools.plan.rates.CLOCKS`): it checks the plan on a machine busy with other jobs.
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
from pathlib import Path

from harness.params import load_params

from .dag import load_dag
from .rates import CLOCKS, Throughput, device_name, parse_given, table_path
from .report import build_plan, print_plan
from .workload import workload


def _parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", type=Path, default=Path("."), help="the DVC project")
    parser.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda if present")
    parser.add_argument("--throughput", type=Path, help="table file (default: per device)")
    parser.add_argument("--all", action="store_true", help="every stage, not only changed ones")
    parser.add_argument(
        "--clock", choices=CLOCKS, default="wall", help="wall seconds, or CPU seconds (CPU only)"
    )
    return parser


def _table(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[Throughput, Path]:
    """The device's throughput table; bad input ends with a one-line error (exit 2)."""
    if not (args.root / "dvc.yaml").is_file() or not (args.root / "params.yaml").is_file():
        parser.error(f"--root {args.root}: no dvc.yaml and params.yaml there")
    kind = args.device
    if kind is None:
        import torch

        kind = "cuda" if torch.cuda.is_available() else "cpu"
    if args.clock == "cpu" and kind != "cpu":
        parser.error("--clock cpu counts CPU seconds: only with --device cpu")
    name = device_name(kind)
    path = args.throughput or table_path(args.root.resolve(), name, args.clock)
    try:
        table = Throughput.load(path, name, kind)
    except ValueError as err:
        parser.error(str(err))
    if path.is_file() and table.clock != args.clock:
        parser.error(f"{path} counts {table.clock} seconds, not --clock {args.clock}")
    table.clock = args.clock
    return table, path


def plan_main(argv: list[str]) -> None:
    parser = _parser("python -m tools.plan", __doc__)
    parser.add_argument(
        "--ips",
        action="append",
        default=[],
        metavar="MODEL:T=IMAGES_PER_S",
        help="a throughput given by hand (images/s; T=1: the ANN)",
    )
    parser.add_argument("--gpus", type=int, help="devices to spread the chains over")
    args = parser.parse_args(argv)
    table, path = _table(parser, args)
    try:
        table.given = parse_given(args.ips)
    except ValueError as err:
        parser.error(str(err))
    print(f"throughput table: {path}{'' if path.is_file() else ' (none yet)'}")
    print_plan(build_plan(args.root.resolve(), table, args.all), args.gpus)


def measure_main(argv: list[str]) -> None:
    parser = _parser(
        "python -m tools.plan measure",
        "Measure this device's rates for the stages to run; store them per device.",
    )
    parser.add_argument(
        "--stages",
        nargs="+",
        default=["*"],
        metavar="PATTERN",
        help="DVC stages (glob), e.g. 'cifar10_*@0'",
    )
    parser.add_argument("--steps", type=int, default=3, help="timed steps per measurement")
    parser.add_argument(
        "--shapes-only",
        action="store_true",
        help="only step shapes: keep the stored start-up and DVC figures",
    )
    parser.add_argument(
        "--fixed-only", action="store_true", help="only the start-up and DVC figures: no step shape"
    )
    args = parser.parse_args(argv)
    import torch

    from .measure import measure_dvc, measure_key, measure_processes

    root = args.root.resolve()
    table, path = _table(parser, args)
    params = load_params(root / "params.yaml")
    dag = load_dag(root, args.all)
    stages = [s for s in dag.to_run() if any(fnmatch.fnmatchcase(s, p) for p in args.stages)]
    stages = [] if args.fixed_only else stages
    shapes: dict = {}  # StepKey -> (units, config)
    for stage in stages:
        work = workload(stage, dag.cmds[stage], params)
        for term in work.terms:
            if term.key is not None:
                units, config = shapes.setdefault(term.key, (set(), work.configs.get(term.key)))
                units.add(term.unit)
    print(f"{table.device}: {len(shapes)} step shapes of {len(stages)} stages -> {path}")
    for key, (units, config) in shapes.items():
        device = torch.device(table.kind)
        entry = measure_key(key, units, config, device, steps=args.steps, clock=table.clock)
        table.entries[key.label] = entry
        table.save(path)
        rates = ", ".join(f"{k} {v:.3g}" for k, v in entry.items() if k.endswith(("_ips", "_s")))
        print(f"  {key.label}: {rates}")
    if not args.shapes_only:
        cifar = [s for s in params.stages if params.stage(s).dataset in ("cifar10", "cifar100")]
        run = "cifar10_ann" if "cifar10_ann" in params.stages else cifar[0]
        table.fixed.update(measure_processes(root, params, run, table.kind, table.clock))
        table.fixed.update(measure_dvc(root, table.clock))
        print("  " + ", ".join(f"{k} {v:.3g} s" for k, v in table.fixed.items()))
    table.save(path)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["measure"]:
        measure_main(argv[1:])
    else:
        plan_main(argv)


if __name__ == "__main__":
    main()

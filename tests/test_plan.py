"""The compute plan (``python -m tools.plan``) on the real dvc.yaml: paper-scale and smoke
workloads, the arithmetic, the chains, and its estimate against a real smoke stage's run."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from engine_support import one_thread

from dspike.data import DATASETS, build_dataset, materialize_bundled
from harness.params import REPO_ROOT, deep_merge, load_params, parse_params
from tools.plan.__main__ import main as plan_cli
from tools.plan.dag import Chain, Dag, assign, load_dag, upstream
from tools.plan.measure import measure_key
from tools.plan.rates import Throughput, estimate, now, parse_given, run_timed, table_path
from tools.plan.report import build_plan, chain_script
from tools.plan.workload import StepKey, Term, Workload, launcher_processes, workload

PAPER = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
SMOKE = deep_merge(PAPER, yaml.safe_load((REPO_ROOT / "params.smoke.yaml").read_text()))


def _project(root: Path, params: dict) -> Path:
    """The real dvc.yaml with ``params`` as a DVC project where nothing has run yet."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO_ROOT / "dvc.yaml", root / "dvc.yaml")
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    dvc = Path(sys.executable).with_name("dvc")
    subprocess.run([str(dvc), "init", "--no-scm", "-q"], cwd=root, check=True)
    return root


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> Path:
    return _project(tmp_path_factory.mktemp("smoke"), SMOKE)


def _works(root: Path) -> dict[str, Workload]:
    params = load_params(root / "params.yaml")
    return {s: workload(s, cmd, params) for s, cmd in load_dag(root, True).cmds.items()}


def _units(work: Workload) -> dict[str, float]:
    out: dict[str, float] = {}
    for term in work.terms:
        out[term.unit] = out.get(term.unit, 0.0) + term.count
    return out


def test_paper_scale_plan_without_data(tmp_path, capsys):
    root = _project(tmp_path / "paper", PAPER)
    plan_cli(["--root", str(root), "--device", "cpu"])
    out = capsys.readouterr().out
    assert "61 of 61 stages to run" in out and "Measure them: python -m tools.plan" in out
    works = _works(root)
    snn = works["snn_t6@cifar10-0"]
    assert (snn.train_images, snn.test_images, snn.epochs, snn.batch) == (50_000, 10_000, 300, 128)
    assert (snn.model, snn.time_steps, snn.steps) == ("resnet18", 6, 391 * 300)
    alg1 = next(t for t in snn.terms if t.unit == "alg1")
    assert alg1.count == 300 and alg1.key.batch == PAPER["fdg"]["batch_size"]
    assert _units(works["ann@cifar10-0"]).keys() == {
        "train",
        "eval",
        "checkpoint",
        "warmup",
        "startup:train",
    }
    dvs = works["dvs_snn_t10@0"]
    assert (dvs.train_images, dvs.test_images) == (9_000, 1_000)
    assert snn.terms[0].key.sample == (3, 32, 32) and dvs.terms[0].key.sample == (10, 2, 48, 48)
    assert _units(works["prepare_dvs"])["dvs_recording"] == 10_000
    # Table 1: a rectangular-SG run and 6 FDG runs of 10 epochs over 60k MNIST, each evaluated
    table1 = _units(works["table1"])
    assert table1["train"] == 7 * 10 * 60_000 and table1["eval"] == 7 * 10_000
    assert table1["fdg"] == 6 * 10 * 469
    assert _units(works["fig2"])["fdg"] == 2 * 5 * 100 * 3  # 2 modes, 5 epochs, 100 its, 3 eps
    assert works["imagenet_vgg16_t5@0"].kind == "skipped"  # data.imagenet.root is ""
    assert _units(works["energy"])["activity"] == 2 * 10_000
    assert _units(works["tables"]) == {"startup:report": 1}  # its own process, measured apart


def test_bundled_sizes_are_what_the_real_loaders_read(tmp_path):
    for name in ("mnist", "cifar10", "imagenet"):
        root = tmp_path / name
        materialize_bundled(name, root)
        sets = [build_dataset(name, root, train=train) for train in (True, False)]
        assert tuple(len(s) for s in sets) == DATASETS[name].bundled_splits, name


def test_smoke_sizes_are_the_bundled_splits_capped(smoke):
    works = _works(smoke)
    cap, snn = SMOKE["train"], SMOKE["stages"]["cifar10_snn_t6"]
    # the ANN takes every bundled image (its max_train_samples 0), test images are uncapped (0)
    assert (works["ann@cifar10-0"].train_images, works["ann@cifar10-0"].test_images) == (
        9000, 1000)  # fmt: skip
    assert works["snn_t6@cifar10-0"].train_images == snn["max_train_samples"]
    assert works["tit_t4@cifar10-0"].train_images == cap["max_train_samples"]
    assert works["imagenet_resnet34_t6@0"].train_images == 50
    assert (works["dvs_snn_t10@0"].train_images, works["dvs_snn_t10@0"].test_images) == (270, 30)
    table1 = works["table1"]
    assert (table1.train_images, table1.test_images) == (
        SMOKE["studies"]["toy"]["train_size"],
        1000,
    )


def test_launcher_processes_and_ddp_device_hours():
    assert launcher_processes(["python", "-m"]) == 1
    assert launcher_processes(["torchrun", "--standalone", "--nproc_per_node=4", "-m"]) == 4
    assert launcher_processes(["torchrun", "--nnodes=1:8", "--nproc-per-node", "4", "-m"]) == 32
    key = StepKey("resnet18", "snn", 6, (), (3, 32, 32), 32)
    table = Throughput("x", "cpu", {"startup:train": 10.0}, {key.label: {"train_ips": 100.0}})
    one = Workload(
        "s", "train", processes=1, terms=(Term("train", key, 1000), Term("startup:train", None, 1))
    )
    four = Workload(
        "s", "train", processes=4, terms=(Term("train", key, 250), Term("startup:train", None, 1))
    )
    assert estimate(one, table).seconds == pytest.approx(20.0)
    assert estimate(four, table).seconds == pytest.approx(12.5)
    assert estimate(four, table).device_hours == pytest.approx(4 * 12.5 / 3600)


def test_estimate_sums_counts_times_rates_and_dvc_grows_with_the_lock():
    key = StepKey("resnet18", "snn", 6, (("width", 8),), (3, 32, 32), 32)
    fdg_key = StepKey("resnet18", "snn", 6, (("width", 8),), (3, 32, 32), 4)
    table = Throughput(
        "x",
        "cpu",
        {"startup:train": 10.0, "dvc": 1.0, "dvc_per_locked": 0.1},
        {
            key.label: {"train_ips": 40.0, "eval_ips": 100.0, "checkpoint_s": 0.5, "warmup_s": 2.0},
            fdg_key.label: {"alg1_s": 1.5},
        },
    )
    work = Workload(
        "s",
        "train",
        terms=(
            Term("train", key, 3 * 160),
            Term("eval", key, 3 * 100),
            Term("checkpoint", key, 3),
            Term("warmup", key, 1),
            Term("alg1", fdg_key, 3),
            Term("startup:train", None, 1),
        ),
    )
    est = estimate(work, table, locked=20)
    assert est.seconds == pytest.approx(1.0 + 2.0 + 10.0 + 2.0 + 3 * (4.0 + 1.0 + 0.5 + 1.5))
    assert est.parts["alg1"] == pytest.approx(4.5) and est.parts["dvc"] == pytest.approx(3.0)
    # a step shape not measured: no figure is invented; a per-device figure missing counts 0
    table.entries.pop(fdg_key.label)
    assert estimate(work, table).seconds is None and estimate(work, table).missing == (fdg_key,)
    given = Throughput("gpu", "cuda", given=parse_given(["resnet18:6=80"]))
    assert estimate(Workload("s", "train", terms=work.terms[:4]), given).seconds == pytest.approx(
        (480 + 300) / 80
    )
    with pytest.raises(ValueError, match="MODEL:T=IMAGES_PER_S"):
        parse_given(["resnet18=80"])


def test_changed_stages_and_downstream_run_frozen_never():
    deps = {"a": frozenset(), "b": frozenset({"a"}), "c": frozenset({"b"}), "d": frozenset()}
    assert Dag({s: "" for s in deps}, deps, frozenset({"b"})).to_run() == ["b", "c"]
    frozen = Dag({s: "" for s in deps}, deps, frozenset({"a"}), frozenset({"c"}))
    assert frozen.to_run() == ["a", "b"]
    locked = Dag({s: "" for s in deps}, deps, frozenset({"b", "d"}), locked=frozenset({"a", "b"}))
    assert locked.locked_before(locked.to_run()) == [2, 2, 3]


def test_chains_of_the_smoke_dag_are_independent_per_dataset_and_seed(smoke):
    table = Throughput(
        "x", "cpu", {"startup:train": 1.0, "startup:study": 1.0, "startup:prepare": 1.0}
    )
    plan = build_plan(smoke, table)
    split, deps = plan.split, plan.dag.deps
    assert "tables" in split.after
    assert {"prepare@cifar10", "prepare@cifar100", "prepare_dvs"} <= set(split.before)
    placed = [s for c in split.chains for s in c.stages]
    assert len(placed) == len(set(placed))
    assert set(placed) | set(split.before) | set(split.after) == set(plan.dag.cmds)
    for chain in split.chains:
        others = {s for c in split.chains if c is not chain for s in c.stages}
        assert not upstream(deps, chain.stages) & others, chain.name
        assert set(chain.stages) <= upstream(deps, chain.targets) | set(chain.targets)
    names = {c.name for c in split.chains}
    assert {f"{d}/seed{s}" for d in ("cifar10", "cifar100") for s in SMOKE["seeds"]} <= names
    assert next(c for c in split.chains if "energy" in c.stages).name == "cifar10/seed0"
    lines, total = chain_script(plan, gpus=2)
    assert lines[1].startswith("dvc repro prepare") and lines[-1] == "dvc repro tables"
    parallel = [line for line in lines if line.startswith("CUDA_VISIBLE_DEVICES=")]
    assert len(parallel) == 2 and all("dvc --wait-for-lock repro" in p for p in parallel)
    assert total <= plan.seconds(plan.order)
    _, total = chain_script(plan)  # one device per chain: faster than one after another
    assert total < plan.seconds(plan.order)


def test_chains_spread_over_devices_costliest_first():
    chains = [Chain(n, (n,), (n,)) for n in "abcd"]
    slots = assign(chains, {"a": 10.0, "b": 7.0, "c": 5.0, "d": 4.0}, 2)
    assert [[c.name for c in slot] for slot in slots] == [["a", "d"], ["b", "c"]]
    even = assign(chains, dict.fromkeys("abcd", 1.0), 4)  # unknown costs: one chain per device
    assert len(even) == 4


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        plan_cli(["--root", str(tmp_path)])
    assert exit_.value.code == 2 and "--root" in capsys.readouterr().err
    root = _project(tmp_path / "p", SMOKE)
    bad = tmp_path / "t.json"
    bad.write_text("{}")
    with pytest.raises(SystemExit) as exit_:
        plan_cli(["--root", str(root), "--device", "cpu", "--throughput", str(bad)])
    assert exit_.value.code == 2 and "not a throughput table" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        plan_cli(["--root", str(root), "--device", "cuda", "--clock", "cpu"])
    assert exit_.value.code == 2 and "--clock cpu" in capsys.readouterr().err
    wall = str(tmp_path / "wall.json")
    Throughput("AMD EPYC", "cpu", fixed={"dvc": 1.0}).save(Path(wall))
    with pytest.raises(SystemExit) as exit_:
        plan_cli(["--root", str(root), "--device", "cpu", "--clock", "cpu", "--throughput", wall])
    assert exit_.value.code == 2 and "counts wall seconds" in capsys.readouterr().err


def test_cpu_clock_counts_a_child_busy_not_a_child_asleep(tmp_path):
    """``--clock cpu``: a child spinning 0.4 s counts ~0.4 s; one asleep 0.4 s counts ~0; a table
    keeps its clock and the CPU table has a path of its own."""
    busy = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.4: pass"
    spun, done = run_timed([sys.executable, "-c", busy], None, None, "cpu")
    assert done.returncode == 0 and 0.35 < spun < 2.0
    sleep = [sys.executable, "-c", "import time; time.sleep(0.4)"]
    slept, waited = (run_timed(sleep, None, None, clock)[0] for clock in ("cpu", "wall"))
    assert slept < 0.3 < 0.4 <= waited  # interpreter start-up is CPU time, the sleep is not
    table = Throughput("AMD EPYC", "cpu", fixed={"dvc": 1.0}, clock="cpu")
    path = table_path(tmp_path, table.device, "cpu")
    assert path.name == "throughput-amd-epyc-cpu-clock.json"
    assert table_path(tmp_path, "AMD EPYC").name == "throughput-amd-epyc.json"
    table.save(path)
    assert Throughput.load(path, "", "cpu").clock == "cpu"


@pytest.mark.integration
def test_estimate_of_table1_compute_within_40_percent_in_cpu_seconds(tmp_path):
    """The plan's model against a real run: Table 1's runs (``paper.table1.run`` on the
    bundled MNIST, as the ``table1`` stage calls it), their training, FDG, warm-up and
    evaluation estimated from the toy study's step shapes measured into a table.

    On the CPU clock at one thread, measured once to warm the process (a measurement taken
    alone, first in a cold process, once read 1.32x the run), then just before and again just
    after the run; the estimate is their mean, as the other ``pytest -n 2`` worker's load moves.
    CPU time at one thread still grows when the other worker shares the core's sibling thread:
    here the measurement after the run once took 1.46x the one before it. So CI asserts 40%,
    which catches a wrong FDG term (half the estimate) but not every smaller one (the counts
    are checked exactly by the tests above); the 25% of issue 15 is checked stage by stage on a
    machine without that contention (``benchmarks/plan_accuracy.py --clock cpu``).
    """
    from harness.study import mnist_splits, toy_settings
    from paper import table1

    small = {"toy": {"train_size": 512}, "table1": {"epochs": 1, "epsilons": [0.1, 0.5]}}
    params = parse_params(
        deep_merge(SMOKE, {"studies": small, "data": {"root": str(tmp_path / "raw")}})
    )
    cmd = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]["table1"]["cmd"]
    work = workload("table1", cmd, params)
    keys = {t.key for t in work.terms if t.key}
    train, test = mnist_splits(params)

    def predicted() -> float:
        table = Throughput("this cpu", "cpu", clock="cpu")
        for key in keys:
            units = {t.unit for t in work.terms if t.key == key}
            entry = measure_key(key, units, None, torch.device("cpu"), steps=16, clock="cpu")
            table.entries[key.label] = entry
        parts = estimate(work, table).parts
        return sum(parts[unit] for unit in ("train", "fdg", "warmup", "eval"))

    with one_thread():
        predicted()  # warms the process: the first measurement in a cold one runs slow
        before = predicted()
        start = now("cpu")
        table1.run(train, test, tmp_path / "table1", epochs=1, epsilons=[0.1, 0.5],
                   seeds=params.studies.table1.seeds, toy=toy_settings(params))  # fmt: skip
        ran = now("cpu") - start
        after = predicted()
    mean = (before + after) / 2
    assert abs(mean - ran) <= 0.4 * ran, (before, after, ran)

"""params.yaml loads into typed records (harness.params), and its defaults agree with the
library's where both name one: params.yaml is the source for every stage, the library's
defaults serve code that builds models without it (and must say the same)."""

from __future__ import annotations

import dataclasses
import math
import re

import pytest
import yaml

from dspike.data.dvs_frames import FrameOptions
from dspike.energy import E_AC, E_MAC
from dspike.engine import DataConfig, OptimConfig, RunConfig, SurrogateConfig
from dspike.spec import NeuronSpec
from harness.params import REPO_ROOT, ParamsError, deep_merge, load_params, parse_params
from harness.tracking import RETRY_S
from paper.toy_training import ToySettings

TREE = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
PARAMS = load_params(REPO_ROOT / "params.yaml")


def _bad(overlay: dict) -> str:
    with pytest.raises(ParamsError) as err:
        parse_params(deep_merge(TREE, overlay))
    return str(err.value)


def test_every_section_is_a_record_whose_fields_mirror_it():
    assert PARAMS.stage("cifar10_tit_t4").lr == 0.004  # stages.cifar10_tit_t4.lr
    assert PARAMS.stage("cifar10_tit_t4").momentum == 0.9  # train.momentum
    assert PARAMS.stage("cifar10_tit_t4").key("lr") == "stages.cifar10_tit_t4.lr"
    assert PARAMS.stage("cifar10_tit_t4").key("momentum") == "train.momentum"
    assert PARAMS.data.dvs.size == 48 and PARAMS.studies.fig2.epsilons == (0.1, 0.01, 0.001)
    assert PARAMS.spec == NeuronSpec.from_sections(TREE["neuron"], TREE["tdbn"])
    for section in ("dspike", "fdg", "launcher", "ablation", "tracking", "report", "energy"):
        record = getattr(PARAMS, section)
        assert [f.name for f in dataclasses.fields(record)] == list(TREE[section]), section
    smoke = load_params(REPO_ROOT / "params.yaml", REPO_ROOT / "params.smoke.yaml")
    assert smoke.data.source == "bundled" and smoke.models["resnet18"] == {"width": 8}


@pytest.mark.parametrize(
    ("overlay", "names"),
    [
        ({"trian": {}}, ["unknown key 'trian'", "did you mean 'train'"]),
        ({"data": {"dvs": {"sise": 32}}}, ["'data.dvs.sise'", "did you mean 'size'"]),
        ({"stages": {"cifar10_ann": {"epoch": 3}}}, ["'stages.cifar10_ann.epoch'", "'epochs'"]),
        ({"stages": {"cifar10_ann": {"lr": "0.1"}}}, ["'stages.cifar10_ann.lr'", "a number"]),
        ({"studies": {"fig2": {"epsilons": 0.1}}}, ["'studies.fig2.epsilons'", "a list"]),
        ({"studies": {"fig2": {"epsilons": [0.1, "x"]}}}, ["'studies.fig2.epsilons[1]'"]),
        ({"data": {"source": "web"}}, ["'data.source'", "'bundled'"]),
        ({"dspike": {"inherit_temperature": "yes"}}, ["'dspike.inherit_temperature'"]),
        ({"fdg": {"batch_size": 3.5}}, ["'fdg.batch_size'", "an integer"]),
        ({"neuron": {"tau": 2.0}}, ["'neuron.tau'"]),
        ({"seeds": []}, ["'seeds'"]),
        ({"train": {"max_test_samples": -1}}, ["'train.max_test_samples'"]),
        ({"stages": {"a/../b": {}}}, ["'a/../b'"]),
    ],
)
def test_a_bad_key_or_value_names_the_key_and_the_file(overlay, names):
    message = _bad(overlay)
    assert message.startswith("params.yaml: ")
    for name in names:
        assert name in message, (name, message)


def test_a_missing_key_is_named_and_a_stage_key_falls_back_to_train():
    tree = deep_merge(TREE, {})
    del tree["data"]["dvs"]["size"]
    with pytest.raises(ParamsError, match=re.escape("missing key 'data.dvs.size'")):
        parse_params(tree)
    tree = deep_merge(TREE, {})
    del tree["stages"]["cifar10_ann"]["lr"]
    with pytest.raises(ParamsError, match=re.escape("'stages.cifar10_ann.lr' (nor 'train.lr')")):
        parse_params(tree).stage("cifar10_ann")


def test_numbers_read_as_dvc_reads_them(tmp_path):
    """YAML 1.2, as DVC records params: ``1e-4`` is a number (PyYAML's YAML 1.1: a string)."""
    text, written = (REPO_ROOT / "params.yaml").read_text(), "weight_decay: 1.0e-4"
    assert written in text
    (tmp_path / "params.yaml").write_text(text.replace(written, "weight_decay: 1e-4"))
    assert load_params(tmp_path / "params.yaml").train.weight_decay == 1e-4


def test_defaults_in_params_yaml_agree_with_the_librarys():
    """Where params.yaml and the library both hold a default, params.yaml is the source of
    every stage; the library's must say the same (a paper value changed in one place only
    would make a model built without params.yaml differ from the pipeline's)."""
    assert PARAMS.spec == NeuronSpec()
    optim, surrogate, run, data = OptimConfig(), SurrogateConfig(), RunConfig(), DataConfig()
    train = PARAMS.train
    assert (train.momentum, train.weight_decay, train.nesterov, train.schedule) == (
        optim.momentum, optim.weight_decay, optim.nesterov, optim.schedule)  # fmt: skip
    assert (train.batch_size, PARAMS.data.workers) == (data.batch_size, data.workers)
    assert (train.bf16, train.select) == (run.bf16, run.select)
    assert (PARAMS.dspike.b0, PARAMS.dspike.delta_b) == (surrogate.temperature, surrogate.delta)
    assert (PARAMS.fdg.epsilon, PARAMS.fdg.batch_size) == (
        surrogate.fdg_epsilon, surrogate.fdg_batch_size)  # fmt: skip
    dvs = dataclasses.asdict(PARAMS.data.dvs)
    assert {f.name: dvs[f.name] for f in dataclasses.fields(FrameOptions)} == dataclasses.asdict(
        FrameOptions()
    )
    assert math.isclose(PARAMS.energy.e_mac_pj * 1e-12, E_MAC)
    assert math.isclose(PARAMS.energy.e_ac_pj * 1e-12, E_AC)
    assert PARAMS.tracking.retry_s == RETRY_S
    toy = ToySettings()
    assert (PARAMS.studies.toy.batch_size, PARAMS.studies.toy.lr, PARAMS.studies.toy.time_steps
            ) == (toy.batch_size, toy.lr, toy.time_steps)  # fmt: skip


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        ({"studies": {"fig3": {"temperatures": [0.5, 1.0]}}}, "studies.fig3.temperatures"),
        ({"neuron": {"v_threshold": 0.6}}, "neuron.v_threshold (0.5 -> 0.6)"),
        ({"studies": {"fig2": {"epochs": 7}}, "tracking": {"retry_s": 1}}, None),  # not read
    ],
    ids=["read_list", "read_spec", "not_read"],
)
def test_a_stage_whose_params_change_while_it_runs_fails_naming_them(
    tmp_path, monkeypatch, capsys, edit, named
):
    """The fig3 stage through its real entry point, params.yaml rewritten on disk while its
    work runs (a hook inside paper.fig3.run): a key it read that changed fails it with one
    line naming the key, exit 1 (DVC then records nothing); a key it did not read does not."""
    from paper import fig3
    from pipelines.fig3 import main

    (tmp_path / "params.yaml").write_text(yaml.safe_dump(TREE))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    real = fig3.run

    def edited_meanwhile(*args, **kwargs):
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(deep_merge(TREE, edit)))
        return real(*args, **kwargs)

    monkeypatch.setattr(fig3, "run", edited_meanwhile)
    if named is None:
        main(["--out", "results/fig3"])
        return
    with pytest.raises(SystemExit) as exit_:
        main(["--out", "results/fig3"])
    assert exit_.value.code == 1
    lines = capsys.readouterr().err.splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and named in errors[0], lines
    assert "params.yaml changed while the stage ran" in errors[0]
    assert "studies.fig2" not in errors[0] and "tracking" not in errors[0]

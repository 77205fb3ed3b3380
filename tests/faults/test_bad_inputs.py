"""Bad params, arguments and init files: one ``error:`` line naming the culprit, exit status 2,
and the outputs of the run already done are untouched (nor is a checkpoint started).

These run the stage's ``main`` in the test process (the checks come before any training); the
faults that need a process of their own are in the other files of this folder.
"""

from __future__ import annotations

import copy
import json
import zipfile

import pytest
from faults_support import OUTPUTS, PARAMS, malicious_pickle, one_line_error, snapshot, train_argv

from pipelines import fig2, train


def _run_main(main, argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    return capsys.readouterr().err


def _edit(**changes):
    def edit(params: dict) -> dict:
        params = copy.deepcopy(params)
        for dotted, value in changes.items():
            *path, last = dotted.split("|")
            node = params
            for part in path:
                node = node[part]
            if value is KeyError:
                del node[last]
            else:
                node[last] = value
        return params

    return edit


PARAM_FAULTS = {
    "lr_as_string": (_edit(**{"stages|a|lr": "0.1"}), ["stages.a.lr"]),
    "stage_key_misspelled": (_edit(**{"stages|a|epoch": 5}), ["stages.a.epoch", "'epochs'"]),
    "unknown_train_key": (_edit(**{"train|learning_rate": 0.1}), ["train.learning_rate"]),
    "top_level_typo": (_edit(trian={"lr": 0.1}), ["'trian'", "did you mean 'train'"]),
    "negative_sample_limit": (_edit(**{"train|max_train_samples": -5}),
                              ["train.max_train_samples"]),
    "empty_seeds": (_edit(seeds=[]), ["'seeds'"]),
    "missing_train_section": (_edit(train=KeyError), ["'train'"]),
    "section_not_a_mapping": (_edit(train=5), ["'train'", "mapping"]),
    "stage_name_escapes": (_edit(**{"stages|../../evil": PARAMS["stages"]["a"]}), ["../../evil"]),
}  # fmt: skip


@pytest.mark.parametrize("fault", PARAM_FAULTS)
def test_bad_params_are_one_line_naming_the_key(ws, monkeypatch, capsys, fault):
    edit, names = PARAM_FAULTS[fault]
    monkeypatch.chdir(ws)
    before = snapshot(ws, *OUTPUTS, "checkpoints")
    (ws / "params.yaml").write_text(json.dumps(edit(PARAMS)))  # JSON is YAML
    one_line_error(_run_main(train.main, train_argv("a")[1:], capsys), *names)
    assert snapshot(ws, *OUTPUTS, "checkpoints") == before


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("stages: {a: [1, 2\n", ["params.yaml", "not valid YAML", "line 2"]),
        ("- 1\n- 2\n", ["params.yaml", "mapping"]),
        ("train: !!python/object:os.system {}\n", ["params.yaml", "not valid YAML"]),
    ],
    ids=["malformed", "a_list", "python_tag"],
)
def test_unreadable_params_file_is_one_line(ws, monkeypatch, capsys, text, names):
    monkeypatch.chdir(ws)
    before = snapshot(ws, *OUTPUTS)
    (ws / "params.yaml").write_text(text)
    one_line_error(_run_main(train.main, train_argv("a")[1:], capsys), *names)
    assert snapshot(ws, *OUTPUTS) == before


def test_empty_seeds_stop_a_study_stage_before_it_starts(ws, monkeypatch, capsys):
    """Once a traceback in pipelines/studies.py (fig2 took ``seeds[0]``) after DVC had deleted
    the stage's outputs."""
    monkeypatch.chdir(ws)
    (ws / "params.yaml").write_text(json.dumps(_edit(seeds=[])(PARAMS)))
    argv = ["--manifest", "data/manifests/mnist.json", "--out", "results/fig2"]
    one_line_error(_run_main(fig2.main, argv, capsys), "'seeds'")
    assert not (ws / "results").exists()


def _init_files(ws) -> dict[str, bytes]:
    good = (ws / "models" / "a.pt").read_bytes()
    with zipfile.ZipFile(ws / "models" / "a.pt") as z:
        assert z.namelist()
    return {"truncated": good[: len(good) // 2], "not_a_zip": b"hello\n" * 100}


@pytest.mark.parametrize(
    ("extra", "names"),
    [
        (["--init", "../outside.pt"], ["--init", "outside the workspace"]),
        (["--model", "../../evil.pt"], ["--model", "outside the workspace"]),
        (["--epsilon", "0.05/../../x"], ["--epsilon"]),
        (["--init", "models/none.pt"], ["--init", "no such file"]),
    ],
    ids=["init_outside", "model_outside", "epsilon_path", "init_missing"],
)
def test_bad_arguments_are_one_line_naming_the_flag(ws, monkeypatch, capsys, extra, names):
    monkeypatch.chdir(ws)
    (ws.parent / "outside.pt").write_bytes((ws / "models" / "a.pt").read_bytes())
    before = snapshot(ws, *OUTPUTS)
    argv = train_argv("b")[1:]
    argv = [*argv[: argv.index("--model")], *extra, *argv[argv.index("--model"):]]
    if "--model" in extra:  # the later --model wins in argparse: put ours last
        argv = [*train_argv("b")[1:], *extra]
    one_line_error(_run_main(train.main, argv, capsys), *names)
    assert snapshot(ws, *OUTPUTS) == before
    assert not (ws.parent.parent / "evil.pt").exists()


@pytest.mark.parametrize("kind", ["malicious", "truncated", "not_a_zip"])
def test_bad_init_model_is_refused_in_one_line(ws, monkeypatch, capsys, kind):
    """A pickle that would write a marker, a truncated and a non-zip file as ``--init``."""
    monkeypatch.chdir(ws)
    marker = ws / "PWNED"
    blobs = {"malicious": malicious_pickle(marker), **_init_files(ws)}
    (ws / "models" / "init.pt").write_bytes(blobs[kind])
    before = snapshot(ws, *OUTPUTS)
    argv = train_argv("b", 0, "--init", "models/init.pt")[1:]
    line = one_line_error(_run_main(train.main, argv, capsys), "--init", "models/init.pt")
    assert "weights_only=False" not in line
    assert not marker.exists()
    assert snapshot(ws, *OUTPUTS) == before

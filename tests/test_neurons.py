"""LIF (Eq. 1-2) against hand-computed sequences and its autograd reference, both backends."""

import functools
import logging
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from filelock import FileLock

from dspike import _kernel_cache, _lif_fused, build_model
from dspike.checks import ConfigError
from dspike.neurons import LIF, compiled_fallbacks, lif, lif_reference, set_lif_backend
from dspike.spec import NeuronSpec
from dspike.surrogate import Dspike, Rectangular, Triangular, rectangular_grad


def test_lif_matches_hand_computed_sequence_with_reset():
    tau, vth = 0.5, 0.6
    c = torch.tensor([0.4, 0.5, 0.2, 0.7, 0.0])
    # u_pre: 0.4 -> 0.2+0.5=0.7 (fire, reset to 0) -> 0.2 -> 0.1+0.7=0.8 (fire) -> 0.0
    expected = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0])
    y = lif(c[:, None], tau, vth, Rectangular())[:, 0]
    torch.testing.assert_close(y, expected)
    _, u = lif_reference(c[:, None], tau, vth, Rectangular())
    torch.testing.assert_close(u[:, 0], torch.tensor([0.4, 0.0, 0.2, 0.0, 0.0]))


def test_threshold_is_strict():
    y = lif(torch.tensor([[0.5], [0.5000001]]), tau=0.0, v_threshold=0.5)
    assert y.flatten().tolist() == [0.0, 1.0]


@pytest.mark.parametrize("detach_reset", [False, True])
@pytest.mark.parametrize("sg", [Rectangular(), Triangular(), Dspike(0.7), Dspike(3.0)], ids=repr)
def test_fused_backward_equals_autograd_reference(sg, detach_reset):
    torch.manual_seed(0)
    c = (torch.randn(7, 3, 11, dtype=torch.float64) * 0.6 + 0.3).requires_grad_()
    y = lif(c, 0.3, 0.45, sg, detach_reset)
    y_ref, _ = lif_reference(c, 0.3, 0.45, sg, detach_reset)
    torch.testing.assert_close(y, y_ref, rtol=0, atol=0)
    up = torch.randn_like(y)
    (g,) = torch.autograd.grad(y, c, up)
    (g_ref,) = torch.autograd.grad(y_ref, c, up)
    torch.testing.assert_close(g, g_ref, rtol=1e-12, atol=1e-12)


def test_reset_gradient_is_used_unless_detached():
    c = torch.tensor([[0.7], [0.3]], dtype=torch.float64, requires_grad=True)
    sg = Rectangular(width=2.0)
    g_attached = torch.autograd.grad(lif(c, 0.5, 0.5, sg)[1].sum(), c)[0]
    g_detached = torch.autograd.grad(lif(c, 0.5, 0.5, sg, True)[1].sum(), c)[0]
    assert not torch.equal(g_attached, g_detached)


def test_module_folded_layout_equals_time_major():
    torch.manual_seed(1)
    x = torch.randn(4, 2, 3, 5, 5)
    plain = LIF(NeuronSpec(tau=0.4))(x)
    folded = LIF(NeuronSpec(tau=0.4), time_steps=4)(x.flatten(0, 1))
    torch.testing.assert_close(folded, plain.flatten(0, 1))


def test_no_state_survives_between_calls():
    m = LIF()
    x = torch.rand(3, 2, 8)
    torch.testing.assert_close(m(x), m(x))


def test_firing_rate_recording():
    m = LIF(NeuronSpec(tau=0.0, v_threshold=0.5))
    m.record_rate = True
    m(torch.tensor([[1.0, 0.0], [1.0, 1.0]]))
    assert m.firing_rate == pytest.approx(3 / 4)
    m.reset_rate()
    assert m.firing_rate == 0.0


def test_firing_rate_exact_beyond_half_precision_range():
    """70,000 spikes in float16 overflow a float16 sum (max 65504); the count must stay exact."""
    m = LIF(NeuronSpec(tau=0.0, v_threshold=0.5))
    m.record_rate = True
    x = torch.ones(1, 70_000, dtype=torch.float16)
    m(x)
    m(torch.zeros(1, 70_000, dtype=torch.float16))
    assert m.spike_count == 70_000.0
    assert m.firing_rate == pytest.approx(0.5)


def test_bad_tau():
    with pytest.raises(ValueError, match="tau"):
        LIF(NeuronSpec(tau=1.5))


def test_backend_names_are_checked():
    with pytest.raises(ConfigError, match=r"neuron\.backend: .*one of") as err:
        LIF(NeuronSpec(backend="jit"))
    assert err.value.key == "neuron.backend"
    with pytest.raises(ValueError, match="backend must be one of"):
        lif(torch.zeros(2, 3), backend="fused")
    m = LIF()
    with pytest.raises(ValueError, match="backend"):
        m.backend = "Compiled"
    assert m.backend == "compiled"  # the default, untouched


def test_set_lif_backend_reaches_every_lif():
    model = build_model("resnet18", 10, time_steps=2, width=4)
    assert {m.backend for m in model.modules() if isinstance(m, LIF)} == {"compiled"}
    n = set_lif_backend(model, "eager")
    lifs = [m for m in model.modules() if isinstance(m, LIF)]
    assert n == len(lifs) > 10
    assert {m.backend for m in lifs} == {"eager"}
    eager = build_model("toy_cnn", 10, spec=NeuronSpec(backend="eager"))
    assert eager.spec.backend == "eager" and eager.act1.backend == "eager"


def test_compiled_backend_runs_a_surrogate_without_formula_eagerly():
    """A surrogate with only ``grad`` has no formula to inline: the eager kernels run it."""

    class Plain:
        def grad(self, v):
            return torch.ones_like(v)

        def primitive(self, v):
            return v

    before = _kernels()
    outs = []
    for backend in ("eager", "compiled"):
        c = _currents()
        y = lif(c, TAU, VTH, Plain(), backend=backend)
        y.sum().backward()
        outs.append((y, c.grad))
    assert _kernels() == before
    for a, b in zip(*outs, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


# The compiled backend: every test below uses [T=7, N=33] float64 inputs with tau=0.3 and
# V_th=0.45, so one forward graph serves them all and one backward graph per surrogate formula
# (detach_reset is data, not a specialisation) serves every float64 test.
TAU, VTH = 0.3, 0.45


def _currents(seed: int = 0, n: int = 11, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    torch.manual_seed(seed)
    return (torch.randn(7, 3, n, dtype=torch.float64) * 0.6 + 0.3).to(dtype).requires_grad_()


@pytest.fixture
def fused_only():
    """Fails the test if a ``compiled`` LIF in it fell back to the eager kernels (it would then
    compare eager with eager)."""
    before = compiled_fallbacks()
    yield
    assert compiled_fallbacks() == before


def _kernels() -> int:
    """Fused kernels (packages) this process has loaded: one per pass x T x dtype x formula."""
    return len(_kernel_cache._RUNNERS)


@pytest.mark.compile
@pytest.mark.usefixtures("fused_only")
@pytest.mark.parametrize("detach_reset", [False, True])
@pytest.mark.parametrize(
    "sg", [Rectangular(width=0.8), Triangular(gamma=1.5, v_threshold=0.45), Dspike(0.7)], ids=repr
)
def test_compiled_backend_equals_autograd_reference(sg, detach_reset):
    c = _currents()
    y = lif(c, TAU, VTH, sg, detach_reset, backend="compiled")
    y_ref, _ = lif_reference(c, TAU, VTH, sg, detach_reset)
    torch.testing.assert_close(y, y_ref, rtol=0, atol=0)
    up = torch.randn_like(y)
    (g,) = torch.autograd.grad(y, c, up)
    (g_ref,) = torch.autograd.grad(y_ref, c, up)
    torch.testing.assert_close(g, g_ref, rtol=1e-12, atol=1e-12)


@pytest.mark.compile
@pytest.mark.usefixtures("fused_only")
def test_compiled_temperature_and_shape_changes_do_not_recompile():
    """Algorithm 1 sets a new b every epoch; networks have many LIF sizes: neither needs
    another kernel."""
    sg = Dspike(0.7)
    c = _currents()
    lif(c, TAU, VTH, sg, backend="compiled").sum().backward()  # compile (or reuse) once
    before = _kernels()
    grads = []
    for b, n in [(0.7, 11), (2.5, 11), (2.5, 17), (0.3, 5)]:
        sg.temperature = b
        c = _currents(seed=1, n=n)
        up = torch.randn(c.shape, dtype=c.dtype)
        (g,) = torch.autograd.grad(lif(c, TAU, VTH, sg, backend="compiled"), c, up)
        (g_ref,) = torch.autograd.grad(lif_reference(c, TAU, VTH, sg)[0], c, up)
        torch.testing.assert_close(g, g_ref, rtol=1e-12, atol=1e-12)
        grads.append(g)
    assert not torch.equal(grads[0], grads[1])  # the new temperature reached the kernel
    assert _kernels() == before


@pytest.mark.compile
@pytest.mark.usefixtures("fused_only")
def test_compiled_network_step_equals_eager():
    """A ResNet-18 step (19 LIFs of 9 sizes) needs at most one forward and one backward kernel."""
    torch.manual_seed(0)
    eager = build_model("resnet18", 10, time_steps=7, width=4).double()
    compiled = build_model(
        "resnet18", 10, time_steps=7, width=4, spec=NeuronSpec(backend="compiled")
    ).double()
    compiled.load_state_dict(eager.state_dict())
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    before = _kernels()
    for model in (eager, compiled):
        F.cross_entropy(model(x), torch.tensor([1, 2])).backward()
    assert _kernels() - before <= 2
    for (name, p), q in zip(eager.named_parameters(), compiled.parameters(), strict=True):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-9, atol=1e-12, msg=name)


@pytest.mark.compile
@pytest.mark.usefixtures("fused_only")
def test_compiled_bfloat16_equals_eager():
    """Autocast hands LIF bf16 conv outputs; the kernels round as eager does."""
    c = _currents(n=257, dtype=torch.bfloat16)
    up = torch.randn(c.shape).bfloat16()
    outs = {}
    for backend in ("eager", "compiled"):
        y = lif(c, TAU, VTH, Dspike(0.7), backend=backend)
        outs[backend] = (y, *torch.autograd.grad(y, c, up))
    (y, g), (y_c, g_c) = outs["eager"], outs["compiled"]
    assert y_c.dtype == g_c.dtype == torch.bfloat16
    torch.testing.assert_close(y_c, y, rtol=0, atol=0)
    torch.testing.assert_close(g_c.float(), g.float(), rtol=0.02, atol=0.02)


_FRESH_PROCESS = """
import sys, torch
torch.set_num_threads({threads})
from dspike import _kernel_cache
from dspike.neurons import lif
from dspike.surrogate import Dspike
c = (torch.randn(7, 3, 11, dtype=torch.float64) * 0.6 + 0.3).requires_grad_()
lif(c, {tau}, {vth}, Dspike(0.7), backend="compiled").sum().backward()
compiler = sorted(m for m in sys.modules if m.startswith(("torch._inductor", "torch._dynamo")))
print(_kernel_cache.builds, len(_kernel_cache._RUNNERS), compiler)
"""


@pytest.mark.compile
def test_compiled_kernels_are_built_once_per_machine():
    """A new process finds both packages on disk: it compiles nothing and never imports
    torch._dynamo or torch._inductor (so a pipeline stage pays no compile), also with another
    thread count (the CPU kernels read it at run time)."""
    c = _currents()
    lif(c, TAU, VTH, Dspike(0.7), backend="compiled").sum().backward()  # on disk from here on
    code = _FRESH_PROCESS.format(threads=torch.get_num_threads() + 1, tau=TAU, vth=VTH)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert out.stdout.split("\n")[-2] == "0 2 []", out.stdout + out.stderr


_NO_COMPILER = """
import warnings, torch
from dspike.neurons import compiled_fallbacks, lif
from dspike.surrogate import Dspike
c = (torch.randn(7, 3, 11, dtype=torch.float64) * 0.6 + 0.3).requires_grad_()
out = {{}}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for backend in ("compiled", "eager", "compiled"):
        y = lif(c, {tau}, {vth}, Dspike(0.7), backend=backend)
        out[backend] = (y, *torch.autograd.grad(y.sum(), c))
print(len(caught), all(torch.equal(a, b) for a, b in zip(out["eager"], out["compiled"])))
print(caught[0].message if caught else "")
print(compiled_fallbacks() == tuple(str(w.message).split(". The LIF")[0] for w in caught))
"""


@pytest.mark.compile
def test_compiled_backend_without_a_compiler_warns_once_per_kernel_and_runs_eager(tmp_path):
    """A machine whose C++ compiler is missing (``CXX`` names none) and whose cache is empty:
    the compiled LIF says why once per package (forward, backward), names it, and gives the
    eager results."""
    env = {**os.environ, "CXX": str(tmp_path / "no-such-compiler"),
           "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "cache")}  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-c", _NO_COMPILER.format(tau=TAU, vth=VTH)], capture_output=True,
        text=True, env=env, check=False, cwd=Path(__file__).resolve().parents[1],
    )
    lines = out.stdout.splitlines()
    assert lines[:1] == ["2 True"], out.stdout + out.stderr
    assert "could not build or load the fused LIF kernel" in lines[1]
    assert str(tmp_path / "cache" / "dspike_lif" / "forward-T7-") in lines[1]
    assert "neuron.backend: eager" in lines[1]
    assert lines[2] == "True"  # the process says why it runs eager


class _PartialRectangular(Rectangular):
    """The rectangular surrogate with its formula behind a ``functools.partial``: no source."""

    grad_function = staticmethod(functools.partial(rectangular_grad))


@pytest.mark.compile
def test_a_formula_without_source_runs_the_eager_backward_after_the_fused_forward():
    """The forward kernel needs no formula and runs fused; the backward's cannot be keyed, so
    it runs eagerly on the input the node keeps: the results are eager's."""
    sg = _PartialRectangular(width=0.8)
    before = compiled_fallbacks()
    outs = {}
    with pytest.warns(RuntimeWarning, match="has no source to key a fused kernel by"):
        for backend in ("eager", "compiled"):
            c = _currents()
            y = lif(c, TAU, VTH, sg, backend=backend)
            (g,) = torch.autograd.grad(y, c, torch.linspace(-1, 1, y.numel()).view_as(y))
            outs[backend] = (y, g)
    torch.testing.assert_close(outs["compiled"], outs["eager"], rtol=1e-12, atol=1e-12)
    new = compiled_fallbacks()[len(before):]
    assert len(new) == 1 and "functools.partial" in new[0]


def test_compiled_lif_on_the_meta_device_runs_eager_without_a_kernel():
    """Op counting runs networks on ``meta`` tensors (shapes only): no kernel is built or
    loaded for them, and nothing falls back with a warning."""
    before, fallbacks = _kernels(), compiled_fallbacks()
    c = torch.zeros(7, 3, 11, device="meta", requires_grad=True)
    y = lif(c, TAU, VTH, Dspike(0.7), backend="compiled")
    y.sum().backward()
    assert y.shape == c.grad.shape == c.shape and y.device.type == "meta"
    assert _kernels() == before and compiled_fallbacks() == fallbacks


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    """An empty kernel cache, and no package loaded or failed in this process."""
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(_kernel_cache, "_RUNNERS", {})
    monkeypatch.setattr(_kernel_cache, "_FAILED", {})
    return tmp_path


def _forward_package(c: torch.Tensor) -> Path:
    key = _kernel_cache.package_key("forward", c.shape[0], c.dtype, c.device, _lif_fused._CODE)
    return _kernel_cache.package_path(key)


@pytest.mark.compile
@pytest.mark.usefixtures("isolated_cache")
def test_a_damaged_package_is_built_again(caplog):
    """A package on disk that is not a whole archive (a damaged file) is built again, with a
    log line that names it; the LIF stays fused."""
    c = _currents().detach()
    path = _forward_package(c)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a package")
    builds = _kernel_cache.builds
    with caplog.at_level(logging.WARNING, logger=_kernel_cache.__name__):
        spikes = _lif_fused.lif_forward(c, TAU, VTH)
    assert _kernel_cache.builds == builds + 1
    assert f"{path} is damaged" in caplog.text
    torch.testing.assert_close(spikes, lif_reference(c, TAU, VTH)[0], rtol=0, atol=0)
    assert path.read_bytes()[:2] == b"PK"  # a package now (a zip archive)


@pytest.mark.usefixtures("isolated_cache")
def test_a_whole_package_that_does_not_load_is_not_built_again():
    """An archive that loads no kernel here (a build would make the same): the error names the
    package, and nothing is built."""
    c = _currents().detach()
    path = _forward_package(c)
    path.parent.mkdir(parents=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model/readme.txt", "no kernel in here")
    builds = _kernel_cache.builds
    match = f"could not build or load .*{path.name}"
    with pytest.raises(_kernel_cache.KernelBuildError, match=match):
        _lif_fused.lif_forward(c, TAU, VTH)
    assert _kernel_cache.builds == builds


_WAITER = """
import time, torch
from dspike import _kernel_cache, _lif_fused
from dspike.neurons import lif_reference
c = torch.randn(7, 3, 11, dtype=torch.float64) * 0.6 + 0.3
print("ready", flush=True)
start = time.perf_counter()
spikes = _lif_fused.lif_forward(c, {tau}, {vth})
waited = time.perf_counter() - start
print(_kernel_cache.builds, torch.equal(spikes, lif_reference(c, {tau}, {vth})[0]), waited)
"""


@pytest.mark.compile
@pytest.mark.parametrize("found", ["nothing", "a damaged file"])
def test_a_process_waits_for_another_ones_build_and_builds_nothing(tmp_path, found):
    """Two processes need the same package, missing or damaged: the one that finds the other's
    lock waits for it, then loads the package the other has put there, and builds nothing."""
    c = _currents().detach()
    _lif_fused.lif_forward(c, TAU, VTH)  # the package, built or found in this process's cache
    built = _forward_package(c)
    target = tmp_path / "dspike_lif" / built.name
    target.parent.mkdir()
    if found == "a damaged file":
        target.write_bytes(b"not a package")
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(tmp_path)}
    waiter = None
    try:
        with FileLock(str(target.with_suffix(".lock"))):  # held as a building process holds it
            waiter = subprocess.Popen(
                [sys.executable, "-c", _WAITER.format(tau=TAU, vth=VTH)], env=env, text=True,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                cwd=Path(__file__).resolve().parents[1],
            )  # fmt: skip
            line = waiter.stdout.readline()
            assert line == "ready\n", line + waiter.stderr.read()
            time.sleep(3)
            shutil.copyfile(built, target.with_suffix(".partial"))
            os.replace(target.with_suffix(".partial"), target)
        out, err = waiter.communicate(timeout=300)
    finally:
        if waiter is not None and waiter.poll() is None:
            waiter.kill()
    builds, equal, waited = out.split()
    assert (builds, equal) == ("0", "True"), out + err
    assert float(waited) > 2, out + err  # it waited for the lock, then only loaded

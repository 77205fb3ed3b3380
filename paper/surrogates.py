"""Beyond the paper: how close each framework's surrogate gradient is to the true one.

Fig. 2's measure and Table 1's protocol (Sec. 4.2) for the surrogates people use: dspike's
(rectangular, triangular, Dspike at fixed b, Dspike with Algorithm 1), SpikingJelly's
(``activation_based.surrogate``) and snnTorch's (``snntorch.surrogate``), each at its
framework's default parameters. Only the surrogate differs: the same toy CNN and LIF forward
(dspike's, fires at ``u > V_th``), the same initialisation and data order per seed.

For each surrogate and seed one toy training run (``epochs`` epochs) gives

* **cos-sim**: in the first ``iterations`` iterations of every epoch, the cosine similarity
  between the first layer's surrogate gradient and its FDG (Eq. 10) at each eps, on the same
  minibatch and weights (Fig. 2's protocol; mean over the iterations of the first seed's run:
  the FDG is the study's main cost);
* **accuracy**: test accuracy after training (Table 1's protocol; mean ± std over seeds);
* **finite**: whether the gradient stays finite for potentials up to ``finite_limit`` in
  magnitude, in float32 and in bfloat16 (snnTorch's ``sigmoid`` overflows there).

**Threshold matching.** A foreign surrogate ``g`` is called through its own package on the
potential in units of the threshold: ``grad(v) = g(v / V_th) / V_th``, ``v = u - V_th``. That is
exactly the framework's neuron at its default threshold 1.0 in a network whose weights are
scaled by ``1 / V_th`` (the LIF's spikes are unchanged by scaling inputs and threshold
together), so each surrogate is used at the scale its defaults were chosen for. dspike's own
surrogates take the threshold as a parameter (Eq. 8 and 12's windows are ``|v| <= V_th``).

**What the measure means.** The FDG is itself an estimate: it depends on eps (too small, and
the loss of a spiking network is flat: the FDG is mostly zero; too large, and it averages over
several spike flips), so a surrogate is "close to the true gradient" only at a stated eps.
High similarity says the update points where a small step of the first layer actually lowers
the loss on that minibatch; it does not measure the deeper layers, and a surrogate may train
well with a modest similarity.

Outputs in ``out_dir``: ``surrogates.csv`` / ``.md`` (one row per surrogate), ``surrogates.png``
(cos-sim against accuracy, one point per surrogate; every cos-sim as a sorted bar) and
``surrogates_iterations.csv``.
"""

from __future__ import annotations

import hashlib
import importlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
from torch.utils.data import Dataset, default_collate

from dspike.fdg import FIRST_LAYER, cosine_similarity, fdg
from dspike.io import atomic_path, pyplot, save_figure
from dspike.spec import NeuronSpec
from dspike.surrogate import Dspike, Surrogate, build_surrogate
from dspike.temperature import dspike_surrogates, update_temperature

from .markdown import write_table
from .toy_training import (
    PAPER_TOY,
    Iteration,
    ToySettings,
    evaluate,
    make_toy,
    sample_shape,
    train_toy,
)

__all__ = [
    "FRAMEWORKS",
    "FrameworkMissing",
    "FrameworkSurrogate",
    "SurrogateChoice",
    "build",
    "finite",
    "run",
]

FRAMEWORKS = ("dspike", "spikingjelly", "snntorch")
_MODULES = {"spikingjelly": "spikingjelly.activation_based.surrogate",
            "snntorch": "snntorch.surrogate"}  # fmt: skip
ADAPTIVE = "dspike-adaptive"  # Dspike with Algorithm 1 at every epoch start


@dataclass(frozen=True)
class SurrogateChoice:
    """One row of the study: a surrogate ``name`` of ``framework`` with constructor ``options``
    (empty: the framework's defaults)."""

    framework: str
    name: str
    options: dict[str, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        opts = ", ".join(f"{k}={v:g}" for k, v in self.options.items())
        return f"{self.name}({opts})" if opts else self.name

    @property
    def key(self) -> str:
        """Unique within a study: both dspike and snnTorch have a ``triangular``."""
        return f"{self.framework}:{self.label}"


class FrameworkSurrogate:
    """A SpikingJelly or snnTorch surrogate as dspike's :class:`~dspike.surrogate.Surrogate`.

    ``spike_fn`` is the framework's own spike function (Heaviside forward, its surrogate
    backward); ``grad(v)`` is its autograd derivative at ``v / V_th``, divided by ``V_th`` (the
    module docstring's threshold matching). ``primitive`` is its relaxed spike where the
    framework has one (SpikingJelly's ``spiking=False`` mode).
    """

    def __init__(
        self, spike_fn: Callable[[torch.Tensor], torch.Tensor], v_threshold: float,
        primitive_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:  # fmt: skip
        self.spike_fn, self.v_threshold, self.primitive_fn = spike_fn, v_threshold, primitive_fn

    def grad(self, v: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            x = (v.detach() / self.v_threshold).requires_grad_()
            (g,) = torch.autograd.grad(self.spike_fn(x).sum(), x)
        return g / self.v_threshold

    def primitive(self, v: torch.Tensor) -> torch.Tensor:
        if self.primitive_fn is None:
            raise NotImplementedError("this framework's surrogate has no relaxed spike")
        return self.primitive_fn(v / self.v_threshold)


class FrameworkMissing(ImportError):
    """A row's framework is not installed; the message names the extra that installs it."""


def _import(framework: str):  # type: ignore[no-untyped-def]
    try:
        return importlib.import_module(_MODULES[framework])
    except ImportError:
        raise FrameworkMissing(
            f"the surrogates study needs {framework} for its {framework} rows: "
            f"pip install 'dspike[{framework}]' (or dspike[pipeline], which has both)"
        ) from None


def build(choice: SurrogateChoice, v_threshold: float = NeuronSpec.v_threshold) -> Surrogate:
    """The surrogate of ``choice`` for a LIF at ``v_threshold``."""
    if choice.framework not in FRAMEWORKS:
        raise ValueError(f"framework must be one of {list(FRAMEWORKS)}, got {choice.framework!r}")
    options = dict(choice.options)
    if choice.framework == "dspike":
        name = "dspike" if choice.name == ADAPTIVE else choice.name
        if name in ("triangular", "dspike"):
            options.setdefault("v_threshold", v_threshold)
        return build_surrogate(name, **options)
    module = _import(choice.framework)
    factory = getattr(module, choice.name, None)
    if factory is None:
        raise ValueError(f"{choice.framework} has no surrogate {choice.name!r}")
    if choice.framework == "spikingjelly":
        spike_fn = factory(**options, spiking=True)
        relaxed = factory(**options, spiking=False)
        return FrameworkSurrogate(spike_fn, v_threshold, relaxed)
    return FrameworkSurrogate(factory(**options), v_threshold)


def finite(surrogate: Surrogate, limit: float, dtype: torch.dtype) -> bool:
    """Whether ``surrogate.grad`` is finite for potentials ``|v| <= limit`` in ``dtype``."""
    magnitudes = torch.logspace(-3, math.log10(limit), 200, dtype=torch.float64)
    v = torch.cat([-magnitudes.flip(0), torch.zeros(1, dtype=torch.float64), magnitudes])
    return bool(torch.isfinite(surrogate.grad(v.to(dtype))).all())


class _FdgCache:
    """The FDG of the first layer by (weights, minibatch, eps): runs that share their start (the
    same initialisation and first minibatch for every surrogate) compute it once."""

    def __init__(self, chunk_size: int | None) -> None:
        self.chunk_size, self.values = chunk_size, {}

    def __call__(
        self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float
    ) -> torch.Tensor:
        h = hashlib.sha256()
        for t in (*model.state_dict().values(), x, y):
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
        key = (h.hexdigest(), eps)
        if key not in self.values:
            self.values[key] = fdg(model, FIRST_LAYER, x, y, eps, chunk_size=self.chunk_size)
        return self.values[key]


def run(
    train_data: Dataset,
    test_data: Dataset,
    out_dir: str | Path,
    choices: Sequence[SurrogateChoice],
    *,
    epochs: int = 10,
    iterations: int = 100,
    epsilons: Sequence[float] = (0.1, 0.01, 0.001),
    seeds: Sequence[int] = (0,),
    finite_limit: float = 1e4,
    delta: float = 0.2,
    adapt_eps: float = 0.1,
    toy: ToySettings = PAPER_TOY,
) -> pd.DataFrame:
    """Train the toy SNN once per surrogate and seed; write the table, figure and CSVs."""
    # fails before any training on a missing framework or an unknown name; these untrained
    # surrogates are the ones the finiteness check probes
    probes = {c.key: build(c) for c in choices}
    fdg_of = _FdgCache(toy.chunk_size)
    records, rows = [], []
    for choice, seed in ((c, s) for c in choices for s in seeds):
        surrogate = build(choice)
        model = make_toy("snn", surrogate, toy.time_steps, sample_shape(train_data),
                         toy.num_classes, seed)  # fmt: skip

        def compare(it: Iteration, label: str = choice.key, seed: int = seed) -> None:
            if it.iteration >= iterations or seed != seeds[0]:  # the FDG is the cost: one seed
                return
            used = it.model.conv1.weight.grad
            for eps in epsilons:
                cos = cosine_similarity(used, fdg_of(it.model, it.inputs, it.targets, eps))
                records.append({"surrogate": label, "seed": seed, "epoch": it.epoch + 1,
                                "iteration": it.iteration, "eps": eps, "cos": cos})  # fmt: skip

        def algorithm1(epoch: int, model: torch.nn.Module, seed: int = seed) -> None:
            """Algorithm 1 at the epoch's start, on a minibatch drawn for it (as the engine)."""
            g = torch.Generator().manual_seed(seed * 100_003 + epoch)
            pick = torch.randperm(len(train_data), generator=g)[: toy.batch_size].tolist()
            x, y = default_collate([train_data[i] for i in pick])
            b = dspike_surrogates(model)[0].temperature
            update_temperature(model, x, y, b, delta, adapt_eps,
                               reference=fdg_of(model, x, y, adapt_eps))  # fmt: skip

        start = time.perf_counter()
        train_toy(model, train_data, epochs, batch_size=toy.batch_size, lr=toy.lr, seed=seed,
                  callback=compare, chunk_size=toy.chunk_size,
                  epoch_start=algorithm1 if choice.name == ADAPTIVE else None)  # fmt: skip
        rows.append({"surrogate": choice.key, "seed": seed,
                     "test_acc": evaluate(model, test_data),
                     "b": surrogate.temperature if isinstance(surrogate, Dspike) else math.nan,
                     "seconds": time.perf_counter() - start})  # fmt: skip
    raw = pd.DataFrame(records, columns=["surrogate", "seed", "epoch", "iteration", "eps", "cos"])
    table = _table(choices, probes, pd.DataFrame(rows), raw, epsilons, finite_limit)
    out = Path(out_dir)
    with atomic_path(out / "surrogates_iterations.csv") as tmp:
        raw.to_csv(tmp, index=False)
    table.attrs["note"] = _note(table, epsilons, epochs, len(seeds))
    write_table(table, out / "surrogates")
    plot(table, epsilons[0], out / "surrogates.png")
    return table


def _table(
    choices: Sequence[SurrogateChoice], probes: dict[str, Surrogate], runs: pd.DataFrame,
    raw: pd.DataFrame, epsilons: Sequence[float], finite_limit: float,
) -> pd.DataFrame:  # fmt: skip
    rows = []
    for choice in choices:
        runs_of = runs[runs["surrogate"] == choice.key]
        acc = runs_of["test_acc"]
        sims = raw[raw["surrogate"] == choice.key]
        surrogate = probes[choice.key]
        row = {"surrogate": choice.label, "framework": choice.framework}
        for eps in epsilons:
            row[f"cos_eps_{eps:g}"] = sims.loc[sims["eps"] == eps, "cos"].mean()
        row |= {"acc_mean": acc.mean(), "acc_std": acc.std(ddof=1) if len(acc) > 1 else math.nan,
                "n_seeds": len(acc),
                "finite_fp32": finite(surrogate, finite_limit, torch.float32),
                "finite_bf16": finite(surrogate, finite_limit, torch.bfloat16),
                "final_b": runs_of["b"].mean(), "seconds": runs_of["seconds"].mean()}  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows)


def _note(table: pd.DataFrame, epsilons: Sequence[float], epochs: int, seeds: int) -> str:
    col = f"cos_eps_{epsilons[0]:g}"
    closest = table.loc[table[col].idxmax()]
    best = table.loc[table["acc_mean"].idxmax()]
    cols = table[[col, "acc_mean"]].dropna()
    defined = len(cols) >= 3 and cols.nunique().min() > 1
    rho = f"{cols[col].corr(cols['acc_mean'], method='spearman'):.2f}" if defined else "undefined"
    return (f"Closest to the FDG at ε = {epsilons[0]:g}: {closest['surrogate']} "
            f"({closest['framework']}, {closest[col]:.3f}); best accuracy: {best['surrogate']} "
            f"({best['framework']}, {best['acc_mean']:.1f}%); Spearman rank correlation of "
            f"cos-sim and accuracy over the {len(table)} surrogates: {rho}. {epochs} epochs, "
            f"{seeds} seed(s).")  # fmt: skip


def plot(table: pd.DataFrame, eps: float, path: str | Path) -> Path:
    """(a) cos-sim with the FDG at ``eps`` against test accuracy, one point per surrogate (the
    outliers named); (b) every surrogate's cos-sim, sorted, with its accuracy at the bar's end."""
    plt = pyplot()
    col = f"cos_eps_{eps:g}"
    colours = {"dspike": "tab:blue", "spikingjelly": "tab:orange", "snntorch": "tab:green"}
    markers = {"dspike": "o", "spikingjelly": "s", "snntorch": "^"}
    fig, (ax, bars) = plt.subplots(1, 2, figsize=(14, 0.32 * len(table) + 2.5),
                                   gridspec_kw={"width_ratios": [1, 1.2]})  # fmt: skip
    for framework, part in table.groupby("framework", sort=False):
        ax.errorbar(part[col], part["acc_mean"], yerr=part["acc_std"].fillna(0.0),
                    fmt=markers.get(str(framework), "o"), color=colours.get(str(framework)),
                    capsize=3, label=str(framework))  # fmt: skip
    typical = table["acc_mean"].median()
    for _, r in table.iterrows():
        if r[col] < 0.5 or abs(r["acc_mean"] - typical) > 2.0:  # the dense cluster stays unnamed
            ax.annotate(r["surrogate"], (r[col], r["acc_mean"]), fontsize=8,
                        xytext=(4, 4), textcoords="offset points")  # fmt: skip
    ax.set(xlabel=f"cosine similarity with the FDG (ε = {eps:g}), first layer",
           ylabel="test accuracy (%)", title="(a) closeness to the FDG vs accuracy")  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend()
    ordered = table.sort_values(col)
    names = [f"{r['surrogate']} ({r['framework']})" for _, r in ordered.iterrows()]
    values = ordered[col].fillna(0.0)
    bars.barh(names, values, color=[colours.get(f, "grey") for f in ordered["framework"]])
    for y, (value, acc) in enumerate(zip(values, ordered["acc_mean"], strict=True)):
        bars.annotate(f"{acc:.1f}%", (max(value, 0.0), y), xytext=(3, 0),
                      textcoords="offset points", va="center", fontsize=8)  # fmt: skip
    bars.set(xlabel=f"cosine similarity with the FDG (ε = {eps:g})",
             xlim=(min(0.0, values.min()) - 0.05, 1.15),
             title="(b) every surrogate; test accuracy at the bar's end")  # fmt: skip
    bars.tick_params(axis="y", labelsize=8)
    bars.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)

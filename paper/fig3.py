"""Fig. 3: Dspike's forward (Eq. 12) and backward (its derivative) for several temperatures.

x is the membrane potential u, and the curves are what a LIF with threshold ``v_threshold``
uses: Dspike of ``v = u - V_th`` (:class:`dspike.surrogate.Dspike`, window ``|v| <= V_th``, u in
[0, 2 V_th]). At the paper's V_th = 0.5 that is Eq. (11)'s x in [0, 1] (clipped to 0 below 0 and
to 1 above 1).
Outputs in ``out_dir``: ``fig3.csv`` (x, temperature, forward, backward) and ``fig3.png``
(left: forward, right: backward).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch

from dspike.io import atomic_path, pyplot, save_figure
from dspike.spec import NeuronSpec
from dspike.surrogate import Dspike

__all__ = ["curves", "plot", "run"]


def curves(
    temperatures: Sequence[float] = (0.5, 1.0, 2.0, 4.0, 8.0),
    points: int = 601,
    x_range: tuple[float, float] | None = None,
    v_threshold: float = NeuronSpec.v_threshold,
) -> pd.DataFrame:
    """Dspike(x, b) and d/dx Dspike(x, b) on ``points`` values of x, for each temperature b.

    ``x_range`` defaults to ``v_threshold`` +- 1.5 ``v_threshold``: the window and a margin of
    half its width on each side (at V_th = 0.5: [-0.25, 1.25]).
    """
    lo, hi = x_range or (-0.5 * v_threshold, 2.5 * v_threshold)
    x = torch.linspace(lo, hi, points, dtype=torch.float64)
    frames = []
    for b in temperatures:
        s = Dspike(b, v_threshold)
        frames.append(pd.DataFrame({"x": x.numpy(), "temperature": float(b),
                                    "forward": s.primitive(x - v_threshold).numpy(),
                                    "backward": s.grad(x - v_threshold).numpy()}))
    return pd.concat(frames, ignore_index=True)


def plot(
    data: pd.DataFrame, path: str | Path, v_threshold: float = NeuronSpec.v_threshold
) -> Path:
    """Fig. 3's layout: forward (left) and backward (right), one line per temperature."""
    plt = pyplot()

    fig, (fwd, bwd) = plt.subplots(1, 2, figsize=(8.4, 3.4))
    for b, part in data.groupby("temperature"):
        fwd.plot(part["x"], part["forward"], label=f"b = {b:g}")
        bwd.plot(part["x"], part["backward"], label=f"b = {b:g}")
    fwd.set(title="Dspike forward", xlabel="membrane potential u", ylabel="Dspike(u)")
    bwd.set(title="Dspike backward", xlabel="membrane potential u", ylabel="dDspike/du")
    for ax in (fwd, bwd):
        ax.axvline(v_threshold, color="grey", lw=0.8, ls=":")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return save_figure(fig, path)


def run(
    out_dir: str | Path,
    temperatures: Sequence[float] = (0.5, 1.0, 2.0, 4.0, 8.0),
    points: int = 601,
    v_threshold: float = NeuronSpec.v_threshold,
) -> pd.DataFrame:
    """Compute the curves, write ``fig3.csv`` and ``fig3.png``; return the curves."""
    data = curves(temperatures, points, v_threshold=v_threshold)
    out = Path(out_dir)
    with atomic_path(out / "fig3.csv") as tmp:
        data.to_csv(tmp, index=False)
    plot(data, out / "fig3.png", v_threshold)
    return data

"""Energy of counted operations (paper Sec. 5.4, Table 3); plain numbers, no torch.

4.6 pJ per multiply-accumulate (#Mult) and 0.9 pJ per accumulate (#Add), 45 nm CMOS, following
Diet-SNN [27]. :mod:`dspike.energy` counts the operations; the report stage only needs this.
"""

from __future__ import annotations

__all__ = ["E_AC", "E_MAC", "energy"]

E_MAC = 4.6e-12  # J per multiply-accumulate, 45 nm CMOS (Sec. 5.4)
E_AC = 0.9e-12  # J per accumulate


def energy(n_mult: float, n_add: float, e_mac: float = E_MAC, e_ac: float = E_AC) -> float:
    """Energy in joules: ``e_mac * #Mult + e_ac * #Add`` (Sec. 5.4, Table 3)."""
    return e_mac * n_mult + e_ac * n_add

"""Write small, valid Les Houches Event files for the container-backend tests.

Real 2 -> 2 kinematics at 13 TeV (u ubar -> mu+ mu- at m = 20 GeV, g g -> b bbar at fixed
pT), with LHE colour flow, so Pythia 8 can shower them with Beams:frameType = 4 exactly as
it showers MadGraph's output. Only numpy; seeded.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

E_BEAM_GEV = 6500.0


def _two_body(rng: np.random.Generator, n: int, mass_pair_gev: float, m1: float, m2: float, ymax: float):
    """Incoming momenta along z and outgoing 4-vectors for n events at fixed sqrt(s_hat)."""
    y = rng.uniform(-ymax, ymax, n)                       # rapidity of the pair
    tau = mass_pair_gev ** 2 / (2 * E_BEAM_GEV) ** 2
    x1, x2 = np.sqrt(tau) * np.exp(y), np.sqrt(tau) * np.exp(-y)
    cos_t = rng.uniform(-0.9, 0.9, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    e1 = (mass_pair_gev ** 2 + m1 ** 2 - m2 ** 2) / (2 * mass_pair_gev)
    p = np.sqrt(e1 ** 2 - m1 ** 2)
    sin_t = np.sqrt(1 - cos_t ** 2)
    px, py, pz = p * sin_t * np.cos(phi), p * sin_t * np.sin(phi), p * cos_t
    e2 = np.sqrt(p ** 2 + m2 ** 2)
    # boost along z from the pair rest frame to the lab (rapidity y)
    ch, sh = np.cosh(y), np.sinh(y)
    out1 = np.stack([px, py, ch * pz + sh * e1, ch * e1 + sh * pz], axis=1)
    out2 = np.stack([-px, -py, -ch * pz + sh * e2, ch * e2 - sh * pz], axis=1)
    return x1 * E_BEAM_GEV, x2 * E_BEAM_GEV, out1, out2


def write_lhe(path: Path, process: str, n_events: int, seed: int) -> Path:
    """Write `n_events` events of `process` ("dimuon" or "bbbar") to `path` (LHE 1.0)."""
    rng = np.random.default_rng(seed)
    if process == "dimuon":
        ids, masses, scale, mpair = (2, -2, -13, 13), (0.0, 0.0, 0.10566, 0.10566), 20.0, 20.0
        cols = ((501, 0), (0, 501), (0, 0), (0, 0))
    elif process == "bbbar":
        ids, masses, scale, mpair = (21, 21, 5, -5), (0.0, 0.0, 4.7, 4.7), 40.0, 60.0
        cols = ((501, 502), (503, 501), (503, 0), (0, 502))
    else:
        raise ValueError(f"unknown process {process!r}")
    ea, eb, p3, p4 = _two_body(rng, n_events, mpair, masses[2], masses[3], ymax=1.5)
    head = [
        '<LesHouchesEvents version="1.0">', "<header>", "<!-- tests/container/lhe_builder.py -->", "</header>",
        "<init>",
        f" 2212 2212 {E_BEAM_GEV:.8e} {E_BEAM_GEV:.8e} 0 0 247000 247000 3 1",
        " 1.00000000e+00 1.00000000e-02 1.00000000e+00 1",
        "</init>",
    ]
    body = []
    for i in range(n_events):
        rows = [
            (ids[0], -1, 0, 0, *cols[0], 0.0, 0.0, ea[i], ea[i], masses[0]),
            (ids[1], -1, 0, 0, *cols[1], 0.0, 0.0, -eb[i], eb[i], masses[1]),
            (ids[2], 1, 1, 2, *cols[2], *p3[i], masses[2]),
            (ids[3], 1, 1, 2, *cols[3], *p4[i], masses[3]),
        ]
        body.append("<event>")
        body.append(f" 4 1 1.00000000e+00 {scale:.8e} 7.54677100e-03 1.18000000e-01")
        for pid, st, m1, m2, c, ac, px, py, pz, e, m in rows:
            body.append(f" {pid:8d} {st:3d} {m1:4d} {m2:4d} {c:4d} {ac:4d} {px:+.10e} {py:+.10e} {pz:+.10e} "
                        f"{e:.10e} {m:.10e} 0.0 9.0")
        body.append("</event>")
    path.write_text("\n".join(head + body + ["</LesHouchesEvents>"]) + "\n")
    return path

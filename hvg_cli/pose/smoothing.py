"""Temporal smoothing of landmark tracks: the One-Euro filter (Casiez, Roussel, Vogel, CHI 2012).

A first-order low-pass filter whose cutoff rises with the signal's speed:
    cutoff = min_cutoff + beta * |speed|
slow motion (jitter at rest) is filtered hard, fast motion passes with little lag. The speed of a
landmark is the norm of its (filtered) velocity over its coordinates, so x, y, z share one cutoff.
Units: `min_cutoff` in Hz; `beta` in 1/(signal unit): with positions in metres, beta = 1.5 makes a
landmark moving at 2 m/s get a cutoff of min_cutoff + 3 Hz.
"""

from __future__ import annotations

import numpy as np


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    """Smoothing factor of an exponential filter with this cutoff (Hz) at time step dt (s)."""
    tau = 1.0 / (2.0 * np.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


def one_euro(
    x: np.ndarray, fps: float, min_cutoff: float = 1.0, beta: float = 1.5, d_cutoff: float = 1.0
) -> np.ndarray:
    """Filter a track forwards in time.

    x:   [T, N, D] N points with D coordinates per frame (any unit; see the module doc for beta)
    fps: frames per second of the track
    returns: [T, N, D] filtered, same dtype float64. Frame 0 is passed through.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(f"one_euro expects [T, N, D], got {x.shape}")
    T = x.shape[0]
    out = np.empty_like(x)
    if T == 0:
        return out
    dt = 1.0 / float(fps)
    a_d = _alpha(d_cutoff, dt)
    out[0] = x[0]
    dx_hat = np.zeros_like(x[0])  # [N, D] filtered velocity, unit/s
    for t in range(1, T):
        dx = (x[t] - out[t - 1]) / dt  # [N, D]
        dx_hat = a_d * dx + (1.0 - a_d) * dx_hat
        speed = np.linalg.norm(dx_hat, axis=-1, keepdims=True)  # [N, 1]
        a = _alpha(min_cutoff + beta * speed, dt)  # [N, 1]
        out[t] = a * x[t] + (1.0 - a) * out[t - 1]
    return out


def one_euro_reference(
    x: np.ndarray, fps: float, min_cutoff: float = 1.0, beta: float = 1.5, d_cutoff: float = 1.0
) -> np.ndarray:
    """Plain twin of `one_euro`: one point at a time, scalar arithmetic, as in the paper's pseudo-code."""
    x = np.asarray(x, dtype=np.float64)
    T, N, D = x.shape
    out = np.empty_like(x)
    dt = 1.0 / float(fps)
    tau_d = 1.0 / (2.0 * np.pi * d_cutoff)
    a_d = 1.0 / (1.0 + tau_d / dt)
    for n in range(N):
        prev = [float(v) for v in x[0, n]]
        vel = [0.0] * D
        out[0, n] = prev
        for t in range(1, T):
            raw = [(float(x[t, n, k]) - prev[k]) / dt for k in range(D)]
            vel = [a_d * raw[k] + (1.0 - a_d) * vel[k] for k in range(D)]
            speed = sum(v * v for v in vel) ** 0.5
            cutoff = min_cutoff + beta * speed
            a = 1.0 / (1.0 + (1.0 / (2.0 * np.pi * cutoff)) / dt)
            prev = [a * float(x[t, n, k]) + (1.0 - a) * prev[k] for k in range(D)]
            out[t, n] = prev
    return out

"""ScaleRL's compute-scaling curve (arXiv:2510.13786): fit pass rate against compute, extrapolate, compare.

The curve (the paper's Eq. 1) is a sigmoid in compute ``C`` (GPU-hours)::

    R_C = R_0 + (A - R_0) / (1 + (C_mid / C) ** B)

with ``R_0`` the starting pass rate, ``A`` the asymptote (``R_0 <= A <= 1``), ``B > 0`` the scaling exponent and
``C_mid`` the compute at which half of ``A - R_0`` is gained. Points below ``min_compute`` (the paper: ~1,500
GPU-hours, an unstable early regime) are left out of the fit.

How :func:`fit` fits (our procedure; the paper gives the curve and the cut-off, not code): ``R_0`` is fixed; for a
given ``(B, C_mid)`` the curve is linear in ``A - R_0``, so ``A`` has a closed-form least-squares value (clamped to
``[R_0, 1]``); a grid over ``(log B, log C_mid)`` finds the basin and Nelder-Mead refines it. Uncertainty comes
from a residual bootstrap (refits on the fitted curve plus resampled residuals), which also gives the
extrapolation band. :func:`fit_power_law` fits the saturating power law ``R_C = A - D * C ** -alpha`` over the same
points for comparison: on sigmoid-shaped data it over-predicts the asymptote, as the paper reports.

Only numpy is needed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

#: The paper's cut-off: points below this compute (GPU-hours) are the early, unstable regime.
MIN_COMPUTE = 1500.0
#: Fewest points a fit accepts: three parameters (A, B, C_mid) and one degree of freedom left for the residuals.
MIN_POINTS = 4


@dataclass(frozen=True)
class SigmoidFit:
    """A fitted ScaleRL curve, with its bootstrap uncertainty."""

    A: float  # noqa: N815 - the paper's names
    """Asymptotic pass rate."""
    B: float  # noqa: N815
    """Scaling exponent."""
    C_mid: float  # noqa: N815
    """Compute at half of the gain ``A - R_0``."""
    R_0: float  # noqa: N815
    """Starting pass rate (fixed, not fitted)."""
    A_std: float  # noqa: N815
    """Bootstrap standard deviations of the parameters."""
    B_std: float  # noqa: N815
    C_mid_std: float  # noqa: N815
    compute: tuple[float, ...]
    """The points fitted (at or above ``min_compute``), and their residuals ``pass_rate - curve``."""
    pass_rate: tuple[float, ...]
    residuals: tuple[float, ...]
    min_compute: float
    """The cut-off used."""
    excluded: int
    """Points left out below the cut-off."""
    boot: np.ndarray = field(repr=False, compare=False)
    """Bootstrap refits, one ``(A, B, C_mid)`` row each."""

    def predict(self, compute: float | Sequence[float] | np.ndarray) -> np.ndarray:
        """The fitted pass rate at ``compute``."""
        return sigmoid(np.asarray(compute, dtype=float), self.A, self.B, self.C_mid, self.R_0)

    def extrapolate(self, compute: float | Sequence[float] | np.ndarray, level: float = 0.95) -> tuple:
        """The prediction at ``compute`` and its bootstrap band: ``(mean, low, high)`` arrays.

        The band is the central ``level`` of the bootstrap refits' curves, widened by the residual spread (a new
        evaluation at ``compute`` is as noisy as the fitted ones).
        """
        c = np.atleast_1d(np.asarray(compute, dtype=float))
        curves = np.array([sigmoid(c, a, b, m, self.R_0) for a, b, m in self.boot])
        tail = (1.0 - level) / 2.0
        low, high = np.quantile(curves, [tail, 1.0 - tail], axis=0)
        noise = _z(level) * float(np.std(self.residuals, ddof=1)) if len(self.residuals) > 1 else 0.0
        return self.predict(c), low - noise, high + noise

    def summary(self) -> str:
        """One line: the parameters with their standard deviations."""
        return (
            f"A = {self.A:.3f} ± {self.A_std:.3f}, B = {self.B:.2f} ± {self.B_std:.2f}, "
            f"C_mid = {self.C_mid:,.0f} ± {self.C_mid_std:,.0f}, R_0 = {self.R_0:.3f} "
            f"({len(self.compute)} points, {self.excluded} below {self.min_compute:,.0f})"
        )


@dataclass(frozen=True)
class PowerLawFit:
    """``R_C = A - D * C ** -alpha``, the comparison fit."""

    A: float  # noqa: N815
    D: float  # noqa: N815
    alpha: float
    residuals: tuple[float, ...]

    def predict(self, compute: float | Sequence[float] | np.ndarray) -> np.ndarray:
        """The fitted pass rate at ``compute``."""
        return self.A - self.D * np.asarray(compute, dtype=float) ** -self.alpha


def sigmoid(compute: np.ndarray, A: float, B: float, C_mid: float, R_0: float) -> np.ndarray:  # noqa: N803
    """The ScaleRL curve at ``compute``."""
    c = np.maximum(np.asarray(compute, dtype=float), 1e-300)
    return R_0 + (A - R_0) / (1.0 + (C_mid / c) ** B)


def _z(level: float) -> float:
    """The two-sided normal quantile of ``level`` (0.95 -> 1.96), by bisection on erf."""
    from math import erf, sqrt

    lo, hi = 0.0, 10.0
    for _ in range(80):
        mid = (lo + hi) / 2.0
        if erf(mid / sqrt(2.0)) < level:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0


def _points(
    compute: Sequence[float] | np.ndarray, pass_rate: Sequence[float] | np.ndarray, min_compute: float
) -> tuple[np.ndarray, np.ndarray, int]:
    c = np.asarray(compute, dtype=float)
    r = np.asarray(pass_rate, dtype=float)
    if c.shape != r.shape or c.ndim != 1:
        raise ValueError(f"compute and pass_rate must be 1-D and of one length (got {c.shape} and {r.shape})")
    if not (np.isfinite(c).all() and np.isfinite(r).all()):
        raise ValueError("compute and pass_rate must be finite numbers")
    if (r < 0).any() or (r > 1).any():
        raise ValueError("pass rates must lie in [0, 1]")
    kept = c >= min_compute
    if kept.sum() < MIN_POINTS:
        raise ValueError(
            f"{int(kept.sum())} points at or above {min_compute:,.0f} GPU-hours (of {len(c)}): a fit needs at "
            f"least {MIN_POINTS}; evaluate more often, or lower min_compute"
        )
    if (c[kept] <= 0).any():
        raise ValueError("compute must be positive")
    return c[kept], r[kept], int((~kept).sum())


def _closed_form_a(s: np.ndarray, y: np.ndarray, r0: float) -> float:
    """The least-squares asymptote for a fixed curve shape ``s`` (the sigmoid factor), clamped to [R_0, 1]."""
    gain = float(np.dot(s, y - r0) / max(float(np.dot(s, s)), 1e-300))
    return min(max(r0 + gain, r0), 1.0)


def _nelder_mead(
    f: Callable[[np.ndarray], float], x0: np.ndarray, step: np.ndarray, iterations: int = 400
) -> np.ndarray:
    """Minimise ``f`` from ``x0`` (the textbook simplex method: reflect, expand, contract, shrink)."""
    n = len(x0)
    simplex = [x0] + [x0 + np.eye(n)[i] * step[i] for i in range(n)]
    values = [f(x) for x in simplex]
    for _ in range(iterations):
        order = np.argsort(values)
        simplex = [simplex[i] for i in order]
        values = [values[i] for i in order]
        if abs(values[-1] - values[0]) < 1e-14:
            break
        centroid = np.mean(simplex[:-1], axis=0)
        reflected = centroid + (centroid - simplex[-1])
        fr = f(reflected)
        if fr < values[0]:
            expanded = centroid + 2.0 * (centroid - simplex[-1])
            fe = f(expanded)
            simplex[-1], values[-1] = (expanded, fe) if fe < fr else (reflected, fr)
        elif fr < values[-2]:
            simplex[-1], values[-1] = reflected, fr
        else:
            contracted = centroid + 0.5 * (simplex[-1] - centroid)
            fc = f(contracted)
            if fc < values[-1]:
                simplex[-1], values[-1] = contracted, fc
            else:
                simplex = [simplex[0] + 0.5 * (x - simplex[0]) for x in simplex]
                values = [f(x) for x in simplex]
    return simplex[int(np.argmin(values))]


def _fit_sigmoid(
    c: np.ndarray, y: np.ndarray, r0: float, start: tuple[float, float] | None = None
) -> tuple[float, float, float]:
    """``(A, B, C_mid)`` minimising the squared error, ``R_0`` fixed.

    The search starts from ``start`` ``(B, C_mid)`` when given (the bootstrap's refits start from the fit), else
    from the best point of a grid.
    """

    def sse(params: np.ndarray) -> float:
        b, m = np.exp(params[0]), np.exp(params[1])
        s = 1.0 / (1.0 + (m / c) ** b)
        a = _closed_form_a(s, y, r0)
        return float(np.sum((r0 + (a - r0) * s - y) ** 2))

    if start is not None:
        best = np.log(np.array(start))
    else:
        log_c = np.log(c)
        best, best_value = np.zeros(2), np.inf
        for log_b in np.linspace(np.log(0.1), np.log(8.0), 40):
            for log_m in np.linspace(log_c.min() - 3.0, log_c.max() + 4.0, 60):
                value = sse(np.array([log_b, log_m]))
                if value < best_value:
                    best, best_value = np.array([log_b, log_m]), value
    refined = _nelder_mead(sse, best, np.array([0.1, 0.2]))
    b, m = float(np.exp(refined[0])), float(np.exp(refined[1]))
    a = _closed_form_a(1.0 / (1.0 + (m / c) ** b), y, r0)
    return a, b, m


def fit(
    compute: Sequence[float] | np.ndarray,
    pass_rate: Sequence[float] | np.ndarray,
    r0: float | None = None,
    min_compute: float = MIN_COMPUTE,
    bootstrap: int = 200,
    seed: int = 0,
) -> SigmoidFit:
    """Fit the ScaleRL sigmoid to ``(compute, pass_rate)`` points.

    Args:
        compute: cumulative compute of each evaluation (GPU-hours, or any unit used consistently).
        pass_rate: the held-out pass rate (mean@k) at each.
        r0: the starting pass rate; None: the pass rate of the lowest-compute point given (the step-0 evaluation
            when there is one), before the cut-off.
        min_compute: points below it are left out (the paper's early regime).
        bootstrap: residual-bootstrap refits for the uncertainty (0: none, all deviations 0).
        seed: the bootstrap's random seed.

    Raises:
        ValueError: fewer than four points at or above the cut-off, values out of range, or a flat curve (no gain
            over ``R_0`` to fit).

    """
    all_c = np.asarray(compute, dtype=float)
    all_r = np.asarray(pass_rate, dtype=float)
    c, y, excluded = _points(all_c, all_r, min_compute)
    r0 = float(all_r[int(np.argmin(all_c))]) if r0 is None else float(r0)
    if not 0.0 <= r0 <= 1.0:
        raise ValueError(f"r0 must lie in [0, 1] (got {r0})")
    if float(np.max(y)) - r0 <= 1e-3 or float(np.ptp(y)) <= 1e-3:
        raise ValueError(
            f"a flat curve: the pass rates ({float(y.min()):.3f}..{float(y.max()):.3f}) show no gain over "
            f"R_0 = {r0:.3f} to fit a sigmoid to"
        )
    a, b, m = _fit_sigmoid(c, y, r0)
    fitted = sigmoid(c, a, b, m, r0)
    residuals = y - fitted
    rng = np.random.default_rng(seed)
    boot = np.array(
        [_fit_sigmoid(c, fitted + rng.choice(residuals, len(c)), r0, start=(b, m)) for _ in range(bootstrap)]
    )
    if len(boot) == 0:
        boot = np.array([[a, b, m]])
    std = boot.std(axis=0, ddof=1) if len(boot) > 1 else np.zeros(3)
    return SigmoidFit(
        A=a, B=b, C_mid=m, R_0=r0, A_std=float(std[0]), B_std=float(std[1]), C_mid_std=float(std[2]),
        compute=tuple(map(float, c)), pass_rate=tuple(map(float, y)), residuals=tuple(map(float, residuals)),
        min_compute=float(min_compute), excluded=excluded, boot=boot,
    )  # fmt: skip


def fit_power_law(
    compute: Sequence[float] | np.ndarray, pass_rate: Sequence[float] | np.ndarray, min_compute: float = MIN_COMPUTE
) -> PowerLawFit:
    """Fit ``R_C = A - D * C ** -alpha`` over the same points as :func:`fit` (the paper's comparison).

    For a fixed ``alpha`` the curve is linear in ``(A, D)``: least squares gives both; a scan over ``alpha`` with a
    Nelder-Mead refinement picks it.

    Raises:
        ValueError: as :func:`fit` for too few points.

    """
    c, y, _ = _points(compute, pass_rate, min_compute)

    def solve(alpha: float) -> tuple[float, float, float]:
        design = np.column_stack([np.ones_like(c), -(c**-alpha)])
        (a, d), *_ = np.linalg.lstsq(design, y, rcond=None)
        return float(a), float(d), float(np.sum((design @ np.array([a, d]) - y) ** 2))

    alphas = np.exp(np.linspace(np.log(0.01), np.log(5.0), 200))
    start = float(np.log(alphas[int(np.argmin([solve(x)[2] for x in alphas]))]))
    log_alpha = _nelder_mead(lambda p: solve(float(np.exp(p[0])))[2], np.array([start]), np.array([0.05]))
    alpha = float(np.exp(log_alpha[0]))
    a, d, _ = solve(alpha)
    residuals = y - (a - d * c**-alpha)
    return PowerLawFit(A=a, D=d, alpha=alpha, residuals=tuple(map(float, residuals)))


__all__ = ["MIN_COMPUTE", "MIN_POINTS", "PowerLawFit", "SigmoidFit", "fit", "fit_power_law", "sigmoid"]

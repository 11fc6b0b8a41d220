"""The ScaleRL curve fitter on curves drawn from known parameters (the paper's Table 1 fits), with evaluation noise.

Each curve has R_0 = 0.05 (the table gives none; a small starting pass rate), 40 evaluations log-spaced from 300
to 100,000 GPU-hours (those under the 1,500 cut-off are left out), and Gaussian noise of 0.005 on every pass
rate (mean@16 over 1,000 prompts has a standard error of about that). Tolerances: A within 0.02 (the paper's
run-to-run spread of A), B within 15%, C_mid within 20%.
"""

import numpy as np
import pytest
from sandgym import scaling

R0 = 0.05
# (name, C_mid, B, A): ScaleRL's Table 1.
TABLE_1 = [
    ("Scout 17Bx16", 4242, 1.65, 0.710),
    ("8B batch 512", 2818, 1.77, 0.605),
    ("8B batch 2048", 10909, 1.70, 0.645),
    ("math", 2896, 2.05, 0.595),
    ("code", 1675, 1.09, 0.615),
]


def curve(c_mid, b, a, seed, top=100_000.0, points=40, noise=0.005):
    compute = np.geomspace(300.0, top, points)
    rng = np.random.default_rng(seed)
    return compute, scaling.sigmoid(compute, a, b, c_mid, R0) + rng.normal(0.0, noise, points)


@pytest.mark.parametrize(("name", "c_mid", "b", "a"), TABLE_1)
def test_table_1_curves_are_recovered(name, c_mid, b, a):
    compute, rate = curve(c_mid, b, a, seed=sum(map(ord, name)))
    fit = scaling.fit(compute, rate, r0=R0, bootstrap=50)
    assert abs(fit.A - a) < 0.02, fit.summary()
    assert abs(fit.B - b) / b < 0.15, fit.summary()
    assert abs(fit.C_mid - c_mid) / c_mid < 0.20, fit.summary()
    assert fit.excluded == int((compute < scaling.MIN_COMPUTE).sum()) > 0
    assert len(fit.residuals) == len(fit.compute) and abs(float(np.mean(fit.residuals))) < 0.005
    assert 0 < fit.A_std < 0.05 and fit.B_std > 0 and fit.C_mid_std > 0


@pytest.mark.parametrize(("name", "c_mid", "b", "a"), TABLE_1)
def test_half_the_compute_predicts_the_rest_within_the_band(name, c_mid, b, a):
    compute, rate = curve(c_mid, b, a, seed=1 + sum(map(ord, name)))
    early = compute <= compute.max() / 2
    fit = scaling.fit(compute[early], rate[early], r0=R0, bootstrap=200)
    mean, low, high = fit.extrapolate(compute[~early])
    assert (low <= rate[~early]).all() and (rate[~early] <= high).all(), (name, fit.summary())
    truth = scaling.sigmoid(compute[~early], a, b, c_mid, R0)
    assert np.abs(mean - truth).max() < 0.02


def test_a_power_law_over_predicts_the_asymptote():
    # The paper's comparison: on the 8B batch-2048 run, a power law fitted over (5k, 50k) puts the asymptote well
    # above the sigmoid's (0.74 against 0.645).
    compute, rate = curve(10909, 1.70, 0.645, seed=7, top=50_000.0)
    window = compute >= 5000
    sigmoid_fit = scaling.fit(compute[window], rate[window], r0=R0, min_compute=5000, bootstrap=20)
    power = scaling.fit_power_law(compute[window], rate[window], min_compute=5000)
    assert power.A > sigmoid_fit.A + 0.03 and power.A > 0.645 + 0.03
    assert abs(sigmoid_fit.A - 0.645) < 0.03
    assert np.abs(power.residuals).max() < 0.03  # it fits the window itself well


def test_too_few_points_and_flat_curves_are_clear_errors():
    with pytest.raises(ValueError, match="a fit needs at least 4"):
        scaling.fit([2000.0, 4000.0, 8000.0], [0.2, 0.3, 0.35], r0=0.05)
    with pytest.raises(ValueError, match="points at or above 1,500"):
        scaling.fit([100.0, 200.0, 400.0, 800.0, 1600.0], [0.1, 0.2, 0.3, 0.4, 0.5])
    with pytest.raises(ValueError, match="a flat curve"):
        scaling.fit([2000.0, 4000.0, 8000.0, 16000.0], [0.3, 0.3, 0.3, 0.3], r0=0.3)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        scaling.fit([2000.0, 4000.0, 8000.0, 16000.0], [0.3, 1.3, 0.3, 0.3])
    with pytest.raises(ValueError, match="one length"):
        scaling.fit([2000.0, 4000.0], [0.3])


def test_r0_defaults_to_the_first_evaluation():
    compute, rate = curve(2818, 1.77, 0.605, seed=3)
    compute = np.concatenate([[0.0], compute])
    rate = np.concatenate([[R0], rate])
    fit = scaling.fit(compute, rate, bootstrap=0)
    assert fit.R_0 == R0 and abs(fit.A - 0.605) < 0.02 and fit.A_std == 0.0

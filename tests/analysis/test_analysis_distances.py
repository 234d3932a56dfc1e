"""EMD and separation power: zero for identical samples, known values for simple ones."""
from __future__ import annotations

import numpy as np
import pytest

from analysis.distances import separation_power, weighted_emd
from analysis.errors import AnalysisError


def test_emd_of_identical_samples_is_zero() -> None:
    rng = np.random.default_rng(0)
    x, w = rng.exponential(1.0, 1000), rng.uniform(0.5, 1.5, 1000)
    assert weighted_emd(x, x, w, w) == 0.0
    assert weighted_emd(x, x[::-1], w, w[::-1]) == pytest.approx(0.0, abs=1e-12)
    # same distribution written twice: weights per entry, not per list
    assert weighted_emd(x, np.concatenate([x, x]), w, np.concatenate([w, w])) == pytest.approx(0.0, abs=1e-12)


def test_emd_known_values() -> None:
    x = np.array([0.0, 1.0, 3.0])
    assert weighted_emd(x, x + 0.25) == pytest.approx(0.25)
    # mass 3/4 at 0 and 1/4 at 1 vs 1/4 and 3/4: half the mass moves by 1
    assert weighted_emd([0, 1], [0, 1], [3, 1], [1, 3]) == pytest.approx(0.5)


def test_separation_power_bounds() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=2000)
    assert separation_power(x, x) == pytest.approx(0.0, abs=1e-15)
    assert separation_power(x, x + 100.0) == pytest.approx(1.0)
    assert 0.0 < separation_power(x, x + 0.5) < 1.0
    # discrete feature: duplicate quantile edges are merged, still 0 for identical
    k = rng.integers(0, 3, 500).astype(float)
    assert separation_power(k, k) == pytest.approx(0.0, abs=1e-15)


@pytest.mark.parametrize(
    ("values", "weights", "match"),
    [([], None, "no values"), ([1.0, np.nan], None, "NaN"), ([1.0, 2.0], [1.0, -1.0], "weights must be >= 0"),
     ([1.0, 2.0], [1.0], "1 weights for 2 values")],
)
def test_bad_inputs_are_clear_errors(values, weights, match) -> None:
    with pytest.raises(AnalysisError, match=match):
        weighted_emd(values, [1.0], weights, None)


def test_emd_noise_floor_matches_the_emd_of_two_samples_of_one_distribution() -> None:
    """The floor predicts the EMD between the real sample and a perfect generator's sample."""
    from analysis.distances import emd_noise_floor

    rng = np.random.default_rng(11)
    n = 4000
    real = rng.exponential(1.0, n)
    floor = emd_noise_floor(real, np.ones(n), n, np.random.default_rng(3))
    perfect = [weighted_emd(real, rng.exponential(1.0, n)) for _ in range(30)]
    # EMD of two exponential samples of 4000: ~0.02; the floor is within 35% of the average
    assert 0.65 * np.mean(perfect) < floor < 1.35 * np.mean(perfect)
    # and it falls like 1/sqrt(n) when the generated sample grows
    bigger = emd_noise_floor(real, np.ones(n), 16 * n, np.random.default_rng(3))
    assert np.isclose(bigger / floor, np.sqrt((1 / n + 1 / (16 * n)) / (2 / n)), rtol=1e-9)

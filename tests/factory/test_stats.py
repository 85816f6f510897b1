"""Worked examples for the factory statistics (papers' own numbers where they give them)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from strategy.factory import stats
from strategy.factory.thresholds import THRESHOLDS

scipy_stats = pytest.importorskip("scipy.stats")


def test_norm_ppf_matches_scipy() -> None:
    for p in (1e-9, 0.001, 0.02, 0.3, 0.5, 0.7, 0.99, 1 - 1e-9):
        assert stats.norm_ppf(p) == pytest.approx(float(scipy_stats.norm.ppf(p)), rel=1e-12, abs=1e-15)
    assert stats.norm_cdf(1.96) == pytest.approx(0.9750021048517795, abs=1e-12)


def test_psr_hand_example_normal_returns() -> None:
    # SR = 0.1 per period, T = 101, normal (skew 0, kurt 3): z = 0.1*10 / sqrt(1 + 0.01/2)
    z = 1.0 / math.sqrt(1.005)
    psr = stats.probabilistic_sharpe_ratio(0.1, 101, 0.0, 3.0, 0.0)
    assert psr == pytest.approx(float(scipy_stats.norm.cdf(z)), abs=1e-12)
    assert psr == pytest.approx(0.84074, abs=1e-4)
    # negative skew and fat tails widen the SR's standard error -> lower PSR
    assert stats.probabilistic_sharpe_ratio(0.1, 101, -2.0, 9.0) < psr
    # benchmark equal to the estimate -> exactly 0.5
    assert stats.probabilistic_sharpe_ratio(0.1, 101, -1.0, 6.0, 0.1) == pytest.approx(0.5)


def test_dsr_paper_numeric_example() -> None:
    # Bailey & Lopez de Prado (2014), numerical example: 100 trials, variance of the trials'
    # annualised SRs 1/2, best annualised SR 2.5, 5 years of daily data (T = 1250, 250/yr),
    # skew -3, kurtosis 10. The paper reports SR_0 ~ 0.1132 (per day) and DSR ~ 0.9004.
    sr = 2.5 / math.sqrt(250)
    res = stats.deflated_sharpe_ratio(sr, 1250, 100, 0.5 / 250, skew=-3.0, kurtosis=10.0)
    assert res.sr0 == pytest.approx(0.1132, abs=5e-5)
    assert res.sr0 * math.sqrt(250) == pytest.approx(1.7894, abs=5e-4)
    assert res.dsr == pytest.approx(0.9004, abs=5e-4)
    # below the 0.95 gate, although the undeflated PSR(0) is ~1
    assert res.dsr < THRESHOLDS.dsr_min < res.psr0


def test_expected_max_sharpe_against_simulation() -> None:
    rng = np.random.default_rng(7)
    n_trials, sims = 100, 4000
    maxima = rng.standard_normal((sims, n_trials)).max(axis=1)
    assert stats.expected_max_sharpe(n_trials, 1.0) == pytest.approx(float(maxima.mean()), abs=0.03)
    assert stats.expected_max_sharpe(1, 4.0) == 0.0
    assert stats.expected_max_sharpe(100, 4.0) == pytest.approx(2 * stats.expected_max_sharpe(100, 1.0))


def test_moments_and_running_variance() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_t(5, 5000) * 0.01
    m = stats.moments(x)
    assert m.skew == pytest.approx(float(scipy_stats.skew(x)), rel=1e-9)
    assert m.kurtosis == pytest.approx(float(scipy_stats.kurtosis(x, fisher=False)), rel=1e-9)
    rv = stats.RunningVariance()
    for v in x:
        rv.push(float(v))
    rv.push(float("nan"))  # ignored
    assert rv.count == x.size
    assert rv.variance == pytest.approx(float(np.var(x, ddof=1)), rel=1e-9)


def test_purged_kfold_hand_example() -> None:
    # 10 observations, each label spans [i, i+1]; 5 folds of 2; embargo 1 observation.
    ends = [min(i + 1, 9) for i in range(10)]
    splits = stats.purged_kfold_splits(10, 5, ends, embargo=1)
    assert [s.test for s in splits] == [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
    # fold 2 tests 4,5 (labels reach 6): purge 3 (its label ends at 4) and 6 (starts inside);
    # embargo drops 7, the observation after the test labels end.
    assert splits[2].train == (0, 1, 2, 8, 9)
    assert splits[0].train == (4, 5, 6, 7, 8, 9)  # purge 2, embargo 3
    assert splits[4].train == (0, 1, 2, 3, 4, 5, 6)  # purge 7, nothing after
    # no purging or embargo: plain K-fold
    plain = stats.purged_kfold_splits(10, 5)
    assert plain[2].train == (0, 1, 2, 3, 6, 7, 8, 9)
    assert stats.embargo_size(1000, 0.01) == 10


def test_cpcv_counts_and_paths() -> None:
    # AFML ch. 12: N = 6 groups, k = 2 -> C(6,2) = 15 splits and phi = 5 paths
    splits = stats.cpcv_splits(60, 6, 2)
    assert len(splits) == 15
    assert stats.cpcv_n_paths(6, 2) == 5
    paths = stats.cpcv_paths(6, 2)
    assert len(paths) == 5
    used = sorted((s, g) for p in paths for g, s in enumerate(p))
    expected = sorted((s, g) for s, sp in enumerate(splits) for g in sp.test_groups)
    assert used == expected  # each (split, tested group) forecast used in exactly one path
    for p in paths:
        for g, s in enumerate(p):
            assert g in splits[s].test_groups
    # path 0 = first split testing each group: (0,1)->s0 for g0,g1; (0,2) not first for g0...
    assert paths[0] == [0, 0, 1, 2, 3, 4]


def test_pbo_hand_examples() -> None:
    # Two trials, two blocks of two rows (S = 2 -> 2 combinations).
    robust = np.array([[0.01, 0.01], [0.03, 0.02], [-0.01, 0.01], [-0.03, 0.02]])
    r = stats.pbo_cscv(robust, n_blocks=2)
    assert r.n_combinations == 2
    assert r.pbo == 0.0  # trial 1 is IS-best both times and OOS-best both times
    assert r.logits == pytest.approx((math.log(2), math.log(2)))
    overfit = np.array([[0.01, 0.01], [0.02, 0.03], [-0.02, -0.03], [-0.01, -0.01]])
    o = stats.pbo_cscv(overfit, n_blocks=2)
    assert o.pbo == 1.0  # the IS winner is the OOS loser in both halves
    assert o.logits == pytest.approx((-math.log(2), -math.log(2)))
    assert stats.pbo_cscv(np.zeros((16, 3)) + np.arange(3), n_blocks=4).n_combinations == 6


def test_monte_carlo_trade_order() -> None:
    pnl = [100.0, -50.0, 30.0, -20.0, 80.0]
    sh = stats.monte_carlo_trades(pnl, iterations=500, seed=42, method="shuffle")
    assert sh.pnl_p05 == pytest.approx(140.0) and sh.prob_loss == 0.0
    assert 0.0 <= sh.max_dd_p50 <= sh.max_dd_p95 <= 70.0
    bs = stats.monte_carlo_trades(pnl, iterations=2000, seed=42)
    assert bs == stats.monte_carlo_trades(pnl, iterations=2000, seed=42)  # seeded
    assert bs.pnl_p05 < 140.0 < bs.max_dd_p95 + 140.0
    assert stats.monte_carlo_trades([5.0, 5.0], iterations=10).max_dd_p95 == 0.0


def _trial_matrix(seed: int, robust: bool) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t, n = 1000, 200
    m = rng.normal(0.0, 0.01, (t, n))
    if robust:
        m[:, 0] = rng.normal(0.0025, 0.01, t)  # a real edge: SR 0.25 per period
    return m


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_overfit_rejected_robust_passes(seed: int) -> None:
    for robust in (False, True):
        m = _trial_matrix(seed, robust)
        srs = m.mean(axis=0) / m.std(axis=0, ddof=1)
        best = int(np.argmax(srs))
        mo = stats.moments(m[:, best])
        dsr = stats.deflated_sharpe_ratio(
            mo.sharpe, mo.n, m.shape[1], float(np.var(srs, ddof=1)), mo.skew, mo.kurtosis
        )
        pbo = stats.pbo_cscv(m, n_blocks=10)
        if robust:
            assert best == 0
            assert dsr.dsr >= THRESHOLDS.dsr_min, dsr
            assert pbo.pbo <= THRESHOLDS.pbo_max, pbo.pbo
        else:
            # the best of 200 noise trials looks good undeflated but fails both
            assert dsr.psr0 > 0.9
            assert dsr.dsr < THRESHOLDS.dsr_min, dsr
            assert pbo.pbo > THRESHOLDS.pbo_max, pbo.pbo


def test_cv_selection_on_noise_vs_edge() -> None:
    m = _trial_matrix(5, robust=False)
    ends = [min(i + 5, 999) for i in range(1000)]
    kf = stats.purged_kfold_splits(1000, 5, ends, embargo=stats.embargo_size(1000, 0.01))
    noise = stats.cv_selection_oos(m, kf)
    edge = stats.cv_selection_oos(_trial_matrix(5, robust=True), kf)
    assert abs(noise.mean) < 0.1
    assert edge.mean > 0.15
    cp = stats.cpcv_selection_paths(_trial_matrix(5, True), 6, 2, ends, embargo=10)
    assert len(cp.path_sharpes) == 5 and min(cp.path_sharpes) > 0.15


def test_pbo_counts_a_median_oos_rank_as_overfit() -> None:
    # Three trials; the IS winner of each half ranks exactly in the middle OOS (rank 2 of 3):
    # omega = 2 / 4 = 0.5, logit = 0.0. Bailey et al. count logit <= 0 as overfit, so PBO = 1.
    m = np.array([[3, 2, 0], [1, 0, -2], [2, 3, 0], [0, 1, -2]], dtype=float)
    r = stats.pbo_cscv(m, n_blocks=2)
    assert r.logits == (0.0, 0.0)
    assert r.pbo == 1.0

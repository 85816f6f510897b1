"""Overfitting statistics, implemented from the original papers (pure functions, numpy only).

- PSR: Bailey & Lopez de Prado (2012), "The Sharpe Ratio Efficient Frontier".
- Expected maximum Sharpe of N trials and DSR: Bailey & Lopez de Prado (2014),
  "The Deflated Sharpe Ratio".
- Purged K-fold with embargo, combinatorial purged CV (CPCV): Lopez de Prado (2018),
  "Advances in Financial Machine Learning", ch. 7 and 12.
- PBO via CSCV: Bailey, Borwein, Lopez de Prado & Zhu (2015),
  "The Probability of Backtest Overfitting".
- Monte Carlo bootstrap of the order of trades.

All Sharpe ratios here are *per observation* (not annualised) unless a name says otherwise;
kurtosis is the plain (non-excess) fourth standardised moment, 3 for a normal distribution.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

EULER_GAMMA = 0.5772156649015329


# --------------------------------------------------------------------------- normal distribution


_STD_NORMAL = NormalDist()


def norm_cdf(x: float) -> float:
    """Standard normal CDF (the standard library's, to double precision)."""
    return _STD_NORMAL.cdf(x)


def norm_ppf(p: float) -> float:
    """Inverse standard normal CDF (the standard library's Wichura AS241, to double precision)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"norm_ppf needs 0 < p < 1, got {p}")
    return _STD_NORMAL.inv_cdf(p)


# --------------------------------------------------------------------------- moments


@dataclass(frozen=True)
class ReturnMoments:
    """Sample moments of a return series (per observation)."""

    n: int
    mean: float
    std: float  # ddof = 1
    sharpe: float  # mean / std, per observation
    skew: float  # biased (population) estimator, as in the papers
    kurtosis: float  # non-excess; normal = 3


def moments(returns: Sequence[float] | FloatArray) -> ReturnMoments:
    r = np.asarray(returns, dtype=np.float64)
    n = int(r.size)
    if n < 2:
        raise ValueError("need at least 2 returns")
    mean = float(r.mean())
    std = float(r.std(ddof=1))
    dev = r - mean
    m2 = float(np.mean(dev**2))
    if m2 == 0.0:
        return ReturnMoments(n, mean, 0.0, 0.0, 0.0, 3.0)
    skew = float(np.mean(dev**3)) / m2**1.5
    kurt = float(np.mean(dev**4)) / m2**2
    sharpe = mean / std if std > 0 else 0.0
    return ReturnMoments(n, mean, std, sharpe, skew, kurt)


def sharpe_std_error(sr: float, n: int, skew: float, kurtosis: float) -> float:
    """Std error of the SR estimator under non-normal returns (Mertens 2002, used by PSR)."""
    var = (1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr * sr) / (n - 1)
    return math.sqrt(max(var, 1e-300))


# --------------------------------------------------------------------------- PSR / DSR


def probabilistic_sharpe_ratio(
    sr: float, n: int, skew: float = 0.0, kurtosis: float = 3.0, sr_benchmark: float = 0.0
) -> float:
    """PSR(SR*) = Phi((SR - SR*) sqrt(n-1) / sqrt(1 - skew SR + (kurt-1)/4 SR^2)).

    ``sr`` and ``sr_benchmark`` per observation; ``n`` observations.
    """
    if n < 2:
        raise ValueError("PSR needs n >= 2")
    return norm_cdf((sr - sr_benchmark) / sharpe_std_error(sr, n, skew, kurtosis))


def expected_max_sharpe(n_trials: int, sr_variance: float, sr_mean: float = 0.0) -> float:
    """E[max SR] of ``n_trials`` independent trials whose SR estimates have variance
    ``sr_variance`` (False Strategy Theorem, DSR paper eq. for SR_0):

    SR_0 = mean + sqrt(V) ((1 - gamma) Z^-1(1 - 1/N) + gamma Z^-1(1 - 1/(N e))).
    """
    if n_trials < 1:
        raise ValueError("n_trials must be >= 1")
    if n_trials == 1:
        return sr_mean
    z1 = norm_ppf(1.0 - 1.0 / n_trials)
    z2 = norm_ppf(1.0 - 1.0 / (n_trials * math.e))
    return sr_mean + math.sqrt(max(sr_variance, 0.0)) * ((1.0 - EULER_GAMMA) * z1 + EULER_GAMMA * z2)


@dataclass(frozen=True)
class DeflatedSharpe:
    dsr: float
    psr0: float  # PSR against a zero benchmark
    sr: float  # per observation
    sr0: float  # expected max SR of the trials (the deflated benchmark)
    n: int
    n_trials: int
    sr_variance: float
    skew: float
    kurtosis: float


def deflated_sharpe_ratio(
    sr: float,
    n: int,
    n_trials: int,
    sr_variance: float,
    skew: float = 0.0,
    kurtosis: float = 3.0,
) -> DeflatedSharpe:
    """DSR = PSR(SR_0) with SR_0 the expected maximum SR of ``n_trials`` trials."""
    sr0 = expected_max_sharpe(n_trials, sr_variance)
    return DeflatedSharpe(
        dsr=probabilistic_sharpe_ratio(sr, n, skew, kurtosis, sr0),
        psr0=probabilistic_sharpe_ratio(sr, n, skew, kurtosis, 0.0),
        sr=sr,
        sr0=sr0,
        n=n,
        n_trials=n_trials,
        sr_variance=sr_variance,
        skew=skew,
        kurtosis=kurtosis,
    )


class RunningVariance:
    """Welford's streaming mean/variance (bounded memory over any number of trials)."""

    __slots__ = ("_m2", "count", "mean")

    def __init__(self) -> None:
        self.count = 0
        self.mean = 0.0
        self._m2 = 0.0

    def push(self, x: float) -> None:
        if not math.isfinite(x):
            return
        self.count += 1
        delta = x - self.mean
        self.mean += delta / self.count
        self._m2 += delta * (x - self.mean)

    @property
    def variance(self) -> float:
        return self._m2 / (self.count - 1) if self.count > 1 else 0.0


# --------------------------------------------------------------------------- purged CV


@dataclass(frozen=True)
class Split:
    train: tuple[int, ...]
    test: tuple[int, ...]
    test_groups: tuple[int, ...]


def _group_bounds(n: int, n_groups: int) -> list[tuple[int, int]]:
    if n_groups < 2 or n_groups > n:
        raise ValueError(f"need 2 <= groups <= n, got groups={n_groups}, n={n}")
    edges = np.linspace(0, n, n_groups + 1).astype(int)
    return [(int(edges[g]), int(edges[g + 1])) for g in range(n_groups)]


def _purged_train(
    n: int, test_idx: Sequence[int], label_end: Sequence[int] | None, embargo: int
) -> tuple[int, ...]:
    """Indices not in test, not overlapping any test label interval, not embargoed.

    Observation i's label spans [i, label_end[i]] (inclusive, indices). Purging drops train
    observations whose span overlaps a test span; the embargo drops the ``embargo`` observations
    that follow each contiguous test block (AFML 7.4.1-7.4.2).
    """
    ends = np.arange(n) if label_end is None else np.asarray(label_end, dtype=np.int64)
    if ends.shape != (n,):
        raise ValueError("label_end must have one entry per observation")
    keep = np.ones(n, dtype=bool)
    test = np.asarray(sorted(test_idx), dtype=np.int64)
    keep[test] = False
    # contiguous test blocks
    blocks: list[tuple[int, int]] = []
    start = prev = int(test[0])
    for t in test[1:]:
        t = int(t)
        if t != prev + 1:
            blocks.append((start, prev))
            start = t
        prev = t
    blocks.append((start, prev))
    starts = np.arange(n)
    for b0, b1 in blocks:
        t_start, t_end = b0, int(ends[b0 : b1 + 1].max())
        overlap = (starts <= t_end) & (ends >= t_start)
        keep &= ~overlap
        if embargo > 0:
            keep[t_end + 1 : t_end + 1 + embargo] = False
    return tuple(int(i) for i in np.flatnonzero(keep))


def purged_kfold_splits(
    n: int, k: int, label_end: Sequence[int] | None = None, embargo: int = 0
) -> list[Split]:
    """K contiguous test folds; train purged of overlapping labels and embargoed after each fold."""
    out = []
    for g, (a, b) in enumerate(_group_bounds(n, k)):
        test = tuple(range(a, b))
        out.append(Split(_purged_train(n, test, label_end, embargo), test, (g,)))
    return out


def embargo_size(n: int, pct: float) -> int:
    """AFML: h = ceil(pct * T) observations after each test block."""
    return math.ceil(pct * n)


def cpcv_splits(
    n: int, n_groups: int, k_test: int, label_end: Sequence[int] | None = None, embargo: int = 0
) -> list[Split]:
    """Combinatorial purged CV: every choice of ``k_test`` of ``n_groups`` groups as the test set."""
    if not 1 <= k_test < n_groups:
        raise ValueError("need 1 <= k_test < n_groups")
    bounds = _group_bounds(n, n_groups)
    out = []
    for groups in combinations(range(n_groups), k_test):
        test = tuple(i for g in groups for i in range(*bounds[g]))
        out.append(Split(_purged_train(n, test, label_end, embargo), test, groups))
    return out


def cpcv_n_paths(n_groups: int, k_test: int) -> int:
    """phi[N, k] = k/N * C(N, k) = C(N-1, k-1) backtest paths."""
    return math.comb(n_groups - 1, k_test - 1)


def cpcv_paths(n_groups: int, k_test: int) -> list[list[int]]:
    """Assign each (group, split) test result to a path: path p takes, for every group, the split
    in which that group is tested for the p-th time (splits in lexicographic order).

    Returns ``paths[p][g]`` = index of the split whose forecast covers group g in path p.
    """
    splits = list(combinations(range(n_groups), k_test))
    seen = [0] * n_groups
    n_paths = cpcv_n_paths(n_groups, k_test)
    paths = [[-1] * n_groups for _ in range(n_paths)]
    for s, groups in enumerate(splits):
        for g in groups:
            paths[seen[g]][g] = s
            seen[g] += 1
    return paths


@dataclass(frozen=True)
class CVResult:
    fold_sharpes: tuple[float, ...]  # per-observation OOS Sharpe of the selected column per split
    mean: float
    std: float
    path_sharpes: tuple[float, ...]  # CPCV only (empty for K-fold)


def _sharpe(x: FloatArray) -> float:
    if x.size < 2:
        return 0.0
    sd = float(x.std(ddof=1))
    return float(x.mean()) / sd if sd > 0 else 0.0


def _columns(returns: FloatArray) -> FloatArray:
    """A (T x N) return matrix; one series is one column."""
    m = np.asarray(returns, dtype=np.float64)
    return m[:, None] if m.ndim == 1 else m


def _selected(m: FloatArray, sp: Split, select: int | None) -> int:
    """The column a split evaluates: ``select``, or the best in-sample (train) Sharpe."""
    if select is not None:
        return select
    tr = m[list(sp.train)]
    return int(np.argmax([_sharpe(tr[:, j]) for j in range(m.shape[1])]))


def cv_selection_oos(returns: FloatArray, splits: Sequence[Split], select: int | None = None) -> CVResult:
    """Out-of-sample Sharpe per split of a selection procedure on a (T x N) return matrix.

    With ``select=None`` the column with the best in-sample (train) Sharpe is chosen on every
    split (the sweep's selection rule); with an index, that column is evaluated (a fixed config).
    """
    m = _columns(returns)
    sh = [_sharpe(m[list(sp.test), _selected(m, sp, select)]) for sp in splits]
    arr = np.asarray(sh)
    return CVResult(tuple(sh), float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0, ())


def cpcv_selection_paths(
    returns: FloatArray,
    n_groups: int,
    k_test: int,
    label_end: Sequence[int] | None = None,
    embargo: int = 0,
    select: int | None = None,
) -> CVResult:
    """CPCV: OOS returns of the selected column stitched into C(N-1, k-1) full backtest paths."""
    m = _columns(returns)
    t = m.shape[0]
    splits = cpcv_splits(t, n_groups, k_test, label_end, embargo)
    bounds = _group_bounds(t, n_groups)
    chosen = [_selected(m, sp, select) for sp in splits]
    fold = [_sharpe(m[list(sp.test), col]) for sp, col in zip(splits, chosen, strict=True)]
    path_sh = []
    for path in cpcv_paths(n_groups, k_test):
        seg = [m[bounds[g][0] : bounds[g][1], chosen[s]] for g, s in enumerate(path)]
        path_sh.append(_sharpe(np.concatenate(seg)))
    arr = np.asarray(fold)
    return CVResult(
        tuple(fold),
        float(arr.mean()),
        float(arr.std(ddof=1)) if arr.size > 1 else 0.0,
        tuple(path_sh),
    )


# --------------------------------------------------------------------------- PBO / CSCV


@dataclass(frozen=True)
class PBOResult:
    pbo: float  # share of combinations whose IS-best is at or below the OOS median (logit <= 0)
    logits: tuple[float, ...]
    n_combinations: int
    n_strategies: int
    n_blocks: int


def _sharpe_from_sums(cnt: float, s1: FloatArray, s2: FloatArray) -> FloatArray:
    mu = s1 / cnt
    var = np.maximum(s2 - cnt * mu * mu, 0.0) / (cnt - 1.0)
    sd = np.sqrt(var)
    out = np.zeros_like(mu)
    np.divide(mu, sd, out=out, where=sd > 1e-300)
    return out


def pbo_cscv(returns: FloatArray, n_blocks: int = 16, max_combinations: int = 12870) -> PBOResult:
    """PBO by combinatorially symmetric cross-validation (Bailey et al. 2015, section 2.2).

    ``returns``: T x N matrix, one column per trial (config), rows in time order. The rows are cut
    into ``n_blocks`` (even) contiguous blocks; for each of the C(S, S/2) ways to choose half of
    them as the in-sample set J (the rest J-bar out of sample), the trial with the best IS Sharpe
    n* is ranked OOS; omega = rank / (N + 1), logit = ln(omega / (1 - omega)); PBO is the share of
    logits <= 0. Combinations are enumerated in lexicographic order and capped at
    ``max_combinations`` (bounded work).
    """
    m = np.asarray(returns, dtype=np.float64)
    if m.ndim != 2 or m.shape[1] < 2:
        raise ValueError("PBO needs a T x N matrix with N >= 2")
    if n_blocks < 2 or n_blocks % 2:
        raise ValueError("n_blocks must be even and >= 2")
    t, n = m.shape
    bounds = _group_bounds(t, n_blocks)
    # per-block count, sum and sum of squares: each combination's Sharpe comes from S/2 block sums
    cnt = np.array([b - a for a, b in bounds], dtype=np.float64)
    s1 = np.stack([m[a:b].sum(axis=0) for a, b in bounds])
    s2 = np.stack([(m[a:b] ** 2).sum(axis=0) for a, b in bounds])
    tot_c, tot_1, tot_2 = float(cnt.sum()), s1.sum(axis=0), s2.sum(axis=0)
    logits = []
    for count, is_blocks in enumerate(combinations(range(n_blocks), n_blocks // 2)):
        if count >= max_combinations:
            break
        idx = list(is_blocks)
        c_is, a_is, b_is = float(cnt[idx].sum()), s1[idx].sum(axis=0), s2[idx].sum(axis=0)
        r_is = _sharpe_from_sums(c_is, a_is, b_is)
        r_oos = _sharpe_from_sums(tot_c - c_is, tot_1 - a_is, tot_2 - b_is)
        best = int(np.argmax(r_is))
        # relative rank of n* OOS: 1 = worst .. N = best (ties: average rank)
        below = float(np.sum(r_oos < r_oos[best]))
        equal = float(np.sum(r_oos == r_oos[best]))
        rank = below + (equal + 1.0) / 2.0
        omega = rank / (n + 1.0)
        logits.append(math.log(omega / (1.0 - omega)))
    arr = np.asarray(logits)
    return PBOResult(float(np.mean(arr <= 0.0)), tuple(logits), len(logits), n, n_blocks)


# --------------------------------------------------------------------------- Monte Carlo


@dataclass(frozen=True)
class MonteCarloResult:
    iterations: int
    seed: int
    method: str
    pnl_p05: float
    pnl_p50: float
    prob_loss: float
    max_dd_p50: float
    max_dd_p95: float  # USD


def _max_drawdown(path: FloatArray, start: float) -> float:
    eq = start + np.cumsum(path)
    peak = np.maximum.accumulate(np.concatenate(([start], eq)))[1:]
    return float(np.max(peak - eq)) if eq.size else 0.0


def monte_carlo_trades(
    trade_pnls: Sequence[float],
    iterations: int = 2000,
    seed: int = 42,
    method: str = "bootstrap",
    initial_equity: float = 10_000.0,
) -> MonteCarloResult:
    """Resample the order of trades: ``bootstrap`` (with replacement) or ``shuffle`` (permutation,
    final PnL unchanged, only the path/drawdown varies)."""
    pnl = np.asarray(trade_pnls, dtype=np.float64)
    if pnl.size == 0:
        return MonteCarloResult(0, seed, method, 0.0, 0.0, 1.0, 0.0, 0.0)
    rng = np.random.default_rng(seed)
    totals = np.empty(iterations)
    dds = np.empty(iterations)
    for i in range(iterations):
        if method == "bootstrap":
            path = pnl[rng.integers(0, pnl.size, pnl.size)]
        elif method == "shuffle":
            path = rng.permutation(pnl)
        else:
            raise ValueError(f"unknown method {method!r}")
        totals[i] = path.sum()
        dds[i] = _max_drawdown(path, initial_equity)
    return MonteCarloResult(
        iterations,
        seed,
        method,
        float(np.percentile(totals, 5)),
        float(np.percentile(totals, 50)),
        float(np.mean(totals <= 0.0)),
        float(np.percentile(dds, 50)),
        float(np.percentile(dds, 95)),
    )

"""The model behind the egress forecast: a log-linear regression that finds its own change points.

    log(bytes_day) = a + b*t + weekday + c*bump(day)
                     + sum over changes k of (s_k * [day >= d_k] + g_k * years_since(d_k)) + noise

- `t` is years since the first day: a constant growth rate `b` (no quadratic term: fitted to a
  year it extrapolates wildly over the next six months).
- weekday: six dummies (Monday is the baseline); CI and builds run on working days.
- `bump(day) = sum over x.y.0 releases of exp(-days_since_release / tau)`: the May/November
  release bump, `tau` picked from a small grid by least squares (release dates: `budget`).
- changes: a level shift (`s_k`: a new CI fleet, a large client leaving, a CDN shielding change)
  moves the level from day `d_k` on; a trend change (`g_k`) moves the growth rate. Without them one
  trend fitted over a history with a +40% step reads the step as steep growth and extrapolates it.
- noise: residuals on the log scale with their lag-1 autocorrelation (an AR(1)).

How changes are found, so that a reader can check each one:
1. Outlier days (a one-day outage, a one-day spike) are set aside first: a day further than
   `OUTLIER_Z` robust standard deviations (and `OUTLIER_MIN` on the log scale) from the median of
   its week's residuals around it. They are reported, not fitted.
2. Candidate dates: `ruptures` (binary segmentation, piecewise-linear cost) splits the residuals of
   the model without changes into segments of at least `MIN_SEGMENT` days, `MAX_CHANGES` at most.
3. Each candidate is tried as a level shift and as a trend change; the best is kept while its F
   statistic (adjusted for the AR(1): `(1 + rho) / (1 - rho)`) beats `CHANGE_PENALTY`, the 1%
   critical value of a break at an unknown date (Andrews' sup-F), and while its effect on next
   month is at least `MIN_EFFECT`; the release bump's decay is refitted after each, and a change
   that later ones made redundant is dropped. A level shift and a trend change on the same date
   are not offered: a slope fitted to the few weeks after a step extrapolates badly.
   A change in the last `MIN_SEGMENT` days cannot be told from noise or an outage yet, and is not
   looked for: the forecast then lags it (and an outage on the last day is set aside as step 1).

Coefficient uncertainty (for the intervals) is the OLS covariance scaled by the same AR(1)
factor: a month of correlated days says less about the level than 30 independent ones would.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field, replace

import numpy as np
import ruptures as rpt

YEAR = 365.25
TAUS = (3.0, 5.0, 7.0, 10.0, 14.0, 21.0, 30.0)  # release bump decay, days
MIN_SEGMENT = 14  # days on either side of a change: two weekly cycles
MAX_CHANGES = 3
KINDS = ((True, False), (False, True))  # (level shift, trend change) per candidate
# Andrews (1993) sup-F, one parameter, 15% trimming, 1%: a change at a date chosen by search.
CHANGE_PENALTY = 12.35  # per added parameter, in AR(1)-adjusted F units
MIN_EFFECT = 0.03  # a change must move next month by at least 3%
OUTLIER_Z = 6.0  # robust standard deviations from the local median
OUTLIER_MIN = 0.2  # and at least ~20% (log scale) off it
LOCAL_DAYS = 3  # the local median: this many days either side
SIM_DRAWS = 2000


@dataclass(frozen=True)
class Change:
    """A change the model found in the history, as a reader would want it said."""

    day: dt.date
    level_pct: float | None  # the level shift, exp(s) - 1; None: no level shift
    growth_before: float | None  # growth per year before and after; None: no trend change
    growth_after: float | None

    def describe(self) -> str:
        parts = []
        if self.level_pct is not None:
            parts.append(f"level shift {self.level_pct:+.0%} from {self.day}")
        if self.growth_before is not None and self.growth_after is not None:
            parts.append(
                f"trend change from {self.day}: growth {self.growth_before:+.0%}/year -> "
                f"{self.growth_after:+.0%}/year"
            )
        return ", ".join(parts)


@dataclass(frozen=True)
class Outlier:
    """A day set aside from the fit: how far it was from what the model expected."""

    day: dt.date
    off_pct: float  # exp(residual) - 1

    def describe(self) -> str:
        return f"{self.day} ({self.off_pct:+.0%})"


@dataclass(frozen=True)
class _Term:
    """One change in the design: from `start` (a date ordinal), a step and/or a ramp."""

    start: int
    level: bool
    trend: bool


@dataclass(frozen=True)
class _Spec:
    """Which columns the design has."""

    t0: int  # ordinal of day 0 of the trend
    releases: np.ndarray  # release ordinals
    tau: float | None  # None: no release bump
    trend: bool
    terms: tuple[_Term, ...] = ()


def design(days: np.ndarray, spec: _Spec) -> np.ndarray:
    """Regression columns: intercept, trend (years), Tue..Sun dummies, release bump, changes."""
    t = (days - spec.t0) / YEAR
    weekday = (days - 1) % 7  # date.fromordinal(1) is a Monday
    cols = [np.ones_like(t)] + ([t] if spec.trend else [])
    cols += [(weekday == k).astype(float) for k in range(1, 7)]
    if spec.tau is not None:
        age = days[:, None] - spec.releases[None, :]
        cols.append(np.where(age >= 0, np.exp(-np.clip(age, 0, None) / spec.tau), 0.0).sum(axis=1))
    for term in spec.terms:
        if term.level:
            cols.append((days >= term.start).astype(float))
        if term.trend:
            cols.append(np.clip(days - term.start, 0, None) / YEAR)
    return np.column_stack(cols)


@dataclass(frozen=True)
class Fit:
    """Fitted coefficients, what was found, and what it takes to predict and simulate."""

    spec: _Spec
    beta: np.ndarray
    cov: np.ndarray  # coefficient covariance, AR(1)-adjusted
    sigma: float
    rho: float
    days: int  # days fitted
    outliers: tuple[Outlier, ...] = ()
    changes: tuple[Change, ...] = field(default=())

    @property
    def tau(self) -> float | None:
        return self.spec.tau

    def design(self, days: np.ndarray) -> np.ndarray:
        return design(days, self.spec)

    def mean(self, days: np.ndarray) -> np.ndarray:
        """Expected bytes per day (log-normal mean, so that days add up to months)."""
        return np.exp(self.design(days) @ self.beta + self.sigma**2 / 2)


def _ols(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """(coefficients, residuals, degrees of freedom)."""
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    return beta, y - x @ beta, max(len(y) - int(np.linalg.matrix_rank(x)), 1)


def _ar1(days: np.ndarray, resid: np.ndarray) -> float:
    """Lag-1 autocorrelation over pairs of consecutive days (gaps break the chain), in [0, 0.95]."""
    pair = np.diff(days) == 1
    a, b = resid[:-1][pair], resid[1:][pair]
    if pair.sum() <= 5 or np.std(a) == 0 or np.std(b) == 0:
        return 0.0
    return min(max(float(np.corrcoef(a, b)[0, 1]), 0.0), 0.95)


def _inflation(rho: float) -> float:
    """Variance of a mean of AR(1) days over that of independent days (long run)."""
    return (1 + rho) / (1 - rho)


def _best_tau(days: np.ndarray, log_y: np.ndarray, spec: _Spec) -> _Spec:
    """The release bump decay with the least squares (no bump if none fits inside the history)."""
    probe = design(days, replace(spec, tau=max(TAUS), terms=()))
    if not spec.trend or probe[:, -1].max() <= 0.05:  # ~0 everywhere: cannot be fitted
        return replace(spec, tau=None)
    best: tuple[float, float] | None = None
    for tau in TAUS:
        _, resid, _ = _ols(design(days, replace(spec, tau=tau)), log_y)
        sse = float(resid @ resid)
        if best is None or sse < best[0]:
            best = (sse, tau)
    assert best is not None
    return replace(spec, tau=best[1])


def _outliers(days: np.ndarray, resid: np.ndarray) -> np.ndarray:
    """Mask of days far from the median of the residuals around them (outages, one-day spikes)."""
    n = len(resid)
    local = np.array(
        [np.median(resid[max(0, i - LOCAL_DAYS) : i + LOCAL_DAYS + 1]) for i in range(n)]
    )
    dev = resid - local
    scale = 1.4826 * float(np.median(np.abs(dev)))
    if scale == 0:
        return np.zeros(n, dtype=bool)
    return (np.abs(dev) > OUTLIER_Z * scale) & (np.abs(dev) > OUTLIER_MIN)


def _candidates(days: np.ndarray, resid: np.ndarray) -> list[int]:
    """Change dates (ordinals) worth testing: ruptures' piecewise-linear binary segmentation."""
    n = len(days)
    k = min(MAX_CHANGES, n // MIN_SEGMENT - 1)
    if k < 1:
        return []
    t = (days - days[0]) / YEAR
    signal = np.column_stack([resid, np.ones(n), t])
    algo = rpt.Binseg(model="linear", min_size=MIN_SEGMENT, jump=1).fit(signal)
    try:
        ends = algo.predict(n_bkps=k)
    except rpt.exceptions.BadSegmentationParameters:
        return []
    return [int(days[i]) for i in ends[:-1]]


def _material(term: _Term, coefs: np.ndarray, last: int) -> bool:
    """Whether a change moves next month by at least MIN_EFFECT."""
    i = 0
    if term.level:
        if abs(math.expm1(coefs[0])) >= MIN_EFFECT:
            return True
        i = 1
    if term.trend:
        years = (last - term.start + 45) / YEAR  # to the middle of next month
        return abs(math.expm1(coefs[i] * years)) >= MIN_EFFECT
    return False


def _gain(days: np.ndarray, log_y: np.ndarray, spec: _Spec, term: _Term) -> float | None:
    """How much `term` adds to `spec` (which lacks it): AR(1)-adjusted F statistic times its
    parameters, minus the penalty; None when its effect on next month is immaterial."""
    _, resid, _ = _ols(design(days, spec), log_y)
    sse_without = float(resid @ resid)
    trial = replace(spec, terms=(*spec.terms, term))
    beta, res, dof = _ols(design(days, trial), log_y)
    sse = float(res @ res)
    q = int(term.level) + int(term.trend)
    if not _material(term, beta[-q:], int(days.max())):
        return None
    f = (sse_without - sse) / (sse / dof) / _inflation(_ar1(days, res))
    return f - CHANGE_PENALTY * q


def _select(days: np.ndarray, log_y: np.ndarray, spec: _Spec, candidates: list[int]) -> _Spec:
    """Adds, one at a time, the candidate change that explains the most while it is worth it
    (the release bump's decay refitted after each), then drops any that no longer are."""
    while candidates and len(spec.terms) < MAX_CHANGES:
        best: tuple[float, _Term] | None = None
        for start in candidates:
            for level, trend in KINDS:
                term = _Term(start, level, trend)
                gain = _gain(days, log_y, spec, term)
                if gain is not None and gain > 0 and (best is None or gain > best[0]):
                    best = (gain, term)
        if best is None:
            break
        spec = _best_tau(days, log_y, replace(spec, terms=(*spec.terms, best[1])))
        candidates = [c for c in candidates if c != best[1].start]
    while spec.terms:  # backward: a change the later ones made redundant goes
        gains = []
        for term in spec.terms:
            rest = replace(spec, terms=tuple(t for t in spec.terms if t != term))
            gain = _gain(days, log_y, rest, term)
            gains.append(-math.inf if gain is None else gain)
        weakest = int(np.argmin(gains))
        if gains[weakest] > 0:
            break
        kept = tuple(t for i, t in enumerate(spec.terms) if i != weakest)
        spec = _best_tau(days, log_y, replace(spec, terms=kept))
    return replace(spec, terms=tuple(sorted(spec.terms, key=lambda t: t.start)))


def _describe(spec: _Spec, beta: np.ndarray) -> tuple[Change, ...]:
    """The changes in words: level shift in %, growth per year before and after."""
    i = 1 + int(spec.trend) + 6 + int(spec.tau is not None)  # first change column
    growth = float(beta[1]) if spec.trend else 0.0
    out = []
    for term in spec.terms:
        level = None
        before = after = None
        if term.level:
            level = math.expm1(float(beta[i]))
            i += 1
        if term.trend:
            before, growth = growth, growth + float(beta[i])
            after = growth
            i += 1
        out.append(
            Change(
                dt.date.fromordinal(term.start),
                level,
                None if before is None else math.expm1(before),
                None if after is None else math.expm1(after),
            )
        )
    return tuple(out)


def fit(days: np.ndarray, log_y: np.ndarray, releases: np.ndarray, full: bool) -> Fit:
    """The model on observed days: outliers set aside, changes found, coefficients fitted.

    Without `full` (under five weeks) only level and weekday: growth of ~15% a year is ~1% over a
    few weeks, far below day-to-day noise, and a slope fitted to it explodes when extrapolated.
    """
    spec = _best_tau(days, log_y, _Spec(int(days.min()), releases, None, trend=full))
    _, resid, _ = _ols(design(days, spec), log_y)
    out = _outliers(days, resid)
    outliers = tuple(
        Outlier(dt.date.fromordinal(int(d)), math.expm1(float(r)))
        for d, r in zip(days[out], resid[out], strict=True)
    )
    days, log_y = days[~out], log_y[~out]
    if full:
        _, resid, _ = _ols(design(days, spec), log_y)
        spec = _select(days, log_y, spec, _candidates(days, resid))
    x = design(days, spec)
    beta, resid, dof = _ols(x, log_y)
    sigma2 = float(resid @ resid) / dof
    rho = _ar1(days, resid)
    return Fit(
        spec=spec,
        beta=beta,
        cov=sigma2 * _inflation(rho) * np.linalg.pinv(x.T @ x),
        sigma=math.sqrt(sigma2),
        rho=rho,
        days=len(days),
        outliers=outliers,
        changes=_describe(spec, beta),
    )


def simulate(f: Fit, days: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Simulated bytes per day (draws x days) for consecutive `days`: coefficients drawn from
    their distribution, plus AR(1) noise."""
    beta = rng.multivariate_normal(f.beta, f.cov, size=SIM_DRAWS, method="eigh")
    mu = beta @ f.design(days).T
    z = rng.standard_normal((SIM_DRAWS, len(days)))
    noise = np.empty_like(z)
    noise[:, 0] = f.sigma * z[:, 0]
    step = f.sigma * math.sqrt(1 - f.rho**2)
    for i in range(1, len(days)):  # AR(1): a high day tends to be followed by a high day
        noise[:, i] = f.rho * noise[:, i - 1] + step * z[:, i]
    return np.exp(mu + noise)

"""Result records shared by the metrics, the bootstrap and the test-retest analysis.

Convention for undefined values: a metric that cannot be computed (one class only,
no positive pixels, empty input, too few valid bootstrap replicates) has value NaN
and a non-empty one-line `reason`; a defined value has reason "". Nothing returns
a silent 0 and nothing raises for these cases.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


def json_safe(d: dict) -> dict:
    """NaN and infinities are not JSON: write them as None (the reason says why)."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


@dataclass(frozen=True)
class MetricResult:
    """One metric on one data set, with no resampling."""

    value: float
    reason: str = ""  # why value is NaN; "" when defined
    n: int = 0  # samples it was computed on (exams, images or pixels)

    @property
    def defined(self) -> bool:
        return not math.isnan(self.value)

    def __float__(self) -> float:
        return float(self.value)

    def to_dict(self) -> dict:
        return json_safe(asdict(self))


def undefined(reason: str, n: int = 0) -> MetricResult:
    return MetricResult(math.nan, reason, n)


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its percentile bootstrap confidence interval.

    `value` is the metric on the full data (not the bootstrap mean); the interval
    is the (2.5, 97.5) percentiles (numpy's linear interpolation) of the replicates
    where the metric was defined (`n_valid` of `n_boot`).
    """

    run: str
    metric: str
    value: float
    ci_low: float
    ci_high: float
    n: int  # units resampled: exams for exam metrics, images for pixel metrics
    unit: str  # "exam" or "image"
    n_boot: int
    n_valid: int
    reason: str = ""

    def to_dict(self) -> dict:
        return json_safe(asdict(self))


@dataclass(frozen=True)
class PairedComparison:
    """Run b minus run a on the same bootstrap resamples (the paper's paired Z test).

    delta = metric(b) - metric(a) on the full data; the CI is the (2.5, 97.5)
    percentiles of the bootstrap deltas; sd is their sample standard deviation
    (ddof=1); z = delta / sd; p = 2 * P(N(0,1) > |z|). ks_statistic / ks_p: the
    Kolmogorov-Smirnov test of the standardized deltas against N(0,1) (the paper's
    normality check; `normal` is ks_p >= 0.05). When every delta is exactly 0 (the
    same model twice) z = 0 and p = 1 by definition, and the KS test is undefined.
    """

    metric: str
    run_a: str
    run_b: str
    delta: float
    ci_low: float
    ci_high: float
    sd: float
    z: float
    p: float
    ks_statistic: float
    ks_p: float
    n: int
    unit: str
    n_boot: int
    n_valid: int
    reason: str = ""

    @property
    def normal(self) -> bool:
        return not math.isnan(self.ks_p) and self.ks_p >= 0.05

    def to_dict(self) -> dict:
        return json_safe({**asdict(self), "normal": self.normal})


@dataclass(frozen=True)
class PairedTTest:
    """scipy.stats.ttest_rel(b, a) with its degenerate cases defined.

    Differences all 0: t = 0, p = 1. Differences constant and non-zero: t = +-inf,
    p = 0 (scipy returns NaN for both). Fewer than 2 pairs: NaN with a reason.
    """

    t: float
    p: float
    df: int
    mean_diff: float  # mean of b - a
    n: int
    reason: str = ""

    def to_dict(self) -> dict:
        return json_safe(asdict(self))

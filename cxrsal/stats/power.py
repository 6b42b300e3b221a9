"""What a test that found no difference could have found: the smallest difference it would have
detected at a given power, from its own interval and degrees of freedom."""

import numpy as np

from . import ALPHA

POWER = 0.8        # the power of the smallest difference a "no difference" row could have detected


def detectable_difference(ci_low, ci_high, df, alpha=ALPHA, power=POWER):
    """The smallest true difference a two-sided test at level `alpha` would have found with
    probability `power`, given its standard error: delta = ncp x SE, where ncp solves

        P(|T| > q) = power,  T ~ noncentral t(df, ncp),  q = t_df(1 - alpha/2)

    (the normal's when df is inf), and SE = (ci_high - ci_low) / (2 q), the standard error behind
    the test's own (1 - alpha) interval. NaN without an interval or degrees of freedom.

    At df = inf, alpha 0.05 and power 0.8 it is 2.80 SE (1.960 + 0.842):

    >>> round(detectable_difference(-1.959964, 1.959964, float("inf")), 3)
    2.802
    """
    from scipy.optimize import brentq
    from scipy.stats import nct, norm, t

    if not (np.isfinite(ci_low) and np.isfinite(ci_high) and df is not None and df == df and df > 0
            and ci_high > ci_low):
        return float("nan")
    if np.isinf(df):
        q = norm.ppf(1 - alpha / 2)
        reach = lambda ncp: norm.sf(q - ncp) + norm.cdf(-q - ncp) - power
    else:
        q = t.ppf(1 - alpha / 2, df)
        # the lower tail vanishes as ncp grows (SciPy gives NaN there)
        reach = lambda ncp: nct.sf(q, df, ncp) + np.nan_to_num(nct.cdf(-q, df, ncp)) - power
    top = 8.0
    while reach(top) < 0:
        top *= 2
        if top > 1e6:
            return float("nan")
    ncp = brentq(reach, 0.0, top, xtol=1e-10)
    return float(ncp * (ci_high - ci_low) / (2 * q))

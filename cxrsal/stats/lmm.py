"""t-tests of a random-intercept mixed model as [A]'s R toolchain makes them: lmerTest's
Satterthwaite degrees of freedom for any linear combination of the fixed effects
(Kuznetsova, Brockhoff & Christensen 2017, "lmerTest package: tests in linear mixed effects
models", J Stat Softw 82(13)).

The model is value ~ term + (1 | image): y = X beta + Z b + e, b ~ N(0, s_b^2), e ~ N(0, s^2), so
V = s_b^2 Z Z' + s^2 I is block diagonal by image and every product below is a sum over images
(no n x n matrix, whatever the number of images). Given the REML variance estimates (statsmodels'
fit), beta is the GLS estimate and C(s_b, s) = (X' V^-1 X)^-1 its covariance. For a contrast L:

    var = L C L',   g = d var / d(s_b, s),   A = inverse of the Hessian of the REML deviance / 2,
    df  = 2 var^2 / (g' A g),   t = L beta / sqrt(var),   p = 2 P(T_df > |t|)

with the variance parameters as lmerTest takes them (the two standard deviations), the derivatives
by Richardson-extrapolated central differences (as numDeriv, which lmerTest uses).
"""

from dataclasses import dataclass

import numpy as np


def _blocks(groups):
    """Group index of every row (0..g-1) and the rows per group."""
    _, index = np.unique(np.asarray(groups), return_inverse=True)
    return index, np.bincount(index)


@dataclass
class RandomIntercept:
    """The design of value ~ X + (1 | group), reduced to the sums the block-diagonal V needs."""
    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray

    def __post_init__(self):
        self.X = np.asarray(self.X, np.float64)
        self.y = np.asarray(self.y, np.float64)
        index, self.n_i = _blocks(self.groups)
        g, p = len(self.n_i), self.X.shape[1]
        self.sx = np.zeros((g, p))                      # X_i' 1 per group
        np.add.at(self.sx, index, self.X)
        self.sy = np.bincount(index, weights=self.y, minlength=g)      # 1' y_i
        self.xx, self.xy, self.yy = self.X.T @ self.X, self.X.T @ self.y, float(self.y @ self.y)

    def _parts(self, sd_b, sd):
        """X'V^-1 X, X'V^-1 y, y'V^-1 y and log|V| at the two standard deviations."""
        s2, b2 = sd * sd, sd_b * sd_b
        c = b2 / (s2 + self.n_i * b2)                   # V_i^-1 = (I - c_i 1 1') / s^2
        xvx = (self.xx - (self.sx * c[:, None]).T @ self.sx) / s2
        xvy = (self.xy - (self.sx * (c * self.sy)[:, None]).sum(0)) / s2
        yvy = (self.yy - float((c * self.sy * self.sy).sum())) / s2
        logdet = float(((self.n_i - 1) * np.log(s2) + np.log(s2 + self.n_i * b2)).sum())
        return xvx, xvy, yvy, logdet

    def beta_cov(self, sd_b, sd):
        """(beta, C): the GLS estimate and its covariance (X'V^-1 X)^-1."""
        xvx, xvy, _, _ = self._parts(sd_b, sd)
        cov = np.linalg.inv(xvx)
        return cov @ xvy, cov

    def reml_deviance(self, params):
        """-2 x the REML log-likelihood (without its constant) at (sd_b, sd)."""
        sd_b, sd = params
        xvx, xvy, yvy, logdet = self._parts(sd_b, sd)
        beta = np.linalg.solve(xvx, xvy)
        rvr = yvy - 2 * beta @ xvy + beta @ xvx @ beta
        return logdet + float(np.linalg.slogdet(xvx)[1]) + rvr


def _richardson(f, x, i, h, order=4):
    """d f / d x_i at x by central differences extrapolated over step halvings (numDeriv's way)."""
    rows = []
    for k in range(order):
        step = h / 2 ** k
        e = np.zeros(len(x))
        e[i] = step
        rows.append((f(x + e) - f(x - e)) / (2 * step))
    table = [np.asarray(r, np.float64) for r in rows]
    for m in range(1, order):
        table = [(4 ** m * table[k + 1] - table[k]) / (4 ** m - 1) for k in range(len(table) - 1)]
    return table[0]


def _step(x):
    return np.maximum(np.abs(x) * 1e-4, 1e-6)


def satterthwaite(model, sd_b, sd, contrasts):
    """(estimate, se, df, t) of every row of `contrasts` (a [m, p] array) on the fixed effects.

    A zero random-effect SD (the boundary: no between-image variance) is kept: the derivative with
    respect to it is taken one-sided, as at any boundary.
    """
    L = np.atleast_2d(np.asarray(contrasts, np.float64))
    theta = np.array([max(float(sd_b), 0.0), float(sd)])
    beta, cov = model.beta_cov(*theta)
    var = np.einsum("mp,pq,mq->m", L, cov, L)

    def variances(t):
        return np.einsum("mp,pq,mq->m", L, model.beta_cov(abs(t[0]), t[1])[1], L)

    h = _step(theta)
    grad = np.stack([_richardson(variances, theta, i, h[i]) for i in range(2)], axis=1)      # [m, 2]
    # Hessian of the deviance: the derivative of its gradient
    grad_dev = lambda t: np.array([_richardson(lambda u: np.array([model.reml_deviance((abs(u[0]), u[1]))]),
                                               t, i, _step(t)[i])[0] for i in range(2)])
    hess = np.stack([_richardson(grad_dev, theta, i, h[i]) for i in range(2)], axis=1)
    hess = (hess + hess.T) / 2
    A = 2 * np.linalg.pinv(hess)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = 2 * var ** 2 / np.einsum("mi,ij,mj->m", grad, A, grad)
    est = L @ beta
    se = np.sqrt(var)
    return est, se, df, est / se

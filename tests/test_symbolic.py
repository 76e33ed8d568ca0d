"""dlnotes.symbolic.gaussian_expectation against sympy.stats and a Monte Carlo estimate."""

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sympy import stats

from dlnotes.symbolic import gaussian_expectation

z1, z2 = sp.symbols("z1 z2", real=True)
a, b = sp.symbols("a b", real=True)
v = sp.Symbol("v", positive=True)


def _gauss_hermite_expectation(expr, values, variance, nodes=12):
    # E over independent N(0, variance) z1, z2 by probabilists' Gauss-Hermite quadrature:
    # exact for polynomials of degree < 2 * nodes, and independent of the moment formula.
    x, w = np.polynomial.hermite_e.hermegauss(nodes)
    x, w = x * np.sqrt(variance), w / w.sum()
    f = sp.lambdify((z1, z2), expr.subs(values), "numpy")
    grid1, grid2 = np.meshgrid(x, x, indexing="ij")
    return float((np.outer(w, w) * f(grid1, grid2)).sum())


@given(p1=st.integers(0, 5), p2=st.integers(0, 4), c=st.integers(-3, 3),
       a0=st.floats(-2, 2), b0=st.floats(-2, 2), v0=st.floats(0.1, 3))
@settings(max_examples=40, deadline=None)
def test_moments_match_gauss_hermite_quadrature(p1, p2, c, a0, b0, v0):
    expr = (a + c * z1) ** p1 * (b * z2 + z1) ** p2
    exact = gaussian_expectation(expr, [z1, z2], v).subs({a: a0, b: b0, v: v0})
    reference = _gauss_hermite_expectation(expr + 0 * z1 * z2, {a: a0, b: b0}, v0)
    assert float(exact) == pytest.approx(reference, rel=1e-9, abs=1e-9)


def test_low_moments_match_sympy_stats():
    Z = stats.Normal("Z", 0, sp.sqrt(v))
    for p in range(5):
        assert sp.simplify(gaussian_expectation(z1**p, [z1], v) - stats.E(Z**p)) == 0


def test_expected_squared_error_of_a_noisy_input_has_the_ridge_term():
    w = sp.Matrix(sp.symbols("w1:4", real=True))
    x = sp.Matrix(sp.symbols("x1:4", real=True))
    eps = sp.Matrix(sp.symbols("e1:4", real=True))
    y, sigma = sp.Symbol("y", real=True), sp.Symbol("sigma", positive=True)
    loss = gaussian_expectation(((w.T * (x + eps))[0] - y) ** 2, list(eps), sigma**2)
    assert sp.simplify(loss - ((w.T * x)[0] - y) ** 2 - sigma**2 * (w.T * w)[0]) == 0


def test_numeric_variance_agrees_with_monte_carlo():
    expr = z1**4 + 3 * z1**2 * z2**2 - z2
    exact = float(gaussian_expectation(expr, [z1, z2], sp.Rational(1, 2)))
    rng = np.random.default_rng(0)
    s1, s2 = rng.normal(0, np.sqrt(0.5), size=(2, 400_000))
    assert np.mean(s1**4 + 3 * s1**2 * s2**2 - s2) == pytest.approx(exact, rel=0.02)
    assert exact == pytest.approx(3 * 0.25 + 3 * 0.25)


@pytest.mark.parametrize(
    ("expr", "variables", "variance", "message"),
    [
        (z1**2, [], v, "non-empty"),
        (z1**2, ["z1"], v, "symbols"),
        (z1**2, [z1, z1], v, "distinct"),
        (sp.sin(z1), [z1], v, "polynomial"),
        (1 / z1, [z1], v, "polynomial"),
        (z1**2, [z1], 0, "variance"),
        (z1**2, [z1], -2, "variance"),
    ],
    ids=["no-variables", "string-variable", "repeated", "sine", "inverse", "zero-var", "neg-var"],
)
def test_bad_input_raises_value_error(expr, variables, variance, message):
    with pytest.raises(ValueError, match=message):
        gaussian_expectation(expr, variables, variance)


n = sp.Symbol("n", integer=True, positive=True)
k = sp.Symbol("k", integer=True, positive=True)
x_, y_ = sp.IndexedBase("x"), sp.IndexedBase("y")


def _at(expr, values_x, values_y=()):
    """``expr`` with n = len(values_x), every sum written out and the entries substituted."""
    m = len(values_x)
    out = expr.subs(n, m).doit()
    out = out.subs({x_[i + 1]: v for i, v in enumerate(values_x)})
    return float(out.subs({y_[i + 1]: v for i, v in enumerate(values_y)}))


@pytest.mark.parametrize("summand", [
    (x_[k] - sp.Sum(x_[k], (k, 1, n)) / n) ** 2,
    3 * x_[k] * y_[k] + a * x_[k] ** 2 - 2 * sp.Sum(y_[k], (k, 1, n)) + b,
    sp.exp(x_[k]) * y_[k] / sp.Sum(sp.exp(x_[k]), (k, 1, n)),
])
def test_expand_sums_keeps_the_value_of_the_written_out_sum(summand):
    from dlnotes.symbolic import expand_sums

    expr = sp.Sum(summand, (k, 1, n)).subs({a: 0.7, b: -1.3})
    xs, ys = [0.3, -1.2, 2.0, 0.5, -0.4], [1.1, 0.2, -0.7, 0.9, 1.5]
    assert abs(_at(expand_sums(expr), xs, ys) - _at(expr, xs, ys)) < 1e-12


def test_expand_sums_cancels_the_deviations_from_the_mean_for_every_n():
    from dlnotes.symbolic import expand_sums, simplify_sums

    mean = sp.Sum(x_[k], (k, 1, n)) / n
    assert expand_sums(sp.Sum(x_[k] - mean, (k, 1, n))) == 0
    variance = sp.Sum((x_[k] - mean) ** 2, (k, 1, n)) / n
    second = sp.Sum(x_[k] ** 2, (k, 1, n)) / n
    assert simplify_sums(variance - (second - mean**2)) == 0
    assert simplify_sums(variance - second) != 0  # a wrong identity is not confirmed

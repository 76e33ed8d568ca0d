"""dlnotes.symbolic.gaussian_expectation against sympy.stats and a Monte Carlo estimate."""

import numpy as np
import pytest
import sympy as sp
from sympy import stats

from dlnotes.symbolic import gaussian_expectation

z1, z2 = sp.symbols("z1 z2", real=True)
a, b = sp.symbols("a b", real=True)
v = sp.Symbol("v", positive=True)


@pytest.mark.parametrize("power", range(7))
def test_moments_of_one_variable_match_sympy_stats(power):
    Z = stats.Normal("Z", 0, sp.sqrt(v))
    assert sp.simplify(gaussian_expectation(z1**power, [z1], v) - stats.E(Z**power)) == 0


def test_a_polynomial_in_two_variables_with_symbolic_coefficients_matches_sympy_stats():
    Z1, Z2 = stats.Normal("Z1", 0, sp.sqrt(v)), stats.Normal("Z2", 0, sp.sqrt(v))
    expr = (a + 2 * z1) ** 2 * (b * z2 + z1) ** 2 - z1 * z2**3
    reference = stats.E(sp.expand(expr.subs({z1: Z1, z2: Z2})))
    assert sp.simplify(gaussian_expectation(expr, [z1, z2], v) - reference) == 0


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

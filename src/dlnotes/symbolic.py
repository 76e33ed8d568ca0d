r"""Symbolic helpers shared by the SymPy derivations of several chapters.

Kept apart from the numerical modules so that only the chapters that derive with SymPy import
it. Used in chapters 3 and 11.
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy as sp

__all__ = ["gaussian_expectation"]


def gaussian_expectation(
    expr: sp.Expr, variables: Sequence[sp.Symbol], variance: sp.Expr
) -> sp.Expr:
    r"""Expectation of a polynomial over independent centred Gaussian variables.

    Expands ``expr`` as a polynomial in ``variables``
    :math:`\sum_\mathbf{p} c_\mathbf{p} \prod_i z_i^{p_i}` and replaces each monomial by its
    expectation under independent :math:`z_i \sim \mathcal N(0, v)`:

    .. math::

        \mathbb E\,\prod_i z_i^{p_i} = \prod_i \mathbb E\,z_i^{p_i}, \qquad
        \mathbb E\,z^{p} = \begin{cases} 0 & p \text{ odd,}\\ v^{p/2}\,(p-1)!! & p \text{ even.}
        \end{cases}

    The coefficients :math:`c_\mathbf{p}` may contain any other symbols. Exact, and much faster
    than :func:`sympy.stats.E` for polynomials in many variables.

    Parameters
    ----------
    expr
        A SymPy expression that is a polynomial in ``variables``.
    variables
        Distinct SymPy symbols, the independent Gaussian variables (at least one).
    variance
        Their common variance :math:`v`, a SymPy expression or number (a number must be > 0).

    Returns
    -------
    sympy.Expr
        The expectation, expanded.

    Raises
    ------
    ValueError
        If ``expr`` is not a polynomial in distinct symbols, or ``variance`` is not positive.
    """
    variables = list(variables)
    if not variables or not all(isinstance(v, sp.Symbol) for v in variables):
        raise ValueError("variables must be a non-empty sequence of SymPy symbols")
    if len(set(variables)) != len(variables):
        raise ValueError("variables must be distinct symbols")
    variance = sp.sympify(variance)
    if variance.is_number and not (variance.is_real and variance > 0):
        raise ValueError(f"variance must be > 0, got {variance}")
    try:
        poly = sp.Poly(sp.expand(sp.sympify(expr)), *variables)
    except sp.PolynomialError as err:
        raise ValueError(f"expr must be a polynomial in the variables: {err}") from None
    total = sp.Integer(0)
    for powers, coeff in poly.terms():
        moment = sp.Integer(1)
        for p in powers:
            moment *= 0 if p % 2 else variance ** (p // 2) * sp.factorial2(p - 1)
        total += coeff * moment
    return sp.expand(total)

r"""Symbolic helpers shared by the SymPy derivations of several chapters.

Kept apart from the numerical modules so that only the chapters that derive with SymPy import
it. Used in chapters 3, 6, 7 and 11.
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy as sp

__all__ = ["gaussian_expectation", "expand_sums", "simplify_sums"]


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


def expand_sums(expr: sp.Expr) -> sp.Expr:
    r"""Split every :class:`sympy.Sum` in ``expr`` by linearity, innermost first.

    A sum :math:`\sum_{k=a}^{b} f` whose summand expands into terms :math:`c_t\,g_t(k)`
    becomes :math:`\sum_t c_t \sum_{k=a}^{b} g_t(k)`: factors free of the index are pulled out
    and a term free of it is counted :math:`b-a+1` times. What is left are sums of products of
    indexed entries (``x[k]**2``, ``x[k]*v[k]``, ``exp(z[k])``), so two sums over the same
    index and limits compare equal and cancel. This is what lets a derivation run with a
    symbolic length ``n`` (``sympy``'s own ``Sum.doit`` does not pull out a factor that is
    itself a sum, and ``simplify`` can fail on such expressions: :func:`simplify_sums`).

    Parameters
    ----------
    expr
        A SymPy expression; each sum in it has one index, and the index of an inner sum may
        repeat the outer one's.

    Returns
    -------
    sympy.Expr
        The same value with every sum split.
    """
    def split(s: sp.Sum) -> sp.Expr:
        (k, a, b), *outer = s.limits
        out = sp.Integer(0)
        for term in sp.Add.make_args(sp.expand(expand_sums(s.function))):
            c, g = term.as_independent(k, as_Add=False)
            out += c * (b - a + 1) if g == 1 else c * sp.Sum(g, (k, a, b))
        return expand_sums(sp.Sum(out, *outer)) if outer else out

    return sp.sympify(expr).replace(lambda e: isinstance(e, sp.Sum), split)


def simplify_sums(expr: sp.Expr) -> sp.Expr:
    """``expr`` simplified after :func:`expand_sums`, each remaining sum held fixed as one
    symbol (an identity that holds for all values of the sums holds for all entries): first
    brought over a common denominator and cancelled, which settles most identities quickly,
    then, if that is not 0, :func:`sympy.simplify`. The sums are put back in the result."""
    expanded = expand_sums(expr)
    frozen = {s: sp.Dummy() for s in sorted(expanded.atoms(sp.Sum), key=sp.default_sort_key)}
    result = sp.cancel(sp.together(expanded.xreplace(frozen)))
    if result != 0:
        result = sp.simplify(result)
    return result.xreplace({d: s for s, d in frozen.items()})

"""dlnotes.em against scikit-learn, hmmlearn, SciPy, brute force and hand-made E steps.

Each reference is computed independently of the module: scikit-learn's GaussianMixture and
KMeans and hmmlearn's CategoricalHMM from the same start, SciPy's densities, a grid search
refined by Nelder-Mead, the enumeration of every hidden path, and finite-difference
information matrices.
"""

import itertools
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.cluster import KMeans
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from dlnotes.em import (
    baum_welch,
    fixed_variance_em,
    gaussian_mixture_elbo,
    gaussian_mixture_em,
    gaussian_mixture_em_jacobian,
    gaussian_mixture_posterior,
    hmm_log_likelihood,
    kmeans,
    pack_mixture,
    two_coin_em,
    two_coin_log_likelihood,
)

HEADS = [5, 9, 8, 4, 7]  # Do & Batzoglou (2008), Fig. 1b
TOSSES = [10] * 5


def iris_start(k=3, seed=0):
    X = load_iris().data
    means = X[np.random.default_rng(seed).choice(len(X), k, replace=False)]
    covariances = np.repeat(np.cov(X, rowvar=False, bias=True)[None], k, axis=0)
    return X, means, covariances, np.full(k, 1.0 / k)


def blobs(n, d, k, seed):
    rng = np.random.default_rng(seed)
    centres = 3.0 * rng.normal(size=(k, d))
    X = centres[rng.integers(k, size=n)] + rng.normal(size=(n, d))
    means = X[rng.choice(n, k, replace=False)]
    covariances = np.repeat(np.cov(X, rowvar=False, bias=True).reshape(1, d, d), k, axis=0)
    return X, means, covariances, np.full(k, 1.0 / k)


# ------------------------------------------------------------------------------ two coins


def test_two_coin_log_likelihood_matches_a_direct_product_over_sets():
    for ta, tb in [(0.6, 0.5), (0.8, 0.45), (0.1, 0.99)]:
        direct = sum(math.log(0.5 * ta**h * (1 - ta) ** (n - h) + 0.5 * tb**h * (1 - tb) ** (n - h))
                     for h, n in zip(HEADS, TOSSES, strict=True))
        assert float(two_coin_log_likelihood(HEADS, TOSSES, ta, tb)) == pytest.approx(direct)


def test_two_coin_log_likelihood_broadcasts_over_a_grid():
    grid = np.linspace(0.05, 0.95, 7)
    surface = two_coin_log_likelihood(HEADS, TOSSES, grid[:, None], grid[None, :])
    assert surface.shape == (7, 7)
    assert surface[2, 5] == pytest.approx(float(two_coin_log_likelihood(HEADS, TOSSES, grid[2],
                                                                        grid[5])))
    assert np.allclose(surface, surface.T)  # swapping the coins changes nothing


def test_two_coin_first_step_matches_expected_counts_computed_by_hand():
    ta, tb = 0.6, 0.5
    heads_a = tails_a = heads_b = tails_b = 0.0
    for h, n in zip(HEADS, TOSSES, strict=True):
        la, lb = ta**h * (1 - ta) ** (n - h), tb**h * (1 - tb) ** (n - h)
        w = la / (la + lb)
        heads_a, tails_a = heads_a + w * h, tails_a + w * (n - h)
        heads_b, tails_b = heads_b + (1 - w) * h, tails_b + (1 - w) * (n - h)
    path = two_coin_em(HEADS, TOSSES, ta, tb, 1)
    assert len(path) == 2 and path[0] == (ta, tb)
    assert path[1][0] == pytest.approx(heads_a / (heads_a + tails_a), rel=1e-12)
    assert path[1][1] == pytest.approx(heads_b / (heads_b + tails_b), rel=1e-12)


@pytest.mark.parametrize(
    ("heads", "tosses"),
    [(HEADS, TOSSES), ([1, 2, 9, 10, 8, 3], [10, 10, 10, 12, 9, 10]), ([0, 20, 3, 17], [20] * 4)],
    ids=["do-batzoglou", "unequal-sets", "extreme-sets"],
)
def test_two_coin_em_converges_to_the_brute_force_maximiser_of_the_marginal_likelihood(
    heads, tosses
):
    grid = np.linspace(0.0, 1.0, 201)
    surface = two_coin_log_likelihood(heads, tosses, grid[:, None], grid[None, :])
    i, j = np.unravel_index(np.argmax(surface), surface.shape)
    best = minimize(lambda t: -float(two_coin_log_likelihood(heads, tosses, *np.clip(t, 0, 1))),
                    x0=[grid[i], grid[j]], method="Nelder-Mead",
                    options={"xatol": 1e-10, "fatol": 1e-13, "maxiter": 4000})
    start = (0.6, 0.5) if best.x[0] > best.x[1] else (0.5, 0.6)
    final = two_coin_em(heads, tosses, *start, 2000)[-1]
    assert np.allclose(final, best.x, atol=1e-5)
    assert float(two_coin_log_likelihood(heads, tosses, *final)) >= -best.fun - 1e-9


@given(data=st.lists(st.tuples(st.integers(0, 30), st.integers(1, 30)), min_size=1, max_size=8),
       theta_a=st.floats(0.01, 0.99), theta_b=st.floats(0.01, 0.99))
@settings(max_examples=50, deadline=None)
def test_two_coin_em_never_decreases_the_marginal_likelihood(data, theta_a, theta_b):
    heads = [min(h, n) for h, n in data]
    tosses = [n for _, n in data]
    path = two_coin_em(heads, tosses, theta_a, theta_b, 15)
    ell = [float(two_coin_log_likelihood(heads, tosses, a, b)) for a, b in path]
    assert np.all(np.diff(ell) >= -1e-9 * max(1.0, abs(ell[0])))


def test_hard_two_coin_em_assigns_each_set_to_its_more_likely_coin():
    path = two_coin_em(HEADS, TOSSES, 0.6, 0.5, 5, hard=True)
    ta, tb = path[-1]
    la = np.array([h * math.log(ta) + (n - h) * math.log(1 - ta) for h, n in zip(HEADS, TOSSES,
                                                                                 strict=True)])
    lb = np.array([h * math.log(tb) + (n - h) * math.log(1 - tb) for h, n in zip(HEADS, TOSSES,
                                                                                 strict=True)])
    to_a = la > lb
    heads, tosses = np.array(HEADS), np.array(TOSSES)
    assert ta == pytest.approx(heads[to_a].sum() / tosses[to_a].sum())
    assert tb == pytest.approx(heads[~to_a].sum() / tosses[~to_a].sum())
    assert path[-1] == path[-2]  # a fixed point: the assignment no longer changes


def test_two_coin_em_is_finite_for_long_sequences_where_probabilities_underflow():
    path = two_coin_em([40_000, 5_000], [50_000, 50_000], 0.6, 0.5, 5)
    assert np.isfinite(path).all()
    assert path[-1] == pytest.approx((0.8, 0.1))


# ------------------------------------------------------------------------ Gaussian mixtures


@pytest.mark.parametrize(
    ("data", "n_iter"),
    [(iris_start(3, 0), 60), (iris_start(2, 5), 25), (blobs(80, 2, 3, 1), 40)],
    ids=["iris-k3", "iris-k2", "blobs-2d"],
)
def test_gaussian_mixture_em_matches_scikit_learn_from_the_same_start(data, n_iter):
    X, means, covariances, weights = data
    ours = gaussian_mixture_em(X, means, covariances, weights, n_iter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # tol=0 never "converges"
        ref = GaussianMixture(len(weights), covariance_type="full", tol=0.0, reg_covar=0.0,
                              max_iter=n_iter, means_init=means, weights_init=weights,
                              precisions_init=np.linalg.inv(covariances)).fit(X)
    assert np.allclose(ours[0], ref.means_, atol=1e-9)
    assert np.allclose(ours[1], ref.covariances_, atol=1e-9)
    assert np.allclose(ours[2], ref.weights_, atol=1e-9)
    assert ours[3].shape == (n_iter + 1,)
    assert ours[3][-1] == pytest.approx(ref.score(X), abs=1e-10)
    assert ours[3][-2] == pytest.approx(ref.lower_bound_, abs=1e-10)  # sklearn's last E step


def test_reg_covar_is_added_to_the_diagonal_as_in_scikit_learn():
    X, means, covariances, weights = iris_start(3, 2)
    ours = gaussian_mixture_em(X, means, covariances, weights, 10, reg_covar=1e-2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = GaussianMixture(3, tol=0.0, reg_covar=1e-2, max_iter=10, means_init=means,
                              weights_init=weights,
                              precisions_init=np.linalg.inv(covariances)).fit(X)
    assert np.allclose(ours[1], ref.covariances_, atol=1e-9)


@given(n=st.integers(30, 60), d=st.integers(1, 3), k=st.integers(1, 3), seed=st.integers(0, 9999))
@settings(max_examples=40, deadline=None)
def test_gaussian_mixture_em_never_decreases_the_log_likelihood(n, d, k, seed):
    X, means, covariances, weights = blobs(n, d, k, seed)
    history = []
    for _ in range(20):  # one iteration at a time, so that a collapse ends the run, not the test
        try:
            means, covariances, weights, log_likelihoods = gaussian_mixture_em(
                X, means, covariances, weights, 1)
        except FloatingPointError:  # a component shrank onto too few points: likelihood -> inf
            break
        history.extend(log_likelihoods if not history else log_likelihoods[1:])
    assert np.all(np.diff(history) >= -1e-12 * max(1.0, abs(history[0]) if history else 1.0))


def test_posterior_matches_scipy_densities_and_bayes_rule():
    X, means, covariances, weights = blobs(40, 3, 3, 7)
    covariances = covariances * np.array([0.5, 1.0, 2.0])[:, None, None]
    resp, log_lik = gaussian_mixture_posterior(X, means, covariances, weights)
    joint = np.stack([w * multivariate_normal(m, c).pdf(X)
                      for m, c, w in zip(means, covariances, weights, strict=True)], axis=1)
    assert np.allclose(log_lik, np.log(joint.sum(axis=1)))
    assert np.allclose(resp, joint / joint.sum(axis=1, keepdims=True))


def test_posterior_is_finite_for_points_far_from_every_component():
    X, means, covariances, weights = blobs(20, 2, 2, 3)
    X[0] = [1e4, -1e4]
    resp, log_lik = gaussian_mixture_posterior(X, means, covariances, weights)
    assert np.isfinite(resp).all() and np.isfinite(log_lik).all()
    assert np.allclose(resp.sum(axis=1), 1.0)
    log_joint = np.stack([np.log(w) + multivariate_normal(m, c).logpdf(X[0])
                          for m, c, w in zip(means, covariances, weights, strict=True)])
    assert log_lik[0] == pytest.approx(logsumexp(log_joint))


@given(seed=st.integers(0, 9999), concentration=st.floats(0.05, 5.0))
@settings(max_examples=40, deadline=None)
def test_elbo_gap_is_the_kl_divergence_to_the_posterior(seed, concentration):
    X, means, covariances, weights = blobs(25, 2, 3, seed)
    posterior, log_lik = gaussian_mixture_posterior(X, means, covariances, weights)
    q = np.random.default_rng(seed).dirichlet(np.full(3, concentration), size=len(X))
    q[0] = [1.0, 0.0, 0.0]  # a point mass: 0 log 0 = 0
    safe_q = np.where(q > 0, q, 1.0)
    kl = np.sum(np.where(q > 0, q * (np.log(safe_q) - np.log(posterior)), 0.0), axis=1)
    elbo = gaussian_mixture_elbo(X, means, covariances, weights, q)
    assert log_lik.mean() - elbo == pytest.approx(kl.mean(), abs=1e-9)
    assert elbo <= log_lik.mean() + 1e-12
    at_posterior = gaussian_mixture_elbo(X, means, covariances, weights, posterior)
    assert at_posterior == pytest.approx(log_lik.mean(), abs=1e-10)


def test_a_component_that_loses_all_responsibility_is_reported():
    X = np.random.default_rng(0).normal(size=(30, 2))
    means = np.array([[0.0, 0.0], [1e3, 1e3]])
    covariances = np.stack([np.eye(2), 1e-2 * np.eye(2)])
    with pytest.raises(FloatingPointError, match="component 1"):
        gaussian_mixture_em(X, means, covariances, np.array([0.5, 0.5]), 3)


def test_a_collapsing_covariance_is_reported():
    X = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [5.0, 1.0], [6.0, 3.0], [7.0, 2.0]])
    means = np.array([[0.0, 0.0], [6.0, 2.0]])
    covariances = np.stack([np.eye(2), np.eye(2)])
    with pytest.raises(FloatingPointError, match="positive definite"):
        gaussian_mixture_em(X, means, covariances, np.array([0.5, 0.5]), 5)


# ------------------------------------------------------------------- hard EM and k-means


@pytest.mark.parametrize("seed", [0, 3, 8])
def test_kmeans_matches_scikit_learn_lloyd_from_the_same_centres(seed):
    X, means, _, _ = iris_start(3, seed)
    centres, labels, objective = kmeans(X, means, 50)
    ref = KMeans(3, init=means, n_init=1, max_iter=50, tol=0.0, algorithm="lloyd").fit(X)
    assert np.allclose(centres, ref.cluster_centers_, atol=1e-10)
    assert (labels == ref.labels_).all()
    assert objective[-1] == pytest.approx(ref.inertia_)
    assert np.all(np.diff(objective) <= 1e-9)


def test_soft_em_with_vanishing_variance_becomes_kmeans():
    X, means, _, _ = iris_start(3, 0)
    centres, labels, _ = kmeans(X, means, 100)
    gaps = []
    for variance in (1.0, 1e-1, 1e-2, 1e-4):
        soft_means, resp = fixed_variance_em(X, means, variance, 100)
        gaps.append(np.abs(soft_means - centres).max())
    assert gaps[-1] < 1e-12
    assert (resp.argmax(axis=1) == labels).all()
    assert np.allclose(resp, np.eye(3)[labels], atol=1e-12)
    assert gaps[0] > 0.1  # at sigma^2 = 1 the soft means are clearly different


def test_fixed_variance_em_is_finite_for_tiny_variances():
    X, means, _, _ = iris_start(3, 1)
    soft_means, resp = fixed_variance_em(X, means, 1e-12, 5)
    assert np.isfinite(soft_means).all() and np.allclose(resp.sum(axis=1), 1.0)


# ------------------------------------------------------------------------- the EM rate


def one_dimensional_mixture():
    rng = np.random.default_rng(3)
    X = np.concatenate([rng.normal(0.0, 1.0, 60), rng.normal(2.5, 0.7, 40)])[:, None]
    start = (np.array([[-0.5], [2.0]]), np.array([[[1.0]], [[1.0]]]), np.array([0.5, 0.5]))
    return X, gaussian_mixture_em(X, *start, 3000)[:3]


def finite_difference_hessian(f, theta, h=1e-4):
    p = theta.size
    H = np.empty((p, p))
    for i, j in itertools.product(range(p), repeat=2):
        e_i, e_j = np.eye(p)[i] * h, np.eye(p)[j] * h
        H[i, j] = (f(theta + e_i + e_j) - f(theta + e_i - e_j) - f(theta - e_i + e_j)
                   + f(theta - e_i - e_j)) / (4 * h * h)
    return H


def test_em_jacobian_is_the_fraction_of_missing_information():
    # Dempster et al. (1977): DM = I - I_c^{-1} I_obs at a fixed point, with I_obs the
    # Hessian of -log-likelihood and I_c that of -Q(. | theta*), both by finite differences.
    X, (means, covs, weights) = one_dimensional_mixture()
    theta = pack_mixture(means, covs, weights)
    q = gaussian_mixture_posterior(X, means, covs, weights)[0]

    def unpack(v):
        return (v[:2, None], v[2:4, None, None], np.array([v[4], 1.0 - v[4]]))

    def loglik(v):
        return gaussian_mixture_posterior(X, *unpack(v))[1].sum()

    def expected_complete(v):  # Q(v | theta*) up to the entropy of q, which is constant
        return gaussian_mixture_elbo(X, *unpack(v), q) * len(X)

    observed = -finite_difference_hessian(loglik, theta)
    complete = -finite_difference_hessian(expected_complete, theta)
    from_information = np.eye(5) - np.linalg.solve(complete, observed)
    jacobian = gaussian_mixture_em_jacobian(X, means, covs, weights)
    assert np.abs(jacobian - from_information).max() < 1e-4
    eigenvalues = np.linalg.eigvals(jacobian)
    assert np.abs(eigenvalues.imag).max() < 1e-8
    assert (eigenvalues.real > -1e-8).all() and (eigenvalues.real < 1).all()


def test_largest_eigenvalue_of_the_em_jacobian_is_the_observed_rate():
    X, start = iris_start(3, 14)[0], iris_start(3, 14)[1:]
    fixed = gaussian_mixture_em(X, *start, 3000)[:3]
    rate = max(abs(np.linalg.eigvals(gaussian_mixture_em_jacobian(X, *fixed))))
    path = [pack_mixture(*start)]
    params = start
    for _ in range(60):
        params = gaussian_mixture_em(X, *params, 1)[:3]
        path.append(pack_mixture(*params))
    steps = np.linalg.norm(np.diff(path, axis=0), axis=1)
    late = (steps > 1e-9) & (steps < 1e-4)  # past the transient, above rounding
    assert late.sum() >= 5
    assert np.abs(steps[1:][late[1:]] / steps[:-1][late[1:]] - rate).max() < 2e-3


# ------------------------------------------------------------------- hidden Markov models


def random_hmm(k, m, seed):
    rng = np.random.default_rng(seed)
    return (rng.dirichlet(np.ones(k)), rng.dirichlet(np.ones(k), size=k),
            rng.dirichlet(np.ones(m), size=k))


def sample_hmm(start, transition, emission, T, seed):
    rng = np.random.default_rng(seed)
    state, obs = rng.choice(len(start), p=start), []
    for _ in range(T):
        obs.append(rng.choice(emission.shape[1], p=emission[state]))
        state = rng.choice(len(start), p=transition[state])
    return np.array(obs)


def brute_force_log_likelihood(start, transition, emission, obs):
    total = 0.0
    for path in itertools.product(range(len(start)), repeat=len(obs)):
        p = start[path[0]] * emission[path[0], obs[0]]
        for t in range(1, len(obs)):
            p *= transition[path[t - 1], path[t]] * emission[path[t], obs[t]]
        total += p
    return math.log(total)


@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 7), st.integers(0, 10_000))
@settings(max_examples=60, deadline=None)
def test_forward_algorithm_equals_the_sum_over_every_hidden_path(k, m, T, seed):
    start, transition, emission = random_hmm(k, m, seed)
    obs = np.random.default_rng(seed + 1).integers(0, m, T)
    assert hmm_log_likelihood(start, transition, emission, obs) == pytest.approx(
        brute_force_log_likelihood(start, transition, emission, obs), rel=1e-12, abs=1e-12)


def test_forward_algorithm_does_not_underflow_and_knows_impossible_sequences():
    start, transition, emission = random_hmm(3, 5, 0)
    long = np.random.default_rng(1).integers(0, 5, 20_000)
    assert -np.inf < hmm_log_likelihood(start, transition, emission, long) < -20_000
    never_emits_4 = np.hstack([emission[:, :4] / emission[:, :4].sum(1, keepdims=True),
                               np.zeros((3, 1))])
    assert hmm_log_likelihood(start, transition, never_emits_4, [0, 4, 1]) == -np.inf


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_baum_welch_equals_hmmlearn_from_the_same_start(seed):
    from hmmlearn.hmm import CategoricalHMM

    k, m = 2 + seed % 2, 4
    obs = sample_hmm(*random_hmm(k, m, seed + 10), 150, seed)
    start = random_hmm(k, m, seed + 20)
    ours = baum_welch(obs, *start, 40)
    reference = CategoricalHMM(k, init_params="", params="ste", n_iter=40, tol=-np.inf)
    reference.startprob_, reference.transmat_, reference.emissionprob_ = start
    reference.n_features = m
    reference.fit(obs[:, None])
    for a, b in zip(ours[:3], (reference.startprob_, reference.transmat_,
                               reference.emissionprob_), strict=True):
        assert np.abs(a - b).max() < 1e-10
    assert np.abs(ours[3][:-1] - np.asarray(reference.monitor_.history)).max() < 1e-8
    assert ours[3][-1] == pytest.approx(reference.score(obs[:, None]), abs=1e-8)


@given(st.integers(1, 3), st.integers(2, 5), st.integers(2, 60), st.integers(0, 10_000))
@settings(max_examples=40, deadline=None)
def test_baum_welch_never_decreases_the_log_likelihood(k, m, T, seed):
    obs = np.random.default_rng(seed).integers(0, m, T)
    *_, loglik = baum_welch(obs, *random_hmm(k, m, seed + 1), 15)
    assert loglik.shape == (16,)
    assert np.diff(loglik).min() > -1e-9 * abs(loglik[0])
    assert loglik[0] == pytest.approx(hmm_log_likelihood(*random_hmm(k, m, seed + 1), obs))


# --------------------------------------------------------------------------- bad inputs

X3, M3, C3, W3 = blobs(20, 2, 3, 0)


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: two_coin_em([5, 11], [10, 10], 0.6, 0.5, 3), "heads"),
        (lambda: two_coin_em([5, 1], [10, 0], 0.6, 0.5, 3), "tosses"),
        (lambda: two_coin_em([5, 1], [10], 0.6, 0.5, 3), "same shape"),
        (lambda: two_coin_em([], [], 0.6, 0.5, 3), "heads"),
        (lambda: two_coin_em([5], [10], 1.0, 0.5, 3), "theta_a"),
        (lambda: two_coin_em([5], [10], 0.6, 0.0, 3), "theta_b"),
        (lambda: two_coin_em([5], [10], 0.6, 0.5, -1), "n_iter"),
        (lambda: two_coin_log_likelihood([5], [10], 0.6, 1.5), "theta_b"),
        (lambda: gaussian_mixture_em(X3[:, 0], M3, C3, W3, 2), "X"),
        (lambda: gaussian_mixture_em(X3, M3[:, :1], C3, W3, 2), "means"),
        (lambda: gaussian_mixture_em(X3, M3, C3[:2], W3, 2), "covariances"),
        (lambda: gaussian_mixture_em(X3, M3, C3, W3[:2] / W3[:2].sum(), 2), "weights"),
        (lambda: gaussian_mixture_em(X3, M3, C3, np.array([0.5, 0.3, 0.3]), 2), "sum to 1"),
        (lambda: gaussian_mixture_em(X3, M3, C3, np.array([1.0, 0.0, 0.0]), 2), "weights"),
        (lambda: gaussian_mixture_em(X3, M3, -C3, W3, 2), "positive definite"),
        (lambda: gaussian_mixture_em(X3, M3, C3 + np.array([[0.0, 1.0], [0.0, 0.0]]), W3, 2),
         "symmetric"),
        (lambda: gaussian_mixture_em(np.where(X3 > 1, np.nan, X3), M3, C3, W3, 2), "X"),
        (lambda: gaussian_mixture_em(X3, M3, C3, W3, 2.0), "n_iter"),
        (lambda: gaussian_mixture_em(X3, M3, C3, W3, 2, reg_covar=-1.0), "reg_covar"),
        (lambda: gaussian_mixture_elbo(X3, M3, C3, W3, np.ones((20, 3))), "responsibilities"),
        (lambda: gaussian_mixture_elbo(X3, M3, C3, W3, np.ones((20, 2)) / 2), "responsibilities"),
        (lambda: kmeans(X3, M3[:, :1], 3), "means"),
        (lambda: kmeans(X3, M3, -2), "n_iter"),
        (lambda: fixed_variance_em(X3, M3, 0.0, 3), "variance"),
        (lambda: hmm_log_likelihood([0.5, 0.5], np.eye(2), np.eye(2), [0, 2]), "observations"),
        (lambda: hmm_log_likelihood([0.5, 0.5], np.eye(3), np.eye(2), [0, 1]), "transition"),
        (lambda: hmm_log_likelihood([0.5, 0.5], np.eye(2), np.ones((2, 2)), [0]), "emission"),
        (lambda: hmm_log_likelihood([0.5, 0.5], np.eye(2), np.eye(2), [0.0, 1.0]),
         "observations must be an array of integers"),
        (lambda: baum_welch([0], [0.5, 0.5], np.eye(2), np.eye(2), 3), "observations"),
        (lambda: baum_welch([0, 1], [1.0, 0.0], np.eye(2), np.eye(2), 3), "impossible"),
        (lambda: baum_welch([0, 1], [0.5, 0.5], np.eye(2), np.eye(2), -1), "n_iter"),
        (lambda: gaussian_mixture_em_jacobian(X3, M3, C3, W3, step=0.0), "step"),
    ],
    ids=[
        "heads-above-tosses", "zero-tosses", "count-shapes", "no-sets", "theta-a-one",
        "theta-b-zero", "negative-n-iter", "likelihood-theta-out-of-range", "X-one-dimensional",
        "means-wrong-width", "covariances-wrong-count", "weights-wrong-length",
        "weights-not-summing-to-one", "zero-weight", "negative-definite-covariance",
        "asymmetric-covariance", "nan-in-X", "float-n-iter", "negative-reg-covar",
        "q-rows-not-summing-to-one", "q-wrong-shape", "kmeans-wrong-width",
        "kmeans-negative-n-iter", "zero-variance", "symbol-out-of-range",
        "transition-wrong-shape", "emission-not-distributions", "float-symbols",
        "one-observation", "impossible-start", "bw-negative-n-iter", "zero-step",
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()

"""dlnotes.estimators against autograd, torch's Gumbel-softmax, scipy's distributions and
brute force."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from dlnotes.estimators import (
    BernoulliVAE,
    categorical_gradient_estimates,
    categorical_gradient_samples,
    gaussian_gradient_samples,
    gumbel_max,
    gumbel_noise,
    gumbel_softmax,
    reinforce_accuracy_loss,
    score_function_gradient,
    vae_objective,
)
from dlnotes.training import fit, fit_replicas

LOGITS = torch.tensor([1.0, 0.5, 0.0, -0.5, -2.0], dtype=torch.float64)
VALUES = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0], dtype=torch.float64)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def exact_gradient(values, logits):
    """Autograd gradient of sum_i softmax(logits)_i values_i, row by row."""
    a = logits.clone().requires_grad_(True)
    (torch.softmax(a, dim=-1) * values).sum().backward()
    return a.grad


# --------------------------------------------------------------------------------- Gumbel


def test_gumbel_noise_follows_the_standard_gumbel_distribution():
    g = gumbel_noise((20_000,), generator=gen(1)).numpy()
    assert stats.kstest(g, stats.gumbel_r.cdf).pvalue > 0.01
    assert g.mean() == pytest.approx(np.euler_gamma, abs=0.03)


def test_gumbel_max_frequencies_match_the_softmax_probabilities():
    idx = gumbel_max(LOGITS, 40_000, generator=gen(2))
    counts = np.bincount(idx.numpy(), minlength=5)
    expected = torch.softmax(LOGITS, 0).numpy() * 40_000
    assert stats.chisquare(counts, expected).pvalue > 0.01


def test_gumbel_max_samples_each_row_of_a_batch_from_its_own_softmax():
    logits = torch.stack([LOGITS, LOGITS.flip(0)])
    idx = gumbel_max(logits, 30_000, generator=gen(3))
    assert idx.shape == (30_000, 2)
    freq = F.one_hot(idx, 5).double().mean(0)
    assert torch.allclose(freq, torch.softmax(logits, -1), atol=0.01)


def test_gumbel_max_with_extreme_logits_always_picks_the_largest():
    logits = torch.tensor([-1e4, 1e4, 0.0])
    assert bool((gumbel_max(logits, 1000, generator=gen()) == 1).all())


@given(st.lists(st.floats(-30, 30), min_size=2, max_size=8), st.floats(0.05, 20.0),
       st.booleans())
@settings(max_examples=50, deadline=None)
def test_gumbel_softmax_rows_lie_on_the_simplex(logit_list, tau, hard):
    logits = torch.tensor([logit_list, logit_list[::-1]], dtype=torch.float64)
    y = gumbel_softmax(logits, tau, hard=hard, generator=gen())
    assert y.shape == logits.shape and bool((y >= 0).all())
    assert torch.allclose(y.sum(-1), torch.ones(2, dtype=torch.float64))


def test_gumbel_softmax_is_finite_at_extreme_logits_and_low_temperature():
    logits = torch.tensor([1e4, -1e4, 0.0], requires_grad=True)
    y = gumbel_softmax(logits, 0.01, generator=gen())
    (y @ torch.tensor([1.0, 2.0, 3.0])).backward()
    assert torch.isfinite(y).all() and torch.isfinite(logits.grad).all()
    assert torch.allclose(y.detach(), torch.tensor([1.0, 0.0, 0.0]))


def test_hard_gumbel_softmax_is_one_hot_with_the_soft_samples_gradient():
    values = torch.tensor([0.3, -1.0, 2.0, 0.5, 1.5], dtype=torch.float64)
    grads, outs = [], []
    for hard in (False, True):
        a = LOGITS.expand(50, -1).clone().requires_grad_(True)
        y = gumbel_softmax(a, 0.7, hard=hard, generator=gen(4))
        (y @ values).sum().backward()
        grads.append(a.grad)
        outs.append(y.detach())
    soft, hard_y = outs
    assert torch.equal(hard_y, F.one_hot(soft.argmax(-1), 5).double())
    assert torch.allclose(grads[0], grads[1])


def test_gumbel_softmax_argmax_is_the_gumbel_max_sample_of_the_same_noise():
    soft = gumbel_softmax(LOGITS.expand(200, -1), 2.0, generator=gen(5))
    assert torch.equal(soft.argmax(-1), gumbel_max(LOGITS.expand(200, -1), 1,
                                                   generator=gen(5))[0])


def test_gumbel_softmax_has_the_distribution_of_torchs_gumbel_softmax():
    torch.manual_seed(6)
    tau, n = 0.5, 20_000
    ours = gumbel_softmax(LOGITS.expand(n, -1), tau, generator=gen(7))
    theirs = F.gumbel_softmax(LOGITS.expand(n, -1), tau=tau)
    assert torch.allclose(ours.mean(0), theirs.mean(0), atol=0.015)
    for k in (0, 2):
        assert stats.ks_2samp(ours[:, k].numpy(), theirs[:, k].numpy()).pvalue > 0.01
    hard_theirs = F.gumbel_softmax(LOGITS.expand(n, -1), tau=tau, hard=True)
    assert torch.allclose(hard_theirs.mean(0), torch.softmax(LOGITS, 0), atol=0.015)


# ------------------------------------------------------------------------ score function


def test_score_function_gradient_converges_to_the_autograd_gradient():
    exact = exact_gradient(VALUES, LOGITS)
    rough = score_function_gradient(VALUES, LOGITS, 100, generator=gen(8))
    fine = score_function_gradient(VALUES, LOGITS, 200_000, generator=gen(8))
    assert (fine - exact).abs().max() < 0.02
    assert (fine - exact).norm() < (rough - exact).norm()


def test_score_function_gradient_is_unbiased_for_each_row_and_any_baseline():
    logits = torch.tensor([[2.0, -1.0, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    values = torch.tensor([[1.0, 0.0, 0.0], [0.0, 5.0, -2.0]], dtype=torch.float64)
    exact = exact_gradient(values, logits)
    for baseline in (0.0, 1.0, -3.0):
        est = score_function_gradient(values, logits, 100_000, baseline=baseline,
                                      generator=gen(int(baseline) + 20))
        assert torch.allclose(est, exact, atol=0.04), baseline


def test_score_function_gradient_of_a_constant_minus_its_baseline_is_exactly_zero():
    values = torch.full((5,), 2.5, dtype=torch.float64)
    est = score_function_gradient(values, LOGITS, 7, baseline=2.5, generator=gen())
    assert torch.equal(est, torch.zeros(5, dtype=torch.float64))


def test_score_function_gradient_is_finite_at_extreme_logits():
    logits = torch.tensor([1e4, -1e4, 0.0])
    est = score_function_gradient(torch.tensor([1.0, 2.0, 3.0]), logits, 10, generator=gen())
    assert torch.isfinite(est).all()


@pytest.mark.parametrize("mu,sigma", [(1.0, 0.1), (1.0, 1.0), (-0.5, 2.0)])
def test_gaussian_gradient_estimators_are_unbiased_with_the_closed_form_variances(mu, sigma):
    # f(z) = z^2: d/dmu E f = 2 mu; Var f'(z) = 4 sigma^2;
    # E[(z^2 eps / sigma)^2] = (mu^4 + 18 mu^2 sigma^2 + 15 sigma^4) / sigma^2 (Gaussian moments).
    n = 400_000
    rep = gaussian_gradient_samples(lambda z: z**2, mu, sigma, n, estimator="reparameterised",
                                    generator=gen(9))
    score = gaussian_gradient_samples(lambda z: z**2, mu, sigma, n, estimator="score",
                                      generator=gen(10))
    score_var = (mu**4 + 18 * mu**2 * sigma**2 + 15 * sigma**4) / sigma**2 - 4 * mu**2
    assert float(rep.mean()) == pytest.approx(2 * mu, abs=4 * 2 * sigma / math.sqrt(n))
    assert float(score.mean()) == pytest.approx(2 * mu, abs=4 * math.sqrt(score_var / n))
    assert float(rep.var()) == pytest.approx(4 * sigma**2, rel=0.02)
    assert float(score.var()) == pytest.approx(score_var, rel=0.05)


def test_categorical_score_samples_average_to_the_exact_gradient():
    exact = exact_gradient(VALUES, LOGITS)
    samples = categorical_gradient_samples(VALUES, LOGITS, 100_000, estimator="score",
                                           generator=gen(11))
    assert samples.shape == (100_000, 5)
    assert (samples.mean(0) - exact).abs().max() < 0.03


def test_gumbel_softmax_gradient_is_biased_at_high_temperature_and_not_at_low():
    exact = exact_gradient(VALUES, LOGITS)
    bias = {}
    for tau in (0.05, 5.0):
        g = categorical_gradient_samples(VALUES, LOGITS, 50_000, estimator="gumbel-softmax",
                                         tau=tau, generator=gen(12))
        bias[tau] = float((g.mean(0) - exact).norm())
    assert bias[0.05] < 0.05 < 0.2 < bias[5.0]


def test_categorical_estimates_score_and_leave_one_out_are_unbiased():
    exact = exact_gradient(VALUES, LOGITS)
    est = categorical_gradient_estimates(VALUES, LOGITS, 4, 40_000, tau=1.0, generator=gen(30))
    for name in ("score", "score-loo"):
        mean, se = est[name].mean(0), est[name].std(0) / math.sqrt(40_000)
        assert bool(((mean - exact).abs() < 4 * se + 1e-12).all()), name
    assert float(est["score-loo"].var(0).sum()) < float(est["score"].var(0).sum())


def test_categorical_estimates_match_a_loop_over_the_same_noise():
    S, R, tau = 3, 5, 0.7
    est = categorical_gradient_estimates(VALUES, LOGITS, S, R, tau=tau, generator=gen(31))
    noise = gumbel_noise((R, S, 5), generator=gen(31))
    p = torch.softmax(LOGITS, 0)
    for r in range(R):
        idx = [int((LOGITS + noise[r, s]).argmax()) for s in range(S)]
        loo = [(sum(VALUES[i] for i in idx) - VALUES[i]) / (S - 1) for i in idx]
        score_loo = sum((VALUES[i] - b) * (F.one_hot(torch.tensor(i), 5).double() - p)
                        for i, b in zip(idx, loo, strict=True)) / S
        y = torch.softmax((LOGITS + noise[r]) / tau, -1)  # (S, k)
        closed = (y * (VALUES - (y @ VALUES)[:, None]) / tau).mean(0)  # d(v.y)/da, averaged
        assert torch.allclose(est["score-loo"][r], score_loo, atol=1e-12)
        assert torch.allclose(est["gumbel-softmax"][r], closed, atol=1e-12)


def test_reinforce_accuracy_loss_estimates_the_gradient_of_the_expected_accuracy():
    g = gen(32)
    X = torch.randn(30, 3, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (30,), generator=g)
    W = (0.5 * torch.randn(3, 4, generator=g, dtype=torch.float64)).requires_grad_(True)
    (exact,) = torch.autograd.grad(torch.softmax(X @ W, 1).gather(1, y[:, None]).mean(), W)
    noise = gumbel_noise((4000, 30, 4), generator=g)  # 4000 independent estimates at once
    for baseline in (False, True):
        losses = torch.func.vmap(
            lambda n, b=baseline: reinforce_accuracy_loss(X @ W, y, n, baseline=b))(noise)
        (total,) = torch.autograd.grad(-losses.mean(), W)
        assert (total - exact).abs().max() < 0.1 * exact.abs().max(), baseline


# ------------------------------------------------------------------------------- the VAE


def tiny_vae_data():
    g = gen(13)
    return (torch.rand(40, 6, generator=g) < 0.4).double()


def test_vae_elbo_is_the_bernoulli_log_likelihood_minus_the_exact_kl():
    vae = BernoulliVAE(6, 2, 5, seed=0)
    x = tiny_vae_data()
    _, elbo = vae_objective(vae, x, estimator="reparameterised", generator=gen(14))
    mu, log_sigma = vae.encode(x)
    eps = torch.randn(mu.shape, generator=gen(14), dtype=mu.dtype)
    z = mu + log_sigma.exp() * eps
    q = torch.distributions.Normal(mu, log_sigma.exp())
    prior = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    recon = torch.distributions.Bernoulli(logits=vae.decoder(z)).log_prob(x).sum(-1)
    kl = torch.distributions.kl_divergence(q, prior).sum(-1)
    assert torch.allclose(elbo, (recon - kl).mean().detach())


def test_both_vae_estimators_have_the_same_expected_gradient():
    vae = BernoulliVAE(6, 2, 5, seed=1)
    x = tiny_vae_data()
    means = {}
    for estimator in ("reparameterised", "score"):
        g = gen(15)
        total = [torch.zeros_like(p) for p in vae.encoder.parameters()]
        for _ in range(200):
            surrogate, _ = vae_objective(vae, x, estimator=estimator, generator=g)
            grads = torch.autograd.grad(surrogate, list(vae.encoder.parameters()))
            total = [t + gr / 200 for t, gr in zip(total, grads, strict=True)]
        means[estimator] = torch.cat([t.reshape(-1) for t in total])
    diff = (means["reparameterised"] - means["score"]).norm()
    assert diff < 0.1 * means["reparameterised"].norm()


def test_both_vae_estimators_with_several_samples_have_the_same_expected_gradient():
    vae = BernoulliVAE(6, 2, 5, seed=3)
    x = tiny_vae_data()
    means = {}
    for estimator in ("reparameterised", "score"):
        g = gen(18)
        total = [torch.zeros_like(p) for p in vae.encoder.parameters()]
        for _ in range(200):
            surrogate, _ = vae_objective(vae, x, estimator=estimator, samples=4, generator=g)
            grads = torch.autograd.grad(surrogate, list(vae.encoder.parameters()))
            total = [t + gr / 200 for t, gr in zip(total, grads, strict=True)]
        means[estimator] = torch.cat([t.reshape(-1) for t in total])
    diff = (means["reparameterised"] - means["score"]).norm()
    assert diff < 0.1 * means["reparameterised"].norm()


def test_training_a_vae_raises_the_elbo():
    x = tiny_vae_data()
    vae = BernoulliVAE(6, 2, 8, seed=2)

    def mean_elbo():
        g = gen(17)
        return np.mean([float(vae_objective(vae, x, estimator="reparameterised",
                                            generator=g)[1]) for _ in range(100)])

    before = mean_elbo()
    g = gen(16)
    fit(vae, lambda m, eps: m(x, eps)[0], lambda gr: (torch.randn(40, 2, generator=gr,
                                                                   dtype=torch.float64),),
        steps=200, optimizer="adam", lr=0.02, generator=g)
    assert mean_elbo() > before + 0.2


def test_vaes_of_both_estimators_side_by_side_equal_separate_runs():
    x = tiny_vae_data()

    def draw(g):
        idx = torch.randint(0, 40, (10,), generator=g)
        return x[idx], torch.randn(3, 10, 2, generator=g, dtype=torch.float64)

    def loss(m, xb, eps, score=0.0):
        return m(xb, eps, score)

    side = [BernoulliVAE(6, 2, 5, seed=4) for _ in range(2)]
    fit_replicas(side, loss, draw, generators=[gen(19), gen(19)], steps=30, optimizer="adam",
                 lr=0.01, replica_kwargs={"score": torch.tensor([0.0, 1.0])})
    for model, score in zip(side, (0.0, 1.0), strict=True):
        alone = BernoulliVAE(6, 2, 5, seed=4)
        fit(alone, loss, draw, steps=30, optimizer="adam", lr=0.01, generator=gen(19),
            loss_kwargs={"score": score})
        for a, b in zip(alone.parameters(), model.parameters(), strict=True):
            assert torch.allclose(a, b, atol=1e-10)


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: gumbel_max(LOGITS, 0), "num_samples"),
        (lambda: gumbel_max(torch.tensor([1.0, float("nan")]), 3), "logits must contain only"),
        (lambda: gumbel_max(torch.zeros(2, 2, 2), 3), "logits must have 1 or 2"),
        (lambda: gumbel_max(torch.tensor([1, 2]), 3), "logits must be a floating-point"),
        (lambda: gumbel_softmax(LOGITS, 0.0), "tau"),
        (lambda: gumbel_softmax(LOGITS, -1.0), "tau"),
        (lambda: gumbel_softmax(LOGITS, float("inf")), "tau"),
        (lambda: score_function_gradient(VALUES[:3], LOGITS, 5), "values and logits"),
        (lambda: score_function_gradient(VALUES, LOGITS, 5, baseline=float("nan")), "baseline"),
        (lambda: gaussian_gradient_samples(torch.sin, 0.0, 0.0, 5, estimator="score"), "sigma"),
        (lambda: gaussian_gradient_samples(torch.sin, 0.0, 1.0, 5, estimator="pathwise"),
         "estimator"),
        (lambda: categorical_gradient_samples(VALUES, LOGITS, 5, estimator="score", tau=0.0),
         "tau"),
        (lambda: categorical_gradient_samples(VALUES, LOGITS.expand(2, -1), 5,
                                              estimator="score"), "logits must have 1"),
        (lambda: vae_objective(BernoulliVAE(6, 2, 5), torch.ones(1, 6), estimator="score"),
         "x must hold at least 2 rows"),
        (lambda: vae_objective(BernoulliVAE(6, 2, 5), torch.ones(3, 6), estimator="exact"),
         "estimator"),
        (lambda: vae_objective(BernoulliVAE(6, 2, 5), torch.ones(3, 6).double(),
                               estimator="score", samples=0), "samples"),
        (lambda: categorical_gradient_estimates(VALUES, LOGITS, 1, 5, tau=1.0), "num_samples"),
        (lambda: reinforce_accuracy_loss(torch.zeros(1, 3), torch.zeros(1).long(),
                                         torch.zeros(1, 3)), "logits must hold at least 2"),
    ],
    ids=["no-samples", "nan-logits", "3d-logits", "integer-logits", "zero-tau", "negative-tau",
         "infinite-tau", "shape-mismatch", "nan-baseline", "zero-sigma", "unknown-estimator",
         "categorical-zero-tau", "categorical-batch", "vae-one-row", "vae-unknown-estimator",
         "vae-no-samples", "loo-one-sample", "reinforce-one-row"],
)
def test_bad_input_raises_value_error_naming_the_argument(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()

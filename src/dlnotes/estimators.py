r"""Gradients of expectations over random samples. Used in chapter 13, "Gradients through
sampling".

The objective is :math:`L(\theta) = \mathbb E_{z\sim p_\theta}[f(z)]`. Its gradient can be
estimated in two ways:

* **Reparameterisation** (pathwise): write :math:`z = g_\theta(\varepsilon)` with noise
  :math:`\varepsilon` that does not depend on :math:`\theta` and differentiate through
  :math:`f(g_\theta(\varepsilon))`. For a normal distribution :math:`z = \mu + \sigma\varepsilon`;
  for a categorical one, the Gumbel-max trick (:func:`gumbel_max`) is a reparameterisation
  whose argmax has no useful derivative, and :func:`gumbel_softmax` relaxes it.
* **The score function** (REINFORCE, likelihood ratio):
  :math:`\nabla_\theta L = \mathbb E[f(z)\,\nabla_\theta\log p_\theta(z)]`, which needs only
  samples and :math:`\log p_\theta`, not the derivative of :math:`f`
  (:func:`score_function_gradient`).

:func:`gaussian_gradient_samples` and :func:`categorical_gradient_samples` return one gradient
estimate per sample, to measure bias and variance; :func:`categorical_gradient_estimates`
returns S-sample estimates of three estimators from the same noise, to compare their mean
squared errors; :func:`reinforce_accuracy_loss` trains a classifier for its expected accuracy
by the score function; :class:`BernoulliVAE` and :func:`vae_objective` train a small
variational auto-encoder with either estimator (training itself goes through
:mod:`dlnotes.training`). The chapter's metrics (F1, BLEU) are in :mod:`dlnotes.metrics`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from dlnotes.training import mlp
from dlnotes.validation import (
    check_choice,
    check_finite,
    check_float_tensor,
    check_int_at_least,
    check_min_length,
    check_ndim,
    check_positive,
    check_same_shape,
    check_tensor,
)

__all__ = [
    "gumbel_noise",
    "gumbel_max",
    "gumbel_softmax",
    "score_function_gradient",
    "gaussian_gradient_samples",
    "categorical_gradient_samples",
    "categorical_gradient_estimates",
    "reinforce_accuracy_loss",
    "BernoulliVAE",
    "vae_objective",
]


def _check_logits(name: str, logits: torch.Tensor) -> None:
    check_float_tensor(name, logits, (1, 2))
    if logits.shape[-1] < 1:
        raise ValueError(f"{name} must have at least one class (last dimension ≥ 1)")


def gumbel_noise(
    shape: tuple[int, ...],
    *,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    r"""Independent standard Gumbel samples, :math:`G = -\log(-\log U)` with :math:`U\sim U(0,1)`.

    :math:`U` is kept inside :math:`[\epsilon, 1)` with :math:`\epsilon` the smallest normal
    number of ``dtype``, so every sample is finite.

    Parameters
    ----------
    shape
        Shape of the result.
    generator
        Source of randomness (torch's global generator if ``None``).
    dtype
        Floating dtype of the result.

    Returns
    -------
    torch.Tensor
        Samples of the standard Gumbel distribution, CDF :math:`F(g) = e^{-e^{-g}}`.
    """
    u = torch.rand(shape, generator=generator, dtype=dtype)
    u = u.clamp(min=torch.finfo(dtype).tiny)
    return -torch.log(-torch.log(u))


def gumbel_max(
    logits: torch.Tensor,
    num_samples: int,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Sample categories by the Gumbel-max trick, :math:`\arg\max_i (\text{logits}_i + G_i)`.

    With independent standard Gumbel :math:`G_i`,
    :math:`P(\arg\max_i(a_i + G_i) = k) = \operatorname{softmax}(a)_k`.

    Parameters
    ----------
    logits
        Unnormalised log-probabilities, shape ``(k,)`` or ``(n, k)`` (one distribution per row).
    num_samples
        Number of draws per distribution, ≥ 1.
    generator
        Source of randomness (torch's global generator if ``None``).

    Returns
    -------
    torch.Tensor
        Integer indices of shape ``(num_samples,)`` or ``(num_samples, n)``.

    Raises
    ------
    ValueError
        If ``logits`` is not a finite 1-D or 2-D floating tensor or ``num_samples`` < 1.
    """
    _check_logits("logits", logits)
    check_int_at_least("num_samples", num_samples, 1)
    g = gumbel_noise((num_samples, *logits.shape), generator=generator, dtype=logits.dtype)
    return (logits.detach() + g).argmax(dim=-1)


def gumbel_softmax(
    logits: torch.Tensor,
    tau: float,
    *,
    hard: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""One Gumbel-softmax (concrete) sample per row, differentiable in ``logits``.

    .. math::
        y = \operatorname{softmax}\big((a + G)/\tau\big),

    a point of the probability simplex that tends to the one-hot Gumbel-max sample as
    :math:`\tau \to 0`. With ``hard=True`` the forward value is that one-hot vector and the
    gradient is the gradient of the soft :math:`y` (the straight-through estimator):
    ``one_hot - y.detach() + y``.

    Parameters
    ----------
    logits
        Shape ``(k,)`` or ``(n, k)``.
    tau
        Temperature, > 0.
    hard
        Return one-hot vectors with the straight-through gradient.
    generator
        Source of randomness (torch's global generator if ``None``).

    Returns
    -------
    torch.Tensor
        Same shape as ``logits``; each row sums to 1.

    Raises
    ------
    ValueError
        If ``tau`` ≤ 0 or not finite, or ``logits`` is not a finite 1-D or 2-D floating tensor.
    """
    check_positive("tau", tau)
    _check_logits("logits", logits)
    g = gumbel_noise(tuple(logits.shape), generator=generator, dtype=logits.dtype)
    soft = torch.softmax((logits + g) / tau, dim=-1)
    if not hard:
        return soft
    one_hot = F.one_hot(soft.argmax(dim=-1), logits.shape[-1]).to(soft.dtype)
    return one_hot - soft.detach() + soft


def score_function_gradient(
    values: torch.Tensor,
    logits: torch.Tensor,
    num_samples: int,
    *,
    baseline: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Monte Carlo (REINFORCE) estimate of :math:`\nabla_a \sum_i \operatorname{softmax}(a)_i v_i`.

    With :math:`p = \operatorname{softmax}(a)` and :math:`\nabla_a \log p_i = e_i - p`,

    .. math::
        \nabla_a \mathbb E_{i\sim p}[v_i] = \mathbb E_{i\sim p}\big[(v_i - b)(e_i - p)\big]
        \approx \frac1S\sum_{s=1}^S (v_{i_s} - b)(e_{i_s} - p),

    for any constant baseline :math:`b` (because :math:`\mathbb E[e_i - p] = 0`). Only the
    values at the sampled indices are used, so :math:`v` may be a reward that has no
    derivative (accuracy, F1, BLEU). The samples come from :func:`gumbel_max`.

    Parameters
    ----------
    values
        The value :math:`v_i` of each category, same shape as ``logits``.
    logits
        Shape ``(k,)`` or ``(n, k)``; with ``n`` rows, each row is estimated independently.
    num_samples
        Number of samples :math:`S` per row, ≥ 1.
    baseline
        The constant :math:`b` subtracted from the values (finite).
    generator
        Source of randomness (torch's global generator if ``None``).

    Returns
    -------
    torch.Tensor
        The estimate, same shape as ``logits``, detached from the graph.

    Raises
    ------
    ValueError
        For shapes that differ, non-finite inputs or ``num_samples`` < 1.
    """
    _check_logits("logits", logits)
    check_tensor("values", values)
    check_same_shape("values", values, "logits", logits)
    check_finite("values", values)
    check_finite("baseline", baseline)
    idx = gumbel_max(logits, num_samples, generator=generator)
    p = torch.softmax(logits.detach(), dim=-1)
    freq = F.one_hot(idx, logits.shape[-1]).to(p.dtype).mean(dim=0)
    weighted = freq * (values.detach().to(p.dtype) - baseline)
    return weighted - p * weighted.sum(dim=-1, keepdim=True)


def gaussian_gradient_samples(
    f: Callable[[torch.Tensor], torch.Tensor],
    mu: float,
    sigma: float,
    num_samples: int,
    *,
    estimator: str,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Per-sample estimates of :math:`\frac{d}{d\mu}\mathbb E_{z\sim\mathcal N(\mu,\sigma^2)}f(z)`.

    With :math:`z_s = \mu + \sigma\varepsilon_s`:

    * ``"reparameterised"``: :math:`f'(z_s)`, by autograd through :math:`f`;
    * ``"score"``: :math:`f(z_s)\,\partial_\mu\log\mathcal N(z_s;\mu,\sigma^2)
      = f(z_s)\,(z_s-\mu)/\sigma^2 = f(z_s)\,\varepsilon_s/\sigma`.

    Both are unbiased; their mean is the ``num_samples``-sample estimate and their variance
    the variance of a one-sample estimate.

    Parameters
    ----------
    f
        An elementwise function of a float64 tensor, differentiable for the reparameterised
        estimator.
    mu, sigma
        Mean (finite) and standard deviation (> 0) of :math:`z`.
    num_samples
        Number of draws, ≥ 1.
    estimator
        ``"reparameterised"`` or ``"score"``.
    generator
        Source of randomness (torch's global generator if ``None``).

    Returns
    -------
    torch.Tensor
        Shape ``(num_samples,)``, float64, detached.

    Raises
    ------
    ValueError
        For an unknown ``estimator``, ``sigma`` ≤ 0, a non-finite ``mu`` or ``num_samples`` < 1.
    """
    check_choice("estimator", estimator, ["reparameterised", "score"])
    check_finite("mu", mu)
    check_positive("sigma", sigma)
    check_int_at_least("num_samples", num_samples, 1)
    eps = torch.randn(num_samples, generator=generator, dtype=torch.float64)
    z = (float(mu) + float(sigma) * eps).requires_grad_(estimator == "reparameterised")
    if estimator == "score":
        return (f(z) * eps / float(sigma)).detach()
    (grad,) = torch.autograd.grad(f(z).sum(), z)
    return grad.detach()


def categorical_gradient_samples(
    values: torch.Tensor,
    logits: torch.Tensor,
    num_samples: int,
    *,
    estimator: str,
    tau: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Per-sample estimates of :math:`\nabla_a \sum_i \operatorname{softmax}(a)_i v_i`.

    * ``"score"``: :math:`v_{i_s}(e_{i_s} - p)` with :math:`i_s` a Gumbel-max sample
      (unbiased);
    * ``"gumbel-softmax"``: :math:`\nabla_a\, v^\top y_s` with :math:`y_s` a soft
      :func:`gumbel_softmax` sample at temperature ``tau`` (biased for :math:`\tau > 0`).
      The straight-through estimator (``hard=True``) has exactly this gradient for a
      function linear in :math:`y`; only its forward value differs.

    Parameters
    ----------
    values
        Shape ``(k,)``: the value of each category.
    logits
        Shape ``(k,)``.
    num_samples
        Number of draws, ≥ 1.
    estimator
        ``"score"`` or ``"gumbel-softmax"``.
    tau
        Temperature of the relaxation, > 0 (ignored by ``"score"``).
    generator
        Source of randomness (torch's global generator if ``None``).

    Returns
    -------
    torch.Tensor
        Shape ``(num_samples, k)``: one gradient estimate per row.

    Raises
    ------
    ValueError
        For an unknown ``estimator``, or a wrong shape or value.
    """
    check_choice("estimator", estimator, ["score", "gumbel-softmax"])
    _check_logits("logits", logits)
    check_ndim("logits", logits, 1)
    check_tensor("values", values)
    check_same_shape("values", values, "logits", logits)
    check_finite("values", values)
    check_positive("tau", tau)
    check_int_at_least("num_samples", num_samples, 1)
    rows = logits.detach().expand(num_samples, -1).clone()
    v = values.detach().to(logits.dtype)
    if estimator == "score":
        idx = gumbel_max(rows, 1, generator=generator)[0]
        one_hot = F.one_hot(idx, logits.shape[0]).to(logits.dtype)
        return v[idx, None] * (one_hot - torch.softmax(rows, dim=-1))
    rows.requires_grad_(True)
    y = gumbel_softmax(rows, tau, generator=generator)
    (grad,) = torch.autograd.grad((y @ v).sum(), rows)
    return grad


def categorical_gradient_estimates(
    values: torch.Tensor,
    logits: torch.Tensor,
    num_samples: int,
    replicates: int,
    *,
    tau: float,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    r"""``replicates`` independent ``num_samples``-sample estimates of
    :math:`\nabla_a \sum_i \operatorname{softmax}(a)_i v_i` by three estimators, from the same
    Gumbel noise.

    With :math:`S` Gumbel vectors :math:`G_s`, samples :math:`i_s = \arg\max(a + G_s)` and
    relaxed samples :math:`y_s = \operatorname{softmax}((a + G_s)/\tau)`:

    * ``"score"``: :math:`\frac1S\sum_s v_{i_s}(e_{i_s} - p)` (REINFORCE, no baseline);
    * ``"score-loo"``: :math:`\frac1S\sum_s (v_{i_s} - b_s)(e_{i_s} - p)` with the
      leave-one-out baseline :math:`b_s = \frac1{S-1}\sum_{t\ne s}v_{i_t}`, which does not
      depend on sample :math:`s`, so the estimate stays unbiased (Kool et al. 2019);
    * ``"gumbel-softmax"``: :math:`\frac1S\sum_s\nabla_a v^\top y_s` (biased for
      :math:`\tau > 0`).

    The estimators share the noise, so their errors can be compared replicate by replicate
    (a paired design).

    Parameters
    ----------
    values, logits
        Shape ``(k,)`` each.
    num_samples
        :math:`S` ≥ 2 (the leave-one-out baseline needs another sample).
    replicates
        Number of independent estimates, ≥ 1.
    tau
        Temperature of the relaxation, > 0.
    generator
        Source of randomness (torch's global generator if ``None``).

    Returns
    -------
    dict
        ``"score"``, ``"score-loo"``, ``"gumbel-softmax"`` → tensors of shape
        ``(replicates, k)``.

    Raises
    ------
    ValueError
        For a wrong shape or value.
    """
    _check_logits("logits", logits)
    check_ndim("logits", logits, 1)
    check_tensor("values", values)
    check_same_shape("values", values, "logits", logits)
    check_finite("values", values)
    check_int_at_least("num_samples", num_samples, 2)
    check_int_at_least("replicates", replicates, 1)
    check_positive("tau", tau)
    k, S = logits.shape[0], num_samples
    a = logits.detach().expand(replicates, S, k).clone().requires_grad_(True)
    v = values.detach().to(logits.dtype)
    noisy = a + gumbel_noise((replicates, S, k), generator=generator, dtype=logits.dtype)
    (relaxed,) = torch.autograd.grad((torch.softmax(noisy / tau, dim=-1) @ v).sum(), a)
    idx = noisy.detach().argmax(dim=-1)  # (replicates, S): Gumbel-max samples
    centred = F.one_hot(idx, k).to(v.dtype) - torch.softmax(logits.detach(), dim=-1)
    reward = v[idx]
    loo = (reward.sum(dim=1, keepdim=True) - reward) / (S - 1)
    return {"score": (reward[..., None] * centred).mean(dim=1),
            "score-loo": ((reward - loo)[..., None] * centred).mean(dim=1),
            "gumbel-softmax": relaxed.sum(dim=1) / S}


def reinforce_accuracy_loss(
    logits: torch.Tensor, labels: torch.Tensor, noise: torch.Tensor, *, baseline: bool = True
) -> torch.Tensor:
    r"""A surrogate loss whose gradient is minus the REINFORCE estimate of
    :math:`\nabla\,\frac1n\sum_i p_\theta(y_i\mid x_i)`, the expected accuracy.

    Each row samples one class :math:`c_i = \arg\max(\text{logits}_i + G_i)` with the given
    Gumbel ``noise`` (a sample of :math:`\operatorname{softmax}(\text{logits}_i)`), earns the
    reward :math:`r_i = \mathbb 1[c_i = y_i]`, and the surrogate is

    .. math::
        -\frac1n\sum_i (r_i - b_i)\,\log\operatorname{softmax}(\text{logits}_i)_{c_i},

    with the leave-one-out baseline :math:`b_i = \frac1{n-1}\sum_{j\ne i}r_j` (the mean reward
    of the other rows) or :math:`b_i = 0`. The reward needs no derivative: only which class
    was sampled matters.

    Parameters
    ----------
    logits
        Shape ``(n, k)``, n ≥ 2.
    labels
        Integer classes, shape ``(n,)``.
    noise
        Standard Gumbel noise, shape ``(n, k)`` (:func:`gumbel_noise`).
    baseline
        Subtract the leave-one-out baseline.

    Returns
    -------
    torch.Tensor
        The scalar surrogate (its value is not a loss; its gradient is the estimate).

    Raises
    ------
    ValueError
        For shapes that do not fit together.
    """
    check_float_tensor("logits", logits, 2, finite=False)  # reads no value: vmap-safe
    check_same_shape("noise", noise, "logits", logits)
    check_min_length("logits", logits, 2, "rows (for the baseline)")
    sampled = (logits.detach() + noise).argmax(dim=-1)
    reward = (sampled == labels).to(logits.dtype)
    if baseline:
        reward = reward - (reward.sum() - reward) / (reward.shape[0] - 1)
    log_p = torch.log_softmax(logits, dim=-1).gather(-1, sampled[:, None]).squeeze(-1)
    return -(reward * log_p).mean()


class BernoulliVAE(nn.Module):
    r"""A variational auto-encoder for binary vectors with a diagonal Gaussian posterior.

    Encoder :math:`x \mapsto (\mu, \log\sigma)` and decoder :math:`z \mapsto` logits of
    independent Bernoulli pixels are one-hidden-layer ReLU networks built by
    :func:`dlnotes.training.mlp`. The prior is :math:`\mathcal N(0, I)`. Calling the model
    on data and noise returns the training surrogate and the ELBO (:meth:`forward`), so that
    :func:`dlnotes.training.fit_replicas` can train several seeds, and both estimators, side
    by side.

    Parameters
    ----------
    n_inputs
        Length of a data vector, ≥ 1.
    latent_dim
        Dimension of :math:`z`, ≥ 1.
    hidden
        Width of the hidden layers, ≥ 1.
    seed
        Seed of the initial weights (``None``: torch's global generator).
    dtype
        Floating dtype of the parameters.
    """

    def __init__(self, n_inputs: int, latent_dim: int, hidden: int, *,
                 seed: int | None = None, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        check_int_at_least("latent_dim", latent_dim, 1)
        self.latent_dim = latent_dim
        self.encoder = mlp([n_inputs, hidden, 2 * latent_dim], seed=seed).to(dtype)
        self.decoder = mlp([latent_dim, hidden, n_inputs],
                           seed=None if seed is None else seed + 1).to(dtype)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The posterior's mean and log standard deviation, each of shape ``(n, latent_dim)``."""
        mu, log_sigma = self.encoder(x).split(self.latent_dim, dim=-1)
        return mu, log_sigma

    def forward(self, x: torch.Tensor, eps: torch.Tensor,
                score: float | torch.Tensor = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        r"""The surrogate loss and the ELBO for data ``x`` and standard normal noise ``eps``.

        With :math:`z = \mu + \sigma\varepsilon` and :math:`r = \log p(x\mid z)`, the
        surrogate is :math:`-\frac1n\sum\big(r + s\,(r - b)\log q(z\mid x) - \mathrm{KL}\big)`
        where :math:`z` is held fixed for the encoder when :math:`s = 1` (score function) and
        differentiated through when :math:`s = 0` (reparameterisation); :math:`b` is the
        leave-one-out baseline: for ``eps`` of shape ``(n, d)`` the mean :math:`r` of the
        *other rows*, for ``eps`` of shape ``(K, n, d)`` (K ≥ 2 samples per row) the mean
        :math:`r` of the row's *other samples*.

        Parameters
        ----------
        x
            Binary data, shape ``(n, n_inputs)``.
        eps
            Noise, shape ``(n, latent_dim)`` or ``(K, n, latent_dim)``.
        score
            0 (reparameterised) or 1 (score function), a float or a 0-d tensor (one per
            replica when trained side by side).

        Returns
        -------
        surrogate, elbo
            Scalars: minimise ``surrogate``; ``elbo`` is the estimate of the mean ELBO per
            row from these samples, in nats (detached).
        """
        mu, log_sigma = self.encode(x)
        sigma = log_sigma.exp()
        kl = 0.5 * (mu**2 + sigma**2 - 1.0 - 2.0 * log_sigma).sum(dim=-1)
        z = mu + sigma * eps
        z_used = score * z.detach() + (1 - score) * z
        recon = _bernoulli_log_likelihood(self.decoder(z_used), x.expand(*z.shape[:-1], -1))
        fixed = z.detach()  # log q(z | x) + const as a function of the encoder, z held fixed
        log_q = (-0.5 * ((fixed - mu) / sigma) ** 2 - log_sigma).sum(dim=-1)
        r = recon.detach()
        axis = 0 if eps.ndim == 3 else -1  # samples of a row, or the rows of the batch
        baseline = (r.sum(dim=axis, keepdim=True) - r) / (r.shape[axis] - 1)
        surrogate = -(recon + score * (r - baseline) * log_q - kl).mean()
        return surrogate, (recon - kl).mean().detach()


def _bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=-1)


def vae_objective(
    vae: BernoulliVAE,
    x: torch.Tensor,
    *,
    estimator: str,
    samples: int = 1,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""A surrogate loss whose gradient estimates :math:`-\nabla\,\mathrm{ELBO}`, and the ELBO.

    For each row :math:`x` and ``samples`` draws :math:`z \sim q(z\mid x) = \mathcal N(\mu,
    \sigma^2)`,

    .. math::
        \mathrm{ELBO}(x) = \mathbb E_{q}[\log p(x\mid z)]
        - \mathrm{KL}\big(q(z\mid x)\,\Vert\,\mathcal N(0, I)\big),
        \qquad \mathrm{KL} = \tfrac12\sum_j(\mu_j^2 + \sigma_j^2 - 1 - 2\log\sigma_j),

    with the KL term exact. The reconstruction term's gradient for the encoder is estimated

    * ``"reparameterised"``: through :math:`z = \mu + \sigma\varepsilon`;
    * ``"score"``: by :math:`(r - b)\,\nabla\log q(z\mid x)` with :math:`z` held fixed,
      :math:`r = \log p(x\mid z)` and a leave-one-out baseline :math:`b` (independent of
      this sample, so the estimate stays unbiased): with one sample per row, the mean
      :math:`r` of the other rows; with ``samples`` ≥ 2, the mean :math:`r` of the row's
      other samples, a stronger control variate (Kool et al. 2019).

    The decoder's gradient is the same in both. See :meth:`BernoulliVAE.forward`.

    Parameters
    ----------
    vae
        The model.
    x
        Binary data, shape ``(n, n_inputs)``, n ≥ 2.
    estimator
        ``"reparameterised"`` or ``"score"``.
    samples
        Draws of :math:`z` per row, ≥ 1.
    generator
        Source of the noise :math:`\varepsilon` (torch's global generator if ``None``).

    Returns
    -------
    surrogate, elbo
        Scalars: minimise ``surrogate``; ``elbo`` is the estimate of the mean ELBO per row,
        in nats (detached).

    Raises
    ------
    ValueError
        For an unknown ``estimator`` or fewer than two rows.
    """
    check_choice("estimator", estimator, ["reparameterised", "score"])
    check_ndim("x", x, 2)
    check_min_length("x", x, 2, "rows (for the baseline)")
    check_int_at_least("samples", samples, 1)
    shape = (x.shape[0], vae.latent_dim) if samples == 1 else (samples, x.shape[0],
                                                                vae.latent_dim)
    eps = torch.randn(shape, generator=generator, dtype=x.dtype)
    return vae(x, eps, 1.0 if estimator == "score" else 0.0)

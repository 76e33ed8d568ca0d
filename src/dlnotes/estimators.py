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
estimate per sample, to measure bias and variance; :class:`BernoulliVAE` and
:func:`vae_objective` train a small variational auto-encoder with either estimator;
:func:`fit_full_batch` is the full-batch Adam loop of the chapter's experiments. The F1
metrics of the chapter are in :mod:`dlnotes.metrics`.
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
    "BernoulliVAE",
    "vae_objective",
    "fit_full_batch",
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


class BernoulliVAE(nn.Module):
    r"""A variational auto-encoder for binary vectors with a diagonal Gaussian posterior.

    Encoder :math:`x \mapsto (\mu, \log\sigma)` and decoder :math:`z \mapsto` logits of
    independent Bernoulli pixels are one-hidden-layer ReLU networks built by
    :func:`dlnotes.training.mlp`. The prior is :math:`\mathcal N(0, I)`.

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
    """

    def __init__(self, n_inputs: int, latent_dim: int, hidden: int, *,
                 seed: int | None = None) -> None:
        super().__init__()
        check_int_at_least("latent_dim", latent_dim, 1)
        self.latent_dim = latent_dim
        self.encoder = mlp([n_inputs, hidden, 2 * latent_dim], seed=seed)
        self.decoder = mlp([latent_dim, hidden, n_inputs],
                           seed=None if seed is None else seed + 1)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The posterior's mean and log standard deviation, each of shape ``(n, latent_dim)``."""
        mu, log_sigma = self.encoder(x).split(self.latent_dim, dim=-1)
        return mu, log_sigma


def _bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=-1)


def vae_objective(
    vae: BernoulliVAE,
    x: torch.Tensor,
    *,
    estimator: str,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""A surrogate loss whose gradient estimates :math:`-\nabla\,\mathrm{ELBO}`, and the ELBO.

    For each row :math:`x` and one sample :math:`z \sim q(z\mid x) = \mathcal N(\mu, \sigma^2)`,

    .. math::
        \mathrm{ELBO}(x) = \mathbb E_{q}[\log p(x\mid z)]
        - \mathrm{KL}\big(q(z\mid x)\,\Vert\,\mathcal N(0, I)\big),
        \qquad \mathrm{KL} = \tfrac12\sum_j(\mu_j^2 + \sigma_j^2 - 1 - 2\log\sigma_j),

    with the KL term exact. The reconstruction term's gradient for the encoder is estimated

    * ``"reparameterised"``: through :math:`z = \mu + \sigma\varepsilon`;
    * ``"score"``: by :math:`(r - b)\,\nabla\log q(z\mid x)` with :math:`z` held fixed,
      :math:`r = \log p(x\mid z)` and the leave-one-out baseline :math:`b` = the mean of
      :math:`r` over the *other* rows (independent of this row's sample, so unbiased).

    The decoder's gradient is the same in both (it does not depend on how :math:`z` was
    drawn).

    Parameters
    ----------
    vae
        The model.
    x
        Binary data, shape ``(n, n_inputs)``, n ≥ 2.
    estimator
        ``"reparameterised"`` or ``"score"``.
    generator
        Source of the noise :math:`\varepsilon` (torch's global generator if ``None``).

    Returns
    -------
    surrogate, elbo
        Scalars: minimise ``surrogate``; ``elbo`` is the one-sample estimate of the mean ELBO
        per row, in nats (detached).

    Raises
    ------
    ValueError
        For an unknown ``estimator`` or fewer than two rows.
    """
    check_choice("estimator", estimator, ["reparameterised", "score"])
    check_ndim("x", x, 2)
    check_min_length("x", x, 2, "rows (for the baseline)")
    mu, log_sigma = vae.encode(x)
    sigma = log_sigma.exp()
    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype)
    kl = 0.5 * (mu**2 + sigma**2 - 1.0 - 2.0 * log_sigma).sum(dim=-1)
    if estimator == "reparameterised":
        recon = _bernoulli_log_likelihood(vae.decoder(mu + sigma * eps), x)
        elbo = recon - kl
        return -elbo.mean(), elbo.mean().detach()
    z = (mu + sigma * eps).detach()
    recon = _bernoulli_log_likelihood(vae.decoder(z), x)
    log_q = (-0.5 * ((z - mu) / sigma) ** 2 - log_sigma).sum(dim=-1)
    r = recon.detach()
    baseline = (r.sum() - r) / (r.shape[0] - 1)
    surrogate = -(recon + (r - baseline) * log_q - kl).mean()
    return surrogate, (recon - kl).mean().detach()


def fit_full_batch(
    model: nn.Module,
    objective: Callable[[nn.Module], torch.Tensor],
    *,
    steps: int,
    lr: float,
    on_step: Callable[[nn.Module], dict[str, float]] | None = None,
) -> dict[str, list[float]]:
    """Minimise ``objective(model)`` with Adam for ``steps`` full-batch steps.

    Parameters
    ----------
    model
        The parameters to train.
    objective
        ``objective(model) -> scalar`` to minimise; it may draw fresh random samples on
        every call (a surrogate whose gradient is a Monte Carlo estimate).
    steps, lr
        Number of Adam steps (≥ 1) and learning rate (> 0).
    on_step
        Optional ``callback(model) -> {name: value}``, called under ``torch.no_grad`` before
        the first step and after every step.

    Returns
    -------
    dict
        ``"objective"`` (the value at each step, before the update) and one list per
        callback key (``steps + 1`` entries).

    Raises
    ------
    ValueError
        If ``steps`` < 1 or ``lr`` ≤ 0.
    """
    check_int_at_least("steps", steps, 1)
    check_positive("lr", lr)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    history: dict[str, list[float]] = {"objective": []}

    def record() -> None:
        if on_step is not None:
            with torch.no_grad():
                for key, value in on_step(model).items():
                    history.setdefault(key, []).append(float(value))

    record()
    for _ in range(steps):
        opt.zero_grad()
        loss = objective(model)
        loss.backward()
        opt.step()
        history["objective"].append(float(loss.detach()))
        record()
    return history

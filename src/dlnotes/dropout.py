r"""Dropout and data augmentation. Used in chapter 4, "Dropout and data augmentation".

* **Dropout.** :func:`dropout` is inverted dropout: every entry is kept with probability
  :math:`1-p` and divided by :math:`1-p`, so its expectation is unchanged and nothing needs
  rescaling at test time. :class:`Dropout` is the layer (with its own generator),
  :func:`dropout_generator` gives the masks drawn on one thread their own generator, and
  :func:`dropout_mlp` a :func:`dlnotes.training.mlp` with dropout on the hidden units and,
  optionally, on the inputs. For linear regression with dropout on the inputs the expected
  loss is a ridge penalty weighted by each feature's sum of squares (Wager et al., 2013):
  :func:`dropout_ridge_solution` is its minimiser and :func:`train_dropout_regression` the
  same problem solved by Monte Carlo dropout training (its loop is the lesson).
* **Conditions side by side.** :class:`MaskedMLP` takes its drop probabilities as arguments of
  the forward pass, one per replica, and can apply the masks to the gradient only (the "only
  part of the parameters is updated" half of dropout, without the thinned forward pass);
  :func:`train_conditions` trains every condition on every seed in one
  :func:`dlnotes.training.fit_replicas` call and :func:`evaluation_callback` measures them.
  :func:`idle_unit_share` counts the units left without gradient by one step;
  :func:`steps_to_reach`, :func:`extra_steps` and :func:`slowdown_share` measure how much
  slower a condition trains, with intervals over the seeds.
* **Augmentation of small images.** :func:`shift_images` moves images by whole pixels,
  :func:`random_shifts` draws a shift per image and :class:`ShiftSampler` /
  :func:`random_shifts_inside` one that keeps every inked pixel in the frame;
  :func:`place_on_canvas` puts images at given offsets on a larger canvas;
  :func:`rotate_images` and :func:`scale_images` rotate and zoom about the image centre with
  bilinear interpolation; :func:`augmented_objective` turns an augmentation into an objective
  hook for :func:`dlnotes.training.train_classifier`. Pixels moved out of the frame are lost
  and the pixels moved in are 0.
"""
from __future__ import annotations

import math
import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dlnotes.evidence import Interval, bootstrap_interval, paired_difference
from dlnotes.training import Objective, fit_replicas, mlp
from dlnotes.validation import (
    as_float_array,
    check_dim_size,
    check_finite,
    check_float_tensor,
    check_in_range,
    check_int_at_least,
    check_int_in_range,
    check_length,
    check_min_length,
    check_ndim,
    check_positive,
    check_regression_data,
    check_same_rows,
    check_shape,
    check_tensor,
    check_values_in,
)

__all__ = [
    "dropout",
    "Dropout",
    "dropout_generator",
    "dropout_mlp",
    "MaskedMLP",
    "idle_unit_share",
    "train_conditions",
    "evaluation_callback",
    "steps_to_reach",
    "extra_steps",
    "slowdown_share",
    "dropout_ridge_solution",
    "train_dropout_regression",
    "shift_images",
    "random_shifts",
    "ShiftSampler",
    "random_shifts_inside",
    "place_on_canvas",
    "rotate_images",
    "scale_images",
    "augmented_objective",
]


# ----------------------------------------------------------------------------------- dropout


def dropout(
    x: torch.Tensor,
    p: float,
    *,
    training: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Inverted dropout: zero each entry with probability ``p``, scale the rest by 1/(1 − p).

    .. math::
        \tilde x_i = \frac{m_i}{1-p}\,x_i, \qquad m_i \sim \operatorname{Bernoulli}(1-p)
        \text{ independently}, \qquad \mathbb E[\tilde x_i] = x_i .

    The mask is drawn as ``torch.rand(...) < 1 - p``: the same law as
    ``torch.nn.functional.dropout``, which draws ``bernoulli_`` and so, for the same seed, one
    mask on Intel CPUs (MKL's generator) and another on AMD or ARM CPUs. ``torch.rand`` is
    the same on every CPU, so a seeded run trains the same network everywhere. It also works
    under :func:`torch.func.vmap` with ``randomness="different"`` (one mask per replica).

    Parameters
    ----------
    x
        A floating-point tensor of any shape.
    p
        Probability of dropping an entry, in ``[0, 1]``.
    training
        If false, ``x`` itself is returned (inverted dropout needs no test-time scaling).
    generator
        Optional ``torch.Generator`` for the mask; otherwise the one set for this thread by
        :func:`dropout_generator`, or else the global one.

    Returns
    -------
    torch.Tensor
        Same shape and dtype as ``x``: ``x`` itself when not training or ``p = 0``, zeros when
        ``p = 1``.

    Raises
    ------
    ValueError
        If ``p`` is outside ``[0, 1]`` or not finite, or ``x`` is not a floating tensor.
    """
    check_in_range("p", p, 0.0, 1.0, high_inclusive=True)
    check_float_tensor("x", x, finite=False)
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    if generator is None:
        generator = getattr(_THREAD, "generator", None)
    keep = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device) < 1 - p
    return x * keep / (1 - p)


_THREAD = threading.local()  # the masks' generator set by dropout_generator, per thread


@contextmanager
def dropout_generator(generator: torch.Generator) -> Iterator[torch.Generator]:
    """Within the block, the masks of :func:`dropout` calls made on this thread without a
    generator of their own (and of :class:`Dropout` layers without one) come from ``generator``
    instead of the global torch generator.

    The draws are those the global generator would make after
    ``torch.manual_seed(generator.initial_seed())`` (also under :func:`torch.func.vmap` with
    ``randomness="different"``), but the global state is neither read nor changed. Runs on
    different threads therefore each draw from their own stream, and their results do not
    depend on how the threads interleave (:func:`dlnotes.training.run_in_threads`). Other
    threads are not affected; on leaving the block the previous setting of this thread is
    restored, so blocks nest.

    Raises
    ------
    ValueError
        If ``generator`` is not a ``torch.Generator``.
    """
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    previous = getattr(_THREAD, "generator", None)
    _THREAD.generator = generator
    try:
        yield generator
    finally:
        _THREAD.generator = previous


class Dropout(nn.Dropout):
    """Inverted dropout as a layer (:func:`dropout`), active in ``train()`` mode only.

    A drop-in ``nn.Dropout`` (``isinstance`` holds, ``p`` can be changed) whose masks do not
    depend on the CPU: ``nn.Dropout`` draws them with ``bernoulli_``, which on Intel CPUs
    takes a different random stream (MKL's) than on AMD or ARM for the same seed, so the same
    seed trains a different network. :func:`dropout` draws ``torch.rand`` everywhere. The
    package's models use this layer and :func:`dropout` for that reason.

    Parameters
    ----------
    p
        Drop probability in ``[0, 1]``.
    generator
        Optional ``torch.Generator`` the masks are drawn from (shared between layers if the
        same generator is passed to several); otherwise the one set for the calling thread
        by :func:`dropout_generator`, or else the global one.

    Raises
    ------
    ValueError
        If ``p`` is outside ``[0, 1]``.
    """

    def __init__(self, p: float, generator: torch.Generator | None = None) -> None:
        check_in_range("p", p, 0.0, 1.0, high_inclusive=True)
        super().__init__(float(p))
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Inverted dropout of ``x`` in training mode, the identity in eval mode."""
        return dropout(x, self.p, training=self.training, generator=self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def dropout_mlp(
    sizes: Sequence[int],
    p: float = 0.0,
    *,
    input_p: float = 0.0,
    seed: int = 0,
) -> nn.Sequential:
    """:func:`dlnotes.training.mlp` (ReLU) with :class:`Dropout` after every hidden activation.

    The weights are those of ``mlp(sizes, seed=seed)``, so networks that differ only in ``p``
    start from the same point; the masks come from one generator seeded with ``seed``. Layers
    with probability 0 are left out, so ``dropout_mlp(sizes, 0.0, seed=s)`` is exactly
    ``mlp(sizes, seed=s)``.

    Parameters
    ----------
    sizes
        Layer widths, as for :func:`dlnotes.training.mlp`.
    p
        Drop probability of the hidden units, in ``[0, 1)``.
    input_p
        Drop probability of the inputs, in ``[0, 1)``.
    seed
        Seed of the initial weights and of the masks, ≥ 0.

    Returns
    -------
    torch.nn.Sequential

    Raises
    ------
    ValueError
        If ``p`` or ``input_p`` is outside ``[0, 1)``, or as :func:`dlnotes.training.mlp`.
    """
    check_in_range("p", p, 0.0, 1.0)
    check_in_range("input_p", input_p, 0.0, 1.0)
    check_int_at_least("seed", seed, 0)
    net = mlp(sizes, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = [Dropout(input_p, generator)] if input_p > 0 else []
    for layer in net:
        layers.append(layer)
        if isinstance(layer, nn.ReLU) and p > 0:
            layers.append(Dropout(p, generator))
    return nn.Sequential(*layers)


def _masked(x: torch.Tensor, p: float | torch.Tensor) -> torch.Tensor:
    """Inverted dropout with torch's global generator; ``p`` may be a (vmapped) tensor."""
    if not isinstance(p, torch.Tensor) and p == 0:
        return x
    return torch.where(torch.rand_like(x) < 1 - p, x / (1 - p), 0.0)


class MaskedMLP(nn.Module):
    r"""A ReLU network whose dropout is set per call: conditions and seeds trained side by side.

    The weights are those of ``dlnotes.training.mlp(sizes, seed=seed)``, in float64. In
    training mode ``forward(x, p, input_p, gradient_only)`` applies inverted dropout with
    probability ``input_p`` to the inputs and ``p`` to every hidden layer, with masks drawn
    from torch's global generator: under :func:`dlnotes.training.fit_replicas` (with
    ``randomness="different"``) each replica draws its own masks and may have its own
    probabilities (``replica_kwargs``). In eval mode it is the plain network.

    With ``gradient_only=1`` the hidden masks act on the gradient only. The forward pass is the
    full network, while each example's gradient reaches a unit's incoming and outgoing weights
    multiplied by :math:`g_j = m_j/(1-p)`, as under dropout: only part of the parameters is
    updated, but the objective is the full network's loss. The layer after a hidden layer
    :math:`h` computes

    .. math::
        z = W(g\odot h) + b + \operatorname{sg}\big(W(h - g\odot h)\big),

    (:math:`\operatorname{sg}`: no gradient), whose value is :math:`Wh + b` and whose
    gradients are those of :math:`W(g\odot h) + b`.

    Parameters
    ----------
    sizes
        Layer widths, as for :func:`dlnotes.training.mlp`.
    seed
        Seed of the initial weights, ≥ 0.

    Raises
    ------
    ValueError
        As :func:`dlnotes.training.mlp`.
    """

    def __init__(self, sizes: Sequence[int], seed: int = 0) -> None:
        super().__init__()
        check_int_at_least("seed", seed, 0)
        self.layers = nn.ModuleList(m.double() for m in mlp(sizes, seed=seed)
                                    if isinstance(m, nn.Linear))

    def forward(self, x: torch.Tensor, p: float | torch.Tensor = 0.0,
                input_p: float | torch.Tensor = 0.0,
                gradient_only: float | torch.Tensor = 0.0) -> torch.Tensor:
        """Logits of ``x``. ``p`` and ``input_p`` lie in [0, 1), ``gradient_only`` is 0 or 1;
        each may be a 0-dimensional tensor (one value per replica under vmap), so they are
        not checked here."""
        h = _masked(x, input_p) if self.training else x
        split = isinstance(gradient_only, torch.Tensor) or gradient_only != 0
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            if i == 0 or not self.training:
                z = layer(h)
            else:
                thinned = _masked(h, p)
                z = layer(thinned)
                if split:
                    z = z + gradient_only * F.linear(h - thinned, layer.weight).detach()
            h = torch.relu(z) if i < last else z
        return h


def idle_unit_share(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                    **forward_kwargs: object) -> float:
    """Share of the first layer's units whose incoming weights get an exactly zero gradient.

    One forward pass of ``model`` in its current mode (``model(x, **forward_kwargs)``), the
    cross-entropy with ``y``, one backward pass: a unit gets no gradient when it is silent
    (inactive ReLU, or dropped) for every example of the batch. ``model``'s first parameter
    must be the first layer's weight (no gradient is stored in the model).

    Returns
    -------
    float
        The share in [0, 1].
    """
    check_float_tensor("x", x, 2)
    check_same_rows("x", x, "y", y)
    weight = next(model.parameters())
    (grad,) = torch.autograd.grad(F.cross_entropy(model(x, **forward_kwargs), y), weight)
    return float((grad.abs().sum(1) == 0).double().mean())


def train_conditions(
    loss_fn: Callable[..., torch.Tensor],
    data: Sequence[torch.Tensor],
    conditions: Sequence[Mapping[str, float]],
    *,
    sizes: Sequence[int],
    seeds: Sequence[int],
    callback: Callable[[Callable, int], Mapping[str, torch.Tensor]] | None = None,
    mask_seed: int | None = None,
    **fit_options: object,
) -> dict[str, np.ndarray]:
    """Train one :class:`MaskedMLP` per condition and seed, all side by side, and return what
    was recorded by condition and seed.

    Replica ``(c, s)`` starts from ``MaskedMLP(sizes, seed=seeds[s])`` (the same weights in
    every condition: a paired design) and draws its mini-batches from a generator seeded with
    ``seeds[s]``; its masks and any other random draws inside ``loss_fn`` come from torch's
    global generator, different for every replica (:func:`dlnotes.training.fit_replicas` with
    ``randomness="different"``). A condition names only what it changes: its
    ``"weight_decay"`` is its replicas' weight decay, every other entry a keyword argument of
    ``loss_fn`` with one value per replica; an entry a condition leaves out is 0 there (no
    dropout, no augmentation, ...).

    Parameters
    ----------
    loss_fn
        ``loss_fn(model, *batch, **entries)`` → scalar.
    data
        Training tensors, as for :func:`dlnotes.training.fit_replicas`.
    conditions
        One mapping of numbers per condition (``{}``: the plain network).
    sizes, seeds
        The architecture and the seeds (at least one each).
    callback
        As for :func:`dlnotes.training.fit_replicas`; its values must have shape ``(R,)``.
    mask_seed
        If given (≥ 0), the masks and other draws inside ``loss_fn`` come from torch's global
        generator reseeded with it, and the global state is restored afterwards, so that the
        draws do not depend on what ran before; if ``None``, the global generator as it is.
    fit_options
        ``steps``, ``lr``, ``momentum``, ``batch_size``, ``record_every``, … of
        :func:`dlnotes.training.fit_replicas`.

    Returns
    -------
    dict
        ``"step"``: the recorded steps, shape ``(records,)``; every recorded metric (and
        ``"loss"``): shape ``(records, conditions, seeds)``.

    Raises
    ------
    ValueError
        If there is no condition or no seed, or as :func:`dlnotes.training.fit_replicas`.
    """
    check_min_length("conditions", conditions, 1, "conditions")
    check_min_length("seeds", seeds, 1, "seeds")
    keys = sorted({k for c in conditions for k in c} - {"weight_decay"})
    models = [MaskedMLP(sizes, seed=s) for _ in conditions for s in seeds]
    generators = [torch.Generator().manual_seed(s) for _ in conditions for s in seeds]
    per_replica = {k: torch.tensor([float(c.get(k, 0.0)) for c in conditions for _ in seeds],
                                   dtype=torch.float64) for k in keys}
    decay = [float(c.get("weight_decay", 0.0)) for c in conditions for _ in seeds]
    with torch.random.fork_rng(devices=[], enabled=mask_seed is not None):
        if mask_seed is not None:
            check_int_at_least("mask_seed", mask_seed, 0)
            torch.manual_seed(mask_seed)
        history = fit_replicas(models, loss_fn, tuple(data), generators=generators,
                               replica_kwargs=per_replica, weight_decay=decay,
                               callback=callback, randomness="different", **fit_options)
    shape = (len(history.step), len(conditions), len(seeds))
    return {"step": np.array(history.step)} | {k: history[k].reshape(shape)
                                               for k in history.keys()}


def evaluation_callback(
    sets: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
    at: Collection[int] | Mapping[str, Collection[int]],
    fit_set: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> Callable[[Callable, int], dict[str, torch.Tensor]]:
    """A :func:`dlnotes.training.fit_replicas` callback: each replica's accuracy (key
    ``name``) and cross-entropy (key ``name + "_ce"``) on every set at the steps in ``at``
    (``nan`` at other records), and at every record its cross-entropy on ``fit_set`` (key
    ``"fit_ce"``; typically the training set without masks).

    ``at`` is one collection of steps for all sets, or one per set name (a set measured
    only where it is read costs less; the training is the same either way).

    Returns
    -------
    callable
        ``callback(model_fn, step) -> {name: tensor (R,)}``.

    Raises
    ------
    ValueError
        If ``at`` is a mapping without an entry for every set.
    """
    if isinstance(at, Mapping):
        missing = sorted(set(sets) - set(at))
        if missing:
            raise ValueError(f"at has no steps for the sets {missing}")
        steps = {name: set(at[name]) for name in sets}
    else:
        steps = {name: set(at) for name in sets}

    def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        ce = F.cross_entropy(logits.flatten(0, 1), y.repeat(len(logits)), reduction="none")
        return ce.view(len(logits), -1).mean(1)  # logits (R, n, classes) -> (R,)

    def callback(model_fn: Callable, step: int) -> dict[str, torch.Tensor]:
        out = {}
        if fit_set is not None:
            out["fit_ce"] = cross_entropy(model_fn(fit_set[0]), fit_set[1])
        for name, (X, y) in sets.items():
            if step in steps[name]:
                logits = model_fn(X)
                out[name] = (logits.argmax(-1) == y).double().mean(1)
                out[name + "_ce"] = cross_entropy(logits, y)
            else:
                out[name] = out[name + "_ce"] = torch.full((len(model_fn(X[:1])),), math.nan)
        return out

    return callback


# --------------------------------------------------------------------- how fast training is


def steps_to_reach(steps: Sequence[int], values: np.ndarray, target: float) -> np.ndarray:
    """First step at which each recorded curve falls to ``target``, interpolated linearly
    between records (``nan`` if it never does).

    Parameters
    ----------
    steps
        The recorded steps, increasing, shape ``(records,)``.
    values
        The curves, shape ``(records,)`` or ``(records, R)`` (one column per run).
    target
        The level to reach (finite).

    Returns
    -------
    numpy.ndarray
        Shape ``()`` or ``(R,)``: the step, a float.

    Raises
    ------
    ValueError
        If the shapes do not match or ``target`` is not finite.
    """
    check_finite("target", target)
    steps = as_float_array("steps", steps, 1)
    curves = as_float_array("values", values, (1, 2))
    check_dim_size("values", curves, 0, len(steps), "records (one per step)")
    single = curves.ndim == 1
    curves = curves[:, None] if single else curves
    out = np.full(curves.shape[1], np.nan)
    for r, curve in enumerate(curves.T):
        below = np.flatnonzero(curve <= target)
        if below.size == 0:
            continue
        i = below[0]
        if i == 0:
            out[r] = steps[0]
            continue
        fraction = (curve[i - 1] - target) / (curve[i - 1] - curve[i])
        out[r] = steps[i - 1] + fraction * (steps[i] - steps[i - 1])
    return out[0] if single else out


def extra_steps(steps: np.ndarray, baseline: np.ndarray, *, unit: str = "seeds") -> Interval:
    r"""How many more steps a condition needs than its paired baseline: the geometric mean of
    the ratios minus one, with the Student-*t* interval of the mean log-ratio mapped back.

    .. math::
        \exp\Big(\frac1n\sum_i \log\frac{a_i}{b_i}\Big) - 1

    Raises
    ------
    ValueError
        As :func:`dlnotes.evidence.paired_difference` (also for non-positive step counts).
    """
    a, b = as_float_array("steps", steps, 1), as_float_array("baseline", baseline, 1)
    check_values_in("steps", a, 0.0, low_inclusive=False)
    check_values_in("baseline", b, 0.0, low_inclusive=False)
    log = paired_difference(np.log(a), np.log(b), unit=unit)
    return Interval(math.expm1(log.estimate), math.expm1(log.low), math.expm1(log.high), log.n,
                    unit, log.level)


def slowdown_share(control: np.ndarray, treated: np.ndarray, baseline: np.ndarray, *,
                   unit: str = "seeds", seed: int = 0) -> Interval:
    r"""The share of a slowdown that a control reproduces, with a bootstrap interval over the
    paired units: :math:`\overline{\log(c_i/b_i)}\,/\,\overline{\log(t_i/b_i)}`, for
    step counts of the control :math:`c`, the treatment :math:`t` and the baseline :math:`b`
    (1: the control is as slow as the treatment; 0: as fast as the baseline).

    Raises
    ------
    ValueError
        For samples of different lengths, fewer than two units or non-positive step counts.
    """
    logs = []
    for name, x in (("control", control), ("treated", treated), ("baseline", baseline)):
        a = as_float_array(name, x, 1)
        check_values_in(name, a, 0.0, low_inclusive=False)
        logs.append(np.log(a))
    c, t, b = logs
    return bootstrap_interval(lambda c, t, b: float(np.mean(c - b) / np.mean(t - b)), c, t, b,
                              unit=unit, seed=seed)


# ------------------------------------------------------------- dropout in linear regression


def dropout_ridge_solution(X: np.ndarray, y: np.ndarray, p: float) -> np.ndarray:
    r"""Minimiser of the expected squared error of linear regression with input dropout.

    With every input :math:`x_{ij}` replaced by :math:`m_{ij}x_{ij}/(1-p)`, independent
    :math:`m_{ij} \sim \operatorname{Bernoulli}(1-p)`, the expected loss is
    :math:`\lVert y - Xw\rVert^2 + \frac{p}{1-p}\sum_j \big(\sum_i x_{ij}^2\big) w_j^2`
    (Wager et al., 2013), a ridge penalty weighted by each feature's sum of squares, with
    minimiser

    .. math::
        \hat w = \Big(X^\top X + \tfrac{p}{1-p}\operatorname{diag}(X^\top X)\Big)^{-1} X^\top y .

    It is computed as the least-squares solution of the stacked system
    :math:`[X;\ \sqrt{\lambda}\,\operatorname{diag}(\lVert x_{\cdot j}\rVert)]\,w \approx [y;\ 0]`
    with :math:`\lambda = p/(1-p)`, which avoids forming :math:`X^\top X`. Rescaling a column of
    ``X`` by ``c`` divides its coefficient by ``c`` and leaves the predictions unchanged: unlike
    ridge, the penalty does not depend on the units of the features. An all-zero column gets
    coefficient 0; with ``p = 0`` the result is the minimum-norm least-squares solution.

    Parameters
    ----------
    X
        Design matrix, shape ``(N, d)``.
    y
        Targets, shape ``(N,)``.
    p
        Drop probability in ``[0, 1)`` (at ``p = 1`` every input is dropped and the penalty is
        infinite).

    Returns
    -------
    numpy.ndarray
        Coefficients, shape ``(d,)``, float64.

    Raises
    ------
    ValueError
        For wrong shapes, non-finite inputs or ``p`` outside ``[0, 1)``.
    """
    X, y = check_regression_data(X, y)
    check_in_range("p", p, 0.0, 1.0)
    lam = p / (1 - p)
    column_norms = np.sqrt((X**2).sum(axis=0))
    A = np.vstack([X, math.sqrt(lam) * np.diag(column_norms)])
    b = np.concatenate([y, np.zeros(X.shape[1])])
    return np.linalg.lstsq(A, b, rcond=None)[0]


def train_dropout_regression(
    X: np.ndarray,
    y: np.ndarray,
    p: float,
    *,
    steps: int,
    lr: float,
    seed: int = 0,
) -> np.ndarray:
    r"""Linear regression trained by gradient descent with a fresh input-dropout mask per step.

    Each step draws :math:`M` with independent :math:`\operatorname{Bernoulli}(1-p)` entries,
    forms :math:`\tilde X = M\odot X/(1-p)` and takes a step on
    :math:`\frac1N\lVert y - \tilde X w\rVert^2`, with each coordinate's step divided by the
    mean square of its feature (a diagonal preconditioner: the same as plain gradient descent
    on standardised features, and it does not move the minimiser). The gradient is linear in
    :math:`w` and the mask is independent of the current :math:`w`, so the mean of the
    iterates converges to the minimiser of the *expected* loss, :func:`dropout_ridge_solution`;
    the returned average over the second half of the steps estimates it by Monte Carlo.

    Parameters
    ----------
    X
        Design matrix, shape ``(N, d)``.
    y
        Targets, shape ``(N,)``.
    p
        Drop probability in ``[0, 1)``.
    steps
        Number of steps, ≥ 2.
    lr
        Step size (> 0) in the preconditioned coordinates; about 0.1 / (largest eigenvalue of
        the features' correlation matrix) is stable.
    seed
        Seed of the NumPy generator that draws the masks, ≥ 0.

    Returns
    -------
    numpy.ndarray
        Average of the iterates over the second half of training, shape ``(d,)``.

    Raises
    ------
    ValueError
        For wrong shapes, non-finite inputs or out-of-range arguments.
    """
    X, y = check_regression_data(X, y)
    check_in_range("p", p, 0.0, 1.0)
    check_int_at_least("steps", steps, 2)
    check_positive("lr", lr)
    check_int_at_least("seed", seed, 0)
    gen = np.random.default_rng(seed)
    n, d = X.shape
    scale = (X**2).mean(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    w = np.zeros(d)
    total = np.zeros(d)
    start = steps // 2
    # the loop is the lesson: a fresh mask every step, a closed-form gradient, iterate averaging
    for step in range(steps):
        noisy = X * (gen.random((n, d)) < 1 - p) / (1 - p)
        w = w - lr * (2 / n) * (noisy.T @ (noisy @ w - y)) / scale
        if step >= start:
            total += w
    return total / (steps - start)


# ------------------------------------------------------------------------------ augmentation


def _check_images(images: torch.Tensor) -> None:
    check_float_tensor("images", images, min_ndim=2, finite=False)


def shift_images(images: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Move images by whole pixels: ``dy`` rows down and ``dx`` columns right (negative: up/left).

    Pixels moved past the edge are lost and the uncovered ones are 0 (the background of the
    digits images), so the pixel mass is unchanged exactly when the rows and columns that
    leave the frame are empty.

    Parameters
    ----------
    images
        Floating tensor of shape ``(..., H, W)``.
    dy, dx
        Integer shifts with ``|dy| < H`` and ``|dx| < W``.

    Returns
    -------
    torch.Tensor
        Same shape and dtype as ``images``.

    Raises
    ------
    ValueError
        If a shift is not an integer with ``|shift| <`` the image size, or for a bad ``images``.
    """
    _check_images(images)
    height, width = images.shape[-2:]
    for name, value, size in (("dy", dy, height), ("dx", dx, width)):
        check_int_in_range(name, value, -(size - 1), size - 1)
    out = torch.zeros_like(images)
    rows_out = slice(max(dy, 0), height + min(dy, 0))
    rows_in = slice(max(-dy, 0), height + min(-dy, 0))
    cols_out = slice(max(dx, 0), width + min(dx, 0))
    cols_in = slice(max(-dx, 0), width + min(-dx, 0))
    out[..., rows_out, cols_out] = images[..., rows_in, cols_in]
    return out


def random_shifts(
    images: torch.Tensor,
    max_dy: int,
    max_dx: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Shift every image by its own random whole-pixel offset (:func:`shift_images`).

    The offsets ``dy`` and ``dx`` are drawn independently and uniformly from
    ``{-max_dy, ..., max_dy}`` and ``{-max_dx, ..., max_dx}``.

    Parameters
    ----------
    images
        Floating tensor of shape ``(n, H, W)``.
    max_dy, max_dx
        Largest vertical and horizontal shift, integers ≥ 0 (0: no shift along that axis).
    generator
        Optional ``torch.Generator``; the global one otherwise.

    Returns
    -------
    torch.Tensor
        Shape ``(n, H, W)``.

    Raises
    ------
    ValueError
        If ``images`` is not ``(n, H, W)`` or a maximum shift is negative or too large.
    """
    _check_images(images)
    check_ndim("images", images, 3)
    n, height, width = images.shape
    check_int_in_range("max_dy", max_dy, 0, height - 1)
    check_int_in_range("max_dx", max_dx, 0, width - 1)
    dys = torch.randint(-max_dy, max_dy + 1, (n,), generator=generator)
    dxs = torch.randint(-max_dx, max_dx + 1, (n,), generator=generator)
    return _shift_each(images, dys, dxs)


def _shift_each(images: torch.Tensor, dys: torch.Tensor, dxs: torch.Tensor) -> torch.Tensor:
    """Image ``k`` of ``(n, H, W)`` shifted by ``(dys[k], dxs[k])``, zeros moved in."""
    n, height, width = images.shape
    if n == 0:
        return images.clone()
    max_dy, max_dx = int(dys.abs().max()), int(dxs.abs().max())
    # Output pixel (r, c) of image k is padded pixel (r + max_dy - dy_k, c + max_dx - dx_k).
    padded = F.pad(images, (max_dx, max_dx, max_dy, max_dy))
    rows = torch.arange(height)[None, :] + (max_dy - dys)[:, None]
    cols = torch.arange(width)[None, :] + (max_dx - dxs)[:, None]
    return padded[torch.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


def _free_margins(images: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Empty rows (``dim=2``) or columns (``dim=1``) before the first and after the last
    non-zero one of each image (the whole size for an empty image)."""
    inked = (images != 0).any(dim)  # (n, size)
    size = inked.shape[1]
    first = torch.where(inked.any(1), inked.double().argmax(1), size)
    last = torch.where(inked.any(1), size - 1 - inked.flip(1).double().argmax(1), -1)
    return first, size - 1 - last


class ShiftSampler:
    """Random shifts of a fixed set of images that keep all their non-zero pixels in the frame.

    Every shift of every image by up to ``max_shift`` pixels along each axis is computed once
    (:func:`shift_images`), with each image's range of offsets that move no non-zero pixel out
    of the frame. A draw then only gathers: ``sampler(u)`` maps uniform numbers ``u`` of shape
    ``(n, 2)`` to a vertical and a horizontal offset per image, each uniform on that image's
    allowed integers, so the pixel mass and every pixel value are kept exactly. Drawing is a
    few tensor operations without Python loops or value checks, so it runs inside
    :func:`torch.func.vmap` (``u = torch.rand(n, 2)`` under ``randomness="different"`` draws
    each replica's own shifts).

    Parameters
    ----------
    images
        Floating tensor of shape ``(n, H, W)`` with background 0.
    max_shift
        Largest shift along either axis, an integer ≥ 0.

    Raises
    ------
    ValueError
        If ``images`` is not ``(n, H, W)`` or ``max_shift`` is negative or too large.
    """

    def __init__(self, images: torch.Tensor, max_shift: int) -> None:
        _check_images(images)
        check_ndim("images", images, 3)
        n, height, width = images.shape
        check_int_in_range("max_shift", max_shift, 0, min(height, width) - 1)
        self.images, self.max_shift = images, max_shift
        offsets = range(-max_shift, max_shift + 1)
        self.copies = torch.stack([shift_images(images, dy, dx)
                                   for dy in offsets for dx in offsets], 1)  # (n, K, H, W)
        bounds = [_free_margins(images, dim) for dim in (2, 1)]  # rows, then columns
        self.low = torch.stack([-b.clamp(max=max_shift) for b, _ in bounds], 1)
        self.high = torch.stack([a.clamp(max=max_shift) for _, a in bounds], 1)

    def __call__(self, u: torch.Tensor, active: float | torch.Tensor = 1.0) -> torch.Tensor:
        """The images shifted by the offsets that ``u`` (uniform in [0, 1), shape ``(n, 2)``)
        picks; where ``active`` is 0 (one flag per replica under vmap) they are not moved."""
        offsets = self.low + torch.floor(u * (self.high - self.low + 1))  # (n, 2), may be 0
        offsets = (offsets * active).long() + self.max_shift
        index = offsets[:, 0] * (2 * self.max_shift + 1) + offsets[:, 1]
        return self.copies[torch.arange(len(index)), index]


def random_shifts_inside(images: torch.Tensor, max_shift: int,
                         generator: torch.Generator | None = None) -> torch.Tensor:
    """Shift every image by a random offset that keeps all its non-zero pixels in the frame:
    one draw of :class:`ShiftSampler` (same arguments), with uniform numbers from ``generator``
    (the global one if ``None``). Each image's vertical and horizontal offsets are uniform on the
    integers in ``[-max_shift, max_shift]`` that move no non-zero pixel out of the frame, so the
    shift changes the position and nothing else. Returns the ``(n, H, W)`` shifted images.

    Raises
    ------
    ValueError
        As :class:`ShiftSampler`.
    """
    sampler = ShiftSampler(images, max_shift)
    return sampler(torch.rand(images.shape[0], 2, generator=generator, dtype=torch.float64))


def place_on_canvas(images: torch.Tensor, size: int, offsets: torch.Tensor) -> torch.Tensor:
    """Images ``(n, h, w)`` placed on empty ``size × size`` canvases, image ``k`` with its top
    left corner at row ``offsets[k, 0]``, column ``offsets[k, 1]``.

    Parameters
    ----------
    images
        Floating tensor of shape ``(n, h, w)``.
    size
        Side of the canvas, ≥ max(h, w).
    offsets
        Integer tensor ``(n, 2)`` with ``0 ≤ offsets[:, 0] ≤ size − h`` and
        ``0 ≤ offsets[:, 1] ≤ size − w``.

    Returns
    -------
    torch.Tensor
        Shape ``(n, size, size)``, background 0.

    Raises
    ------
    ValueError
        For a bad ``images``, a canvas smaller than the images, or offsets out of range.
    """
    _check_images(images)
    check_ndim("images", images, 3)
    n, height, width = images.shape
    check_int_at_least("size", size, max(height, width))
    check_tensor("offsets", offsets, 2)
    check_shape("offsets", offsets, (n, 2), "(one (row, column) offset per image)")
    check_values_in("offsets[:, 0]", offsets[:, 0], 0, size - height)
    check_values_in("offsets[:, 1]", offsets[:, 1], 0, size - width)
    canvas = F.pad(images, (0, size - width, 0, size - height))
    return _shift_each(canvas, offsets[:, 0].long(), offsets[:, 1].long())


def rotate_images(images: torch.Tensor, degrees: float | torch.Tensor) -> torch.Tensor:
    r"""Rotate square images counter-clockwise (as displayed) about their centre.

    Output pixel :math:`o` takes the bilinear interpolation of the input at
    :math:`R(\theta)\,o` in coordinates centred on the image (``torch.nn.functional.affine_grid``
    and ``grid_sample`` with ``align_corners=False``, zeros outside the frame). Multiples of
    90° map pixel centres onto pixel centres and equal ``torch.rot90`` up to rounding; other
    angles interpolate, so the pixel mass is kept only approximately, and corners leave the
    frame.

    Parameters
    ----------
    images
        Floating tensor of shape ``(n, H, H)``.
    degrees
        One angle for all images or a tensor of ``n`` angles, in degrees.

    Returns
    -------
    torch.Tensor
        Shape ``(n, H, H)``.

    Raises
    ------
    ValueError
        If ``images`` is not ``(n, H, H)`` or the angles are not finite or of the wrong length.
    """
    angles = _one_per_image(images, degrees, "degrees")
    radians = angles * (math.pi / 180)
    cos, sin = torch.cos(radians), torch.sin(radians)
    return _resample(images, torch.stack([torch.stack([cos, -sin], 1),
                                          torch.stack([sin, cos], 1)], 1))


def _one_per_image(images: torch.Tensor, values: float | torch.Tensor, name: str
                   ) -> torch.Tensor:
    """Check square images ``(n, H, H)`` and one finite value or ``n``; return ``n`` values."""
    _check_images(images)
    check_ndim("images", images, 3)
    n, height, _ = images.shape
    check_shape("images", images, (n, height, height), "(n, H, H): square images")
    per_image = torch.as_tensor(values, dtype=images.dtype)
    check_finite(name, per_image)
    if per_image.ndim == 0:
        per_image = per_image.expand(n)
    check_shape(name, per_image, (n,), "(one value per image, or one number)")
    return per_image


def _resample(images: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    """Output pixel ``o`` of image ``k`` is the bilinear interpolation of the input at
    ``matrices[k] @ o`` in coordinates centred on the image (zeros outside the frame)."""
    n, height, width = images.shape
    theta = torch.cat([matrices, torch.zeros(n, 2, 1, dtype=matrices.dtype)], 2)
    grid = F.affine_grid(theta, [n, 1, height, width], align_corners=False)
    out = F.grid_sample(images[:, None], grid, mode="bilinear", padding_mode="zeros",
                        align_corners=False)
    return out[:, 0]


def scale_images(images: torch.Tensor, factors: float | torch.Tensor) -> torch.Tensor:
    r"""Zoom square images about their centre by ``factors`` (> 1 enlarges, < 1 shrinks).

    Output pixel :math:`o` takes the bilinear interpolation of the input at :math:`o/s` in
    coordinates centred on the image (as :func:`rotate_images`, whose arguments it shares, with
    one factor > 0 for all images or one per image instead of the angles): an enlarged image
    loses what moves past the frame, a shrunk one is surrounded by zeros; a factor of 1 is the
    identity. Returns the ``(n, H, H)`` zoomed images.

    Raises
    ------
    ValueError
        If ``images`` is not ``(n, H, H)`` or a factor is not finite and > 0.
    """
    scale = _one_per_image(images, factors, "factors")
    check_values_in("factors", scale, 0.0, low_inclusive=False)
    return _resample(images, torch.diag_embed(torch.stack([1 / scale, 1 / scale], 1)))


def augmented_objective(
    augment: Callable[[torch.Tensor], torch.Tensor],
    image_shape: tuple[int, int] = (8, 8),
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
) -> Objective:
    """An objective for :func:`dlnotes.training.train_classifier` that augments every batch.

    The flat batch ``(b, H*W)`` is reshaped to images ``(b, H, W)``, passed through
    ``augment`` (for example ``lambda im: random_shifts(im, 0, 1, generator)``), flattened
    again and fed to the model; the loss of the augmented batch is minimised and recorded. A
    new augmentation is drawn at every step.

    Parameters
    ----------
    augment
        Maps images ``(b, H, W)`` to images of the same shape.
    image_shape
        ``(H, W)`` of one image.
    loss_fn
        Loss of the logits and labels.

    Returns
    -------
    callable
        ``objective(model, X_batch, y_batch) -> (loss, loss)``.

    Raises
    ------
    ValueError
        If ``image_shape`` does not hold two positive integers.
    """
    check_length("image_shape", image_shape, 2, "sizes (height, width)")
    for name, size in zip(("height", "width"), image_shape, strict=True):
        check_int_at_least(f"image_shape {name}", size, 1)

    def objective(model: nn.Module, X: torch.Tensor, y: torch.Tensor):
        images = augment(X.reshape(-1, *image_shape))
        loss = loss_fn(model(images.reshape(X.shape)), y)
        return loss, loss

    return objective

r"""A small recurrent network, its Jacobians through time, and the adding problem.

Used in chapter 8, "How far a unit sees".

* :class:`TanhRNN` is the Elman network :math:`h_t = \phi(W_{ih} x_t + b_{ih} + W_{hh}
  h_{t-1} + b_{hh})` with :math:`\phi = \tanh` (or the identity, a linear RNN), with the
  parameter names and layout of ``torch.nn.RNN``.
* :func:`hidden_jacobians` multiplies the one-step Jacobians
  :math:`\partial h_t/\partial h_{t-1} = \operatorname{diag}(\phi'(a_t))\,W_{hh}` from the
  top down — the product back-propagation through time applies to a gradient — and
  :func:`jacobian_norms` returns :math:`\lVert\partial h_T/\partial h_t\rVert_2` for every
  :math:`t`. :func:`scale_spectral_radius` sets the spectral radius of a matrix.
* :func:`adding_problem` draws the adding problem of Hochreiter & Schmidhuber (1997);
  :class:`SequenceRegressor` is a tanh RNN or an LSTM (written with ``nn.Linear`` layers,
  equal to ``torch.nn.RNN`` / ``torch.nn.LSTM`` with the same weights) with a linear read-out;
  :func:`train_on_adding` trains several of them side by side
  (:func:`dlnotes.training.fit_replicas`) with Adam and per-model gradient clipping, and
  :func:`regression_mse` and :func:`gradient_reach` score them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from dlnotes.training import History, fit_replicas
from dlnotes.validation import (
    check_choice,
    check_dim_size,
    check_finite,
    check_int_at_least,
    check_length,
    check_min_length,
    check_ndim,
    check_positive,
    check_same_rows,
    check_shape,
    check_square,
)

__all__ = [
    "TanhRNN",
    "hidden_jacobians",
    "jacobian_norms",
    "scale_spectral_radius",
    "adding_problem",
    "SequenceRegressor",
    "train_on_adding",
    "regression_mse",
    "gradient_reach",
]


#: The nonlinearities of :class:`TanhRNN`, and their slopes as functions of the state h = φ(a).
_PHI = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "identity": lambda a: a}
_SLOPE = {"tanh": lambda h: 1 - h**2, "sigmoid": lambda h: h * (1 - h),
          "identity": torch.ones_like}


class TanhRNN(nn.Module):
    r"""Elman RNN :math:`h_t = \phi(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})`.

    The parameters ``weight_ih`` ``(hidden, input)``, ``weight_hh`` ``(hidden, hidden)``,
    ``bias_ih`` and ``bias_hh`` have the layout of ``torch.nn.RNN``'s ``*_l0`` parameters and
    the same default initialisation, :math:`\mathcal U(-1/\sqrt{H}, 1/\sqrt{H})`.

    Parameters
    ----------
    input_size, hidden_size
        Sizes, ≥ 1.
    nonlinearity
        ``"tanh"``, ``"sigmoid"`` (the logistic function) or ``"identity"`` (a linear RNN).
    seed
        If given, the initial weights are drawn from a generator seeded with it.

    Raises
    ------
    ValueError
        If a size is < 1 or ``nonlinearity`` is unknown.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        nonlinearity: str = "tanh",
        seed: int | None = None,
    ) -> None:
        super().__init__()
        check_int_at_least("input_size", input_size, 1)
        check_int_at_least("hidden_size", hidden_size, 1)
        check_choice("nonlinearity", nonlinearity, tuple(_PHI))
        self.input_size, self.hidden_size, self.nonlinearity = (input_size, hidden_size,
                                                                nonlinearity)
        gen = torch.Generator()
        if seed is None:
            gen.seed()
        else:
            check_int_at_least("seed", seed, 0)
            gen.manual_seed(seed)
        bound = 1.0 / math.sqrt(hidden_size)

        def uniform(*shape: int) -> nn.Parameter:
            return nn.Parameter((2 * torch.rand(shape, generator=gen) - 1) * bound)

        self.weight_ih = uniform(hidden_size, input_size)
        self.weight_hh = uniform(hidden_size, hidden_size)
        self.bias_ih = uniform(hidden_size)
        self.bias_hh = uniform(hidden_size)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, nonlinearity={self.nonlinearity!r}"

    def phi(self, a: torch.Tensor) -> torch.Tensor:
        """The nonlinearity applied to the pre-activation ``a``."""
        return _PHI[self.nonlinearity](a)

    def forward(
        self, x: torch.Tensor, h0: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the network over ``x``.

        Parameters
        ----------
        x
            Inputs ``(batch, time, input_size)`` (batch first, like ``batch_first=True``).
        h0
            Initial state ``(batch, hidden_size)``; zeros if ``None``.

        Returns
        -------
        states : torch.Tensor
            :math:`h_1, …, h_T` as ``(batch, time, hidden_size)``.
        pre_activations : torch.Tensor
            :math:`a_1, …, a_T` of the same shape (:math:`h_t = \\phi(a_t)`).

        Raises
        ------
        ValueError
            If the shapes do not fit.
        """
        check_ndim("x", x, 3)
        check_dim_size("x", x, 2, self.input_size, "features (input_size)")
        if h0 is None:
            h = x.new_zeros(x.shape[0], self.hidden_size)
        else:
            check_shape("h0", h0, (x.shape[0], self.hidden_size), "(batch, hidden_size)")
            h = h0
        drive = x @ self.weight_ih.T + self.bias_ih + self.bias_hh
        states, pre = [], []
        for t in range(x.shape[1]):
            a = drive[:, t] + h @ self.weight_hh.T
            h = self.phi(a)
            states.append(h)
            pre.append(a)
        return torch.stack(states, 1), torch.stack(pre, 1)


def hidden_jacobians(
    rnn: TanhRNN, x: torch.Tensor, h0: torch.Tensor | None = None
) -> torch.Tensor:
    r"""The Jacobians :math:`\partial h_T/\partial h_t` for :math:`t = 0, …, T` of one sequence.

    With :math:`J_t = \partial h_t/\partial h_{t-1} = \operatorname{diag}(\phi'(a_t))\,W_{hh}`
    (:math:`\tanh' = 1 - \tanh^2`),

    .. math:: \frac{\partial h_T}{\partial h_t} = J_T J_{T-1} \cdots J_{t+1},

    (:math:`\sigma' = \sigma(1 - \sigma)` for the sigmoid) accumulated from :math:`t = T`
    (the identity) down to :math:`t = 0`; for a linear RNN the
    entry at :math:`t` is :math:`W_{hh}^{T-t}`.

    Parameters
    ----------
    rnn
        The network.
    x
        One input sequence ``(time, input_size)``, ``time`` ≥ 1.
    h0
        Initial state ``(hidden_size,)``; zeros if ``None``.

    Returns
    -------
    torch.Tensor
        ``(time + 1, hidden, hidden)``; entry ``t`` is :math:`\partial h_T/\partial h_t`.

    Raises
    ------
    ValueError
        If ``x`` is not a finite 2-D tensor with at least one step, or the shapes do not fit.
    """
    check_ndim("x", x, 2)
    check_finite("x", x)
    check_min_length("x", x, 1, "time steps")
    with torch.no_grad():
        states, pre = rnn(x[None], None if h0 is None else h0[None])
        w = rnn.weight_hh.detach()
        slopes = _SLOPE[rnn.nonlinearity](states[0])
        product = torch.eye(rnn.hidden_size, dtype=w.dtype)
        jacobians = [product]
        for t in range(x.shape[0] - 1, -1, -1):
            product = product @ (slopes[t][:, None] * w)
            jacobians.append(product)
    return torch.stack(jacobians[::-1])


def jacobian_norms(
    rnn: TanhRNN, x: torch.Tensor, h0: torch.Tensor | None = None
) -> torch.Tensor:
    r"""Spectral norms :math:`\lVert\partial h_T/\partial h_t\rVert_2` for
    :math:`t = 0, …, T`: how strongly the last state responds to each earlier state.

    Parameters
    ----------
    rnn, x, h0
        As for :func:`hidden_jacobians`.

    Returns
    -------
    torch.Tensor
        ``(time + 1,)``; the last entry is 1 (the identity).

    Raises
    ------
    ValueError
        As :func:`hidden_jacobians`.
    """
    return torch.linalg.matrix_norm(hidden_jacobians(rnn, x, h0), ord=2)


def scale_spectral_radius(w: torch.Tensor, radius: float) -> torch.Tensor:
    r"""``w`` rescaled so that its spectral radius :math:`\max_i |\lambda_i|` is ``radius``.

    Parameters
    ----------
    w
        A finite square matrix with a non-zero eigenvalue.
    radius
        The spectral radius wanted, > 0.

    Returns
    -------
    torch.Tensor
        :math:`w \cdot \text{radius} / \rho(w)`, same dtype.

    Raises
    ------
    ValueError
        If ``w`` is not square and finite, is nilpotent (ρ = 0) or ``radius`` ≤ 0.
    """
    check_square("w", w)
    check_finite("w", w)
    check_positive("radius", radius)
    rho = float(torch.linalg.eigvals(w.double()).abs().max())
    if not rho > 0:
        raise ValueError("w must have a non-zero eigenvalue (its spectral radius is 0)")
    return w * (radius / rho)


def adding_problem(
    n: int, length: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Draw ``n`` sequences of the adding problem (Hochreiter & Schmidhuber, 1997).

    Each step carries two inputs: a value :math:`u_t \sim \mathcal U(0, 1)` and a marker
    that is 1 at two positions — one drawn uniformly from the first half of the sequence, one
    from the second half — and 0 elsewhere. The target is the sum of the two marked values,
    so a network must remember the first one for up to ``length`` − 1 steps. Predicting the
    constant 1 gives mean squared error 1/6.

    Parameters
    ----------
    n
        Number of sequences, ≥ 1.
    length
        Sequence length :math:`T`, ≥ 2.
    generator
        The torch generator to draw from.

    Returns
    -------
    X : torch.Tensor
        ``(n, length, 2)`` float32: values in channel 0, markers in channel 1.
    y : torch.Tensor
        ``(n,)`` float32 targets.

    Raises
    ------
    ValueError
        If ``n`` < 1 or ``length`` < 2.
    """
    check_int_at_least("n", n, 1)
    check_int_at_least("length", length, 2)
    values = torch.rand(n, length, generator=generator)
    half = length // 2
    first = torch.randint(0, half, (n,), generator=generator)
    second = torch.randint(half, length, (n,), generator=generator)
    markers = torch.zeros(n, length)
    rows = torch.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    return torch.stack([values, markers], dim=-1), (values * markers).sum(dim=1)


_GATES = {"rnn": 1, "lstm": 4}


class SequenceRegressor(nn.Module):
    r"""A tanh RNN or an LSTM over a sequence, then a linear read-out of the last state.

    The cell is written with two ``nn.Linear`` layers, ``ih`` (input → gates) and ``hh``
    (state → gates), so that seeds can be trained side by side under :func:`torch.func.vmap`
    (``torch.nn.RNN`` and ``torch.nn.LSTM`` have no batching rule). It computes what PyTorch's
    layers compute: with :math:`a_t = W_{ih}x_t + b_{ih} + W_{hh}h_{t-1} + b_{hh}`, the RNN is
    :math:`h_t = \tanh(a_t)`; the LSTM splits :math:`a_t` into PyTorch's gate blocks
    :math:`(i, f, g, o)` and computes :math:`c_t = \sigma(f)\odot c_{t-1} +
    \sigma(i)\odot\tanh(g)`, :math:`h_t = \sigma(o)\odot\tanh(c_t)`. ``ih.weight``,
    ``ih.bias``, ``hh.weight``, ``hh.bias`` are ``weight_ih_l0``, ``bias_ih_l0``,
    ``weight_hh_l0``, ``bias_hh_l0`` of a ``batch_first`` PyTorch layer (tested), and are
    initialised as PyTorch does, :math:`\mathcal U(-1/\sqrt H, 1/\sqrt H)`.

    Parameters
    ----------
    cell
        ``"rnn"`` or ``"lstm"``.
    input_size, hidden_size
        Sizes, ≥ 1.
    forget_bias
        For the LSTM, added to ``ih.bias``'s forget-gate block at initialisation (1 is the
        usual choice, Gers et al. 2000; 0 keeps PyTorch's initialisation). Ignored for the RNN.
    seed
        Seeds the initial weights (the global torch state is not touched).

    Raises
    ------
    ValueError
        If ``cell`` is unknown or a size is < 1.
    """

    def __init__(
        self,
        cell: str,
        input_size: int,
        hidden_size: int,
        *,
        forget_bias: float = 0.0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        check_choice("cell", cell, tuple(_GATES))
        check_int_at_least("input_size", input_size, 1)
        check_int_at_least("hidden_size", hidden_size, 1)
        check_finite("forget_bias", forget_bias)
        check_int_at_least("seed", seed, 0)
        self.cell, self.input_size, self.hidden_size = cell, input_size, hidden_size
        gates = _GATES[cell] * hidden_size
        self.ih = nn.Linear(input_size, gates)
        self.hh = nn.Linear(hidden_size, gates)
        self.out = nn.Linear(hidden_size, 1)
        gen = torch.Generator().manual_seed(seed)
        bound = 1.0 / math.sqrt(hidden_size)
        with torch.no_grad():
            for p in (self.ih.weight, self.ih.bias, self.hh.weight, self.hh.bias):
                p.uniform_(-bound, bound, generator=gen)
            for p in (self.out.weight, self.out.bias):
                p.uniform_(-bound, bound, generator=gen)
            if cell == "lstm":
                self.ih.bias[hidden_size:2 * hidden_size] += forget_bias

    def extra_repr(self) -> str:
        return f"{self.cell!r}, {self.input_size}, {self.hidden_size}"

    def states(self, x: torch.Tensor) -> torch.Tensor:
        """The hidden states :math:`h_1, …, h_T`, ``(batch, time, hidden)``, of inputs
        ``(batch, time, input_size)``."""
        drive = self.ih(x) + self.hh.bias  # every step's input term and both biases at once
        h = x.new_zeros(x.shape[0], self.hidden_size)
        c, states = h, []
        for d_t in drive.unbind(1):  # unbind: one gradient buffer for all steps, not T
            a = d_t + h @ self.hh.weight.T
            if self.cell == "rnn":
                h = torch.tanh(a)
            else:
                i, f, g, o = a.chunk(4, dim=-1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
            states.append(h)
        return torch.stack(states, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Predictions ``(batch,)`` for inputs ``(batch, time, input_size)``."""
        check_ndim("x", x, 3)
        check_dim_size("x", x, 2, self.input_size, "features (input_size)")
        return self.out(self.states(x)[:, -1])[:, 0]


def _squared_error(model, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((model(X) - y) ** 2).mean()


def train_on_adding(
    models: Sequence[SequenceRegressor],
    data_seeds: Sequence[int],
    *,
    length: int,
    steps: int,
    lr: float | Sequence[float],
    batch_size: int = 64,
    clip: float = 1.0,
    record_every: int | None = None,
) -> History:
    r"""Train regressors side by side on fresh batches of the adding problem, with Adam and
    gradient clipping (:func:`dlnotes.training.fit_replicas`).

    Model :math:`r` draws ``steps * batch_size`` fresh sequences from a generator seeded with
    ``data_seeds[r]`` and sees each of them once, ``batch_size`` per step in an order drawn from
    the same generator (equal seeds: equal batches, a paired design); the data are in the
    models' dtype. Its gradient is clipped to norm ``clip`` separately (the rule of
    ``torch.nn.utils.clip_grad_norm_``). Each model follows the trajectory of its own
    :func:`dlnotes.training.fit` run on the same sequences (tested). The trained weights are
    written back.

    Parameters
    ----------
    models
        Regressors of one cell type and size reading 2 inputs, at least one.
    data_seeds
        One data seed per model, non-negative.
    length
        Sequence length :math:`T`, ≥ 2.
    steps
        Number of Adam steps, ≥ 1.
    lr
        Adam's step size, > 0: one for all, or one per model.
    batch_size
        Sequences per model and step, ≥ 1.
    clip
        Largest gradient norm per model, > 0.
    record_every
        Record the mean training loss every this many steps (and after the last).

    Returns
    -------
    History
        ``history.loss`` of shape ``(records, models)``: the mean squared error on the
        training batches since the previous record.

    Raises
    ------
    ValueError
        If a model does not read 2 inputs, or for a wrong number of seeds or value.
    """
    check_min_length("models", models, 1, "regressors")
    for i, m in enumerate(models):
        if m.input_size != 2:
            raise ValueError(f"models[{i}] must read 2 inputs, got {m.input_size}")
    check_length("data_seeds", data_seeds, len(models), "seeds (one per model)")
    for i, s in enumerate(data_seeds):
        check_int_at_least(f"data_seeds[{i}]", s, 0)
    check_int_at_least("length", length, 2)
    check_int_at_least("batch_size", batch_size, 1)
    check_int_at_least("steps", steps, 1)
    dtype = models[0].out.weight.dtype
    generators = [torch.Generator().manual_seed(s) for s in data_seeds]
    pools = [adding_problem(steps * batch_size, length, g) for g in generators]
    X, y = (torch.stack(part).to(dtype) for part in zip(*pools, strict=True))
    return fit_replicas(models, _squared_error, (X, y), per_replica=(True, True),
                        generators=generators, steps=steps, batch_size=batch_size,
                        optimizer="adam", lr=lr, clip_grad_norm=clip, record_every=record_every)


def regression_mse(models: Sequence[nn.Module], X: torch.Tensor, y: torch.Tensor
                   ) -> torch.Tensor:
    """Mean squared error of every model on the same sequences ``X`` ``(n, time, input)`` and
    targets ``y`` ``(n,)``, computed in the models' dtype.

    Returns
    -------
    torch.Tensor
        ``(models,)``, float64.

    Raises
    ------
    ValueError
        If the shapes do not fit.
    """
    check_ndim("X", X, 3)
    check_ndim("y", y, 1)
    check_same_rows("X", X, "y", y)
    errors = []
    with torch.no_grad():
        for m in models:
            dtype = next(m.parameters()).dtype
            errors.append(float(_squared_error(m, X.to(dtype), y.to(dtype))))
    return torch.tensor(errors, dtype=torch.float64)


def gradient_reach(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    r"""How much gradient of the squared error reaches the first input compared with the last:
    :math:`\lVert\partial L/\partial x_1\rVert / \lVert\partial L/\partial x_T\rVert`,
    norms over the batch and the input features.

    A diagnosis without training: the product of Jacobians :eq:`eq-08-bptt` that a gradient
    crosses on its way back to the first step.

    Raises
    ------
    ValueError
        If the shapes do not fit.
    """
    check_ndim("X", X, 3)
    check_same_rows("X", X, "y", y)
    dtype = next(model.parameters()).dtype
    X = X.to(dtype).clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(_squared_error(model, X, y.to(dtype)), X)
    per_step = grad.norm(dim=(0, 2))
    return float(per_step[0] / per_step[-1])

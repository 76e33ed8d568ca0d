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
  :class:`PackedRegressors` trains several independently initialised ``torch.nn.RNN`` or
  ``torch.nn.LSTM`` regressors at once, as one network with block-diagonal weights, and
  :func:`train_on_adding` trains them with Adam and per-model gradient clipping.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

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
    "PackedRegressors",
    "train_on_adding",
    "packed_mse",
]


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
        ``"tanh"`` or ``"identity"`` (a linear RNN).
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
        check_choice("nonlinearity", nonlinearity, ("tanh", "identity"))
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
        return torch.tanh(a) if self.nonlinearity == "tanh" else a

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

    accumulated from :math:`t = T` (the identity) down to :math:`t = 0`; for a linear RNN the
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
        if rnn.nonlinearity == "tanh":
            slopes = 1 - states[0] ** 2
        else:
            slopes = torch.ones_like(pre[0])
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
    """``torch.nn.RNN`` (tanh) or ``torch.nn.LSTM``, then a linear read-out of the last state.

    Parameters
    ----------
    cell
        ``"rnn"`` or ``"lstm"``.
    input_size, hidden_size
        Sizes, ≥ 1.
    forget_bias
        For the LSTM, added to ``bias_ih``'s forget-gate block at initialisation (1 is the
        usual choice, Gers et al. 2000; 0 keeps PyTorch's initialisation). Ignored for the RNN.
    seed
        Seeds PyTorch's default initialisation (the global torch state is not touched).

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
        self.cell = cell
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            rnn_class = nn.LSTM if cell == "lstm" else nn.RNN
            self.rnn = rnn_class(input_size, hidden_size, batch_first=True)
            self.out = nn.Linear(hidden_size, 1)
        if cell == "lstm":
            with torch.no_grad():
                self.rnn.bias_ih_l0[hidden_size:2 * hidden_size] += forget_bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Predictions ``(batch,)`` for inputs ``(batch, time, input_size)``."""
        states, _ = self.rnn(x)
        return self.out(states[:, -1])[:, 0]


class PackedRegressors(nn.Module):
    r"""Several :class:`SequenceRegressor` models run as one network with block-diagonal
    weights, so that training them together costs about as much as training one.

    Replica :math:`r` reads input features ``r*I … (r+1)*I - 1`` and owns hidden units
    ``r*H … (r+1)*H - 1`` of every gate and output ``r``; every weight connecting two
    replicas is 0. :func:`train_on_adding` keeps those weights at 0 and clips each replica's
    gradient separately, so each replica follows exactly the trajectory it would follow alone
    (up to floating-point summation order).

    Parameters
    ----------
    models
        The replicas, all of the same cell type and sizes, at least one.

    Raises
    ------
    ValueError
        If ``models`` is empty or the models differ in cell type or sizes.
    """

    def __init__(self, models: Sequence[SequenceRegressor]) -> None:
        super().__init__()
        check_min_length("models", models, 1, "SequenceRegressors")
        first = models[0].rnn
        shape = (models[0].cell, first.input_size, first.hidden_size)
        for i, m in enumerate(models):
            if (m.cell, m.rnn.input_size, m.rnn.hidden_size) != shape:
                raise ValueError(f"models[{i}] differs from models[0] in cell type or sizes")
        cell, n_in, n_hid = shape
        self.replicas, self.input_size, self.hidden_size = len(models), n_in, n_hid
        count, gates = len(models), _GATES[cell]
        rnn_class = nn.LSTM if cell == "lstm" else nn.RNN
        dtype = first.weight_ih_l0.dtype
        with torch.random.fork_rng(devices=[]):  # the initial values are overwritten anyway
            self.rnn = rnn_class(count * n_in, count * n_hid, batch_first=True, dtype=dtype)
            self.out = nn.Linear(count * n_hid, count, dtype=dtype)
        params = dict(self.named_parameters())
        owners = {name: torch.full(p.shape, -1, dtype=torch.long) for name, p in params.items()}
        with torch.no_grad():
            for p in params.values():
                p.zero_()
            for r, m in enumerate(models):
                for name, single in m.named_parameters():
                    index = _block_index(name, r, gates, count, n_in, n_hid)
                    params[name][index] = single
                    owners[name][index] = r
        eye = torch.cat([torch.eye(count, dtype=dtype), torch.zeros(1, count, dtype=dtype)])
        for name, owner in owners.items():
            key = name.replace(".", "_")
            self.register_buffer("owner_" + key, owner)
            # one-hot (entries, replicas); the row of an entry between replicas is all 0
            self.register_buffer("assign_" + key, eye[owner.reshape(-1)])

    def owner(self, name: str) -> torch.Tensor:
        """Replica index of every entry of parameter ``name`` (−1: between replicas)."""
        return getattr(self, "owner_" + name.replace(".", "_"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Predictions ``(batch, replicas)`` for inputs ``(batch, time, replicas * input)``."""
        states, _ = self.rnn(x)
        return self.out(states[:, -1])


def _block_index(
    name: str, r: int, gates: int, replicas: int, n_in: int, n_hid: int
) -> tuple[torch.Tensor, ...]:
    """Index of replica ``r``'s block in the packed parameter ``name``."""
    hidden = torch.arange(r * n_hid, (r + 1) * n_hid)
    if name == "out.weight":
        return (torch.tensor([[r]]), hidden[None, :])
    if name == "out.bias":
        return (torch.tensor([r]),)
    rows = torch.cat([g * replicas * n_hid + hidden for g in range(gates)])
    if name.startswith("rnn.weight_ih"):
        return (rows[:, None], torch.arange(r * n_in, (r + 1) * n_in)[None, :])
    if name.startswith("rnn.weight_hh"):
        return (rows[:, None], hidden[None, :])
    return (rows,)


def _clip_per_replica(model: PackedRegressors, max_norm: float) -> torch.Tensor:
    """Zero the gradients between replicas and clip each replica's gradient norm; return the
    norms before clipping, one per replica."""
    params = [(p, getattr(model, "assign_" + name.replace(".", "_")))
              for name, p in model.named_parameters()]
    sq = torch.zeros(model.replicas, dtype=torch.float64)
    for p, assign in params:
        sq += ((p.grad.reshape(-1) ** 2) @ assign).double()
    norms = sq.sqrt()
    # torch.nn.utils.clip_grad_norm_'s rule, applied to each replica's own norm
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for p, assign in params:
        p.grad.mul_((assign @ scale.to(p.dtype)).reshape(p.shape))  # 0 between replicas
    return norms


def train_on_adding(
    model: PackedRegressors,
    data_seeds: Sequence[int],
    *,
    length: int,
    steps: int,
    lr: float,
    batch_size: int = 64,
    clip: float = 1.0,
) -> torch.Tensor:
    r"""Train packed regressors on fresh batches of the adding problem with Adam and
    gradient clipping; return the training loss of every step.

    At every step replica :math:`r` draws its own batch of ``batch_size`` sequences from a
    generator seeded with ``data_seeds[r]``; the loss is the sum over replicas of their mean
    squared errors, so each replica receives only its own gradient. The gradient of each
    replica is clipped to norm ``clip`` separately (the rule of
    ``torch.nn.utils.clip_grad_norm_``), and the weights between replicas stay 0.

    Parameters
    ----------
    model
        The packed regressors (input size 2).
    data_seeds
        One data seed per replica.
    length
        Sequence length :math:`T`, ≥ 2.
    steps
        Number of Adam steps, ≥ 1.
    lr
        Adam's learning rate, > 0.
    batch_size
        Sequences per replica and step, ≥ 1.
    clip
        Largest gradient norm per replica, > 0.

    Returns
    -------
    torch.Tensor
        ``(steps, replicas)``: each replica's mini-batch mean squared error before each step.

    Raises
    ------
    ValueError
        If the model does not read 2 inputs, or for a wrong number of seeds or value.
    """
    if model.input_size != 2:
        raise ValueError(f"model must read 2 inputs per replica, got {model.input_size}")
    check_length("data_seeds", data_seeds, model.replicas, "seeds (one per replica)")
    for i, s in enumerate(data_seeds):
        check_int_at_least(f"data_seeds[{i}]", s, 0)
    check_int_at_least("length", length, 2)
    check_int_at_least("steps", steps, 1)
    check_positive("lr", lr)
    check_int_at_least("batch_size", batch_size, 1)
    check_positive("clip", clip)
    gens = [torch.Generator().manual_seed(s) for s in data_seeds]
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = torch.empty(steps, model.replicas)
    model.train()
    for step in range(steps):
        batches = [adding_problem(batch_size, length, g) for g in gens]
        X = torch.cat([b[0] for b in batches], dim=-1)
        y = torch.stack([b[1] for b in batches], dim=1)
        per_replica = ((model(X.to(model.out.weight.dtype)) - y) ** 2).mean(dim=0)
        opt.zero_grad()
        per_replica.sum().backward()
        _clip_per_replica(model, clip)
        opt.step()
        losses[step] = per_replica.detach()
    return losses


def packed_mse(model: PackedRegressors, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error of every replica on the same sequences ``X`` ``(n, time, input)``
    and targets ``y`` ``(n,)``.

    Returns
    -------
    torch.Tensor
        ``(replicas,)``.

    Raises
    ------
    ValueError
        If the shapes do not fit.
    """
    check_ndim("X", X, 3)
    check_ndim("y", y, 1)
    check_same_rows("X", X, "y", y)
    check_dim_size("X", X, 2, model.input_size, "features (input_size)")
    with torch.no_grad():
        pred = model(X.repeat(1, 1, model.replicas).to(model.out.weight.dtype))
        return ((pred - y[:, None].to(pred.dtype)) ** 2).mean(dim=0)

"""The package's one training loop (:func:`fit`), seeds trained side by side
(:func:`fit_replicas`), independent runs on two threads at once (:func:`run_in_threads`), and
small building blocks (MLPs, mini-batches, accuracy)."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from dlnotes.validation import (
    check_choice,
    check_finite,
    check_in_range,
    check_int_at_least,
    check_nonnegative,
    check_positive,
    check_same_rows,
    check_same_shape,
)
from dlnotes.validation import per_replica as one_per_replica

__all__ = ["fit", "fit_replicas", "run_in_threads", "History", "mlp", "minibatches", "accuracy",
           "loss_objective", "train_classifier", "first_epoch_reaching", "relu_activity",
           "permute_hidden_units", "Objective"]


def mlp(
    sizes: Sequence[int],
    activation: Callable[[], nn.Module] = nn.ReLU,
    *,
    bias_init: float | None = None,
    seed: int | None = None,
) -> nn.Sequential:
    """A fully connected network ``sizes[0] → … → sizes[-1]`` with ``activation`` between.

    Parameters
    ----------
    sizes
        Layer widths, at least two entries, each ≥ 1.
    activation
        Factory of the nonlinearity placed after every layer except the last.
    bias_init
        If given, every bias is set to this constant (PyTorch's default otherwise).
    seed
        If given, the initial weights are drawn from a generator seeded with it, so
        ``mlp(sizes, seed=s)`` is the same network wherever it is called; the global torch
        state is left untouched. If ``None``, the global torch generator is used.

    Raises
    ------
    ValueError
        If fewer than two sizes are given or a size is < 1.
    """
    if len(sizes) < 2:
        raise ValueError(f"sizes must have at least 2 entries, got {list(sizes)}")
    for i, s in enumerate(sizes):
        check_int_at_least(f"sizes[{i}]", s, 1)
    if seed is not None:
        check_int_at_least("seed", seed, 0)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return mlp(sizes, activation, bias_init=bias_init)
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        linear = nn.Linear(n_in, n_out)
        if bias_init is not None:
            nn.init.constant_(linear.bias, bias_init)
        layers.append(linear)
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


def minibatches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Yield index tensors of a random permutation of ``range(n)``, ``batch_size`` at a time.

    The last batch may be smaller. The permutation is drawn from ``generator``.
    """
    check_int_at_least("n", n, 1)
    check_int_at_least("batch_size", batch_size, 1)
    order = torch.randperm(n, generator=generator)
    yield from order.split(batch_size)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of rows whose arg-max logit equals the label (binary: logit > 0 ⇔ label 1)."""
    if logits.ndim == 1:
        check_same_shape("logits", logits, "labels", labels)
        pred = (logits > 0).to(labels.dtype)
    else:
        check_same_rows("logits", logits, "labels", labels)
        pred = logits.argmax(dim=1)
    return float((pred == labels).float().mean())


#: ``objective(model, X_batch, y_batch) -> (to_minimise, to_record)``
Objective = Callable[[nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def loss_objective(loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Objective:
    """The objective that minimises and records ``loss_fn(model(X_batch), y_batch)``."""

    def objective(model: nn.Module, X: torch.Tensor, y: torch.Tensor):
        loss = loss_fn(model(X), y)
        return loss, loss

    return objective


# ----------------------------------------------------------------------------- the one loop
class History:
    """What a training run recorded: the steps, the training loss, and callback metrics.

    ``history.step`` lists the steps (counted from 1) after which a record was taken;
    ``history["loss"]`` is the mean training loss over the steps since the previous record
    (weighted by batch size); ``history[name]`` any metric a callback returned. Arrays have
    shape ``(records,)`` for :func:`fit` and ``(records, R)`` for :func:`fit_replicas`.
    """

    def __init__(self) -> None:
        self.step: list[int] = []
        self._values: dict[str, list] = {"loss": []}

    def record(self, step: int, values: Mapping[str, object]) -> None:
        """Append one record taken after ``step``."""
        self.step.append(step)
        for name, value in values.items():
            column = self._values.setdefault(name, [])
            if len(column) != len(self.step) - 1:
                raise ValueError(f"metric {name!r} must be recorded at every record")
            if isinstance(value, torch.Tensor):
                value = value.detach().cpu().double().numpy()
            column.append(np.asarray(value, dtype=np.float64))

    def __getitem__(self, name: str) -> np.ndarray:
        return np.stack(self._values[name]) if self._values[name] else np.empty(0)

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def keys(self) -> list[str]:
        """Names of the recorded metrics, ``"loss"`` first."""
        return list(self._values)

    @property
    def loss(self) -> np.ndarray:
        """``history["loss"]``."""
        return self["loss"]

    @classmethod
    def side_by_side(cls, parts: Sequence[History]) -> History:
        """One history of :func:`fit_replicas` runs taken at the same steps: every record's
        replica columns of ``parts`` placed side by side, in order (``(records, R_1 + R_2 +
        …)``).

        Raises
        ------
        ValueError
            If ``parts`` is empty or the runs differ in their steps or metrics.
        """
        if not parts:
            raise ValueError("parts must hold at least one history")
        joined = cls()
        for part in parts:
            if part.step != parts[0].step or part.keys() != parts[0].keys():
                raise ValueError("the histories must have the same steps and metrics, got "
                                 f"{parts[0].step} {parts[0].keys()} and {part.step} "
                                 f"{part.keys()}")
        for r, step in enumerate(parts[0].step):
            joined.record(step, {name: np.concatenate([np.atleast_1d(part._values[name][r])
                                                       for part in parts])
                                 for name in parts[0].keys()})
        return joined


def _batches(n: int, batch_size: int | None, generator: torch.Generator) -> Iterator[
        torch.Tensor | None]:
    """Endless index batches: epochs of random permutations (``batch_size=None``: ``None``,
    the full batch in its stored order, drawing nothing)."""
    while True:
        if batch_size is None:
            yield None
        else:
            yield from minibatches(n, batch_size, generator)


def _check_schedule(steps: int | None, epochs: int | None, data, batch_size: int | None,
                    n: int | None) -> int:
    """The number of steps implied by ``steps`` or ``epochs`` (exactly one is given)."""
    if (steps is None) == (epochs is None):
        raise ValueError("give exactly one of steps and epochs")
    if batch_size is not None:
        check_int_at_least("batch_size", batch_size, 1)
    if steps is not None:
        check_int_at_least("steps", steps, 1)
        return steps
    check_int_at_least("epochs", epochs, 1)
    if callable(data):
        raise ValueError("epochs need data as tensors; with a batch-drawing function use steps")
    per_epoch = 1 if batch_size is None else math.ceil(n / batch_size)
    return epochs * per_epoch


def _data_rows(data, name: str = "data") -> int | None:
    if callable(data):
        return None
    if not isinstance(data, tuple | list) or not data:
        raise ValueError(f"{name} must be a non-empty tuple of tensors or a function of a "
                         "generator")
    rows = {int(d.shape[0]) for d in data}
    if len(rows) != 1:
        raise ValueError(f"{name}: every tensor must have the same number of rows, got "
                         f"{[tuple(d.shape) for d in data]}")
    return rows.pop()


def _make_optimizer(optimizer, params, *, lr, momentum, weight_decay, betas):
    if callable(optimizer):
        return optimizer(params)
    check_choice("optimizer", optimizer, ["sgd", "adam"])
    if optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=weight_decay)


def _split_loss(value) -> tuple[torch.Tensor, torch.Tensor]:
    """``loss_fn`` returns the loss, or ``(to_minimise, to_record)``."""
    if isinstance(value, tuple):
        return value[0], value[1]
    return value, value


def fit(
    model: nn.Module,
    loss_fn: Callable[..., torch.Tensor],
    data: Sequence[torch.Tensor] | Callable[[torch.Generator], Sequence[torch.Tensor]],
    *,
    steps: int | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    optimizer: str | Callable = "sgd",
    lr: float = 0.1,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    betas: tuple[float, float] = (0.9, 0.999),
    generator: torch.Generator | None = None,
    loss_kwargs: Mapping[str, object] | None = None,
    after_backward: Callable[[nn.Module], None] | None = None,
    clip_grad_norm: float | None = None,
    callback: Callable[[nn.Module, int], Mapping[str, float] | None] | None = None,
    record_every: int | None = None,
) -> History:
    r"""Train ``model`` by minimising ``loss_fn`` with a first-order optimiser: the package's
    one training loop.

    Each step draws a batch, computes ``loss_fn(model, *batch, **loss_kwargs)``, back-propagates,
    calls ``after_backward(model)`` (gradient surgery, if any), clips the gradient norm (if
    ``clip_grad_norm``), and takes one optimiser step.

    Parameters
    ----------
    model
        The network, trained in place (in train mode; callbacks see it in eval mode).
    loss_fn
        ``loss_fn(model, *batch, **loss_kwargs)`` → the scalar to minimise, or a pair
        ``(to_minimise, to_record)`` when the recorded loss is another quantity.
    data
        A tuple of tensors with a common first dimension, from which mini-batches of
        ``batch_size`` rows are drawn without replacement each epoch (``batch_size=None``:
        the whole set each step); or a function ``data(generator) -> tuple`` that draws a
        fresh batch every step.
    steps, epochs
        How long to train: exactly one of them (``epochs`` only with tensor data).
    batch_size
        Rows per mini-batch (≥ 1), or ``None`` for full-batch steps.
    optimizer
        ``"sgd"`` (:class:`torch.optim.SGD`), ``"adam"`` (:class:`torch.optim.Adam`), or a
        factory ``params -> torch.optim.Optimizer``; ``lr``, ``momentum``, ``weight_decay``
        and ``betas`` configure the first two.
    generator
        The source of the batch order (or of fresh batches); a new generator seeded with 0 if
        ``None``.
    loss_kwargs
        Fixed keyword arguments of ``loss_fn``.
    after_backward
        ``after_backward(model)``, called after ``backward()`` and before the step.
    clip_grad_norm
        If given, the gradient's global norm is clipped to it (as
        :func:`torch.nn.utils.clip_grad_norm_`).
    callback
        ``callback(model, step) -> {name: value}`` (or ``None``), called under
        :func:`torch.no_grad` in eval mode at every record.
    record_every
        Record every this many steps (and after the last). ``None``: after every epoch when
        training by ``epochs``, otherwise only after the last step.

    Returns
    -------
    History
        The recorded steps, the mean training loss between records, and the callback's
        metrics.

    Raises
    ------
    ValueError
        For a bad schedule, data, optimiser or hyper-parameter.
    """
    n = _data_rows(data)
    total = _check_schedule(steps, epochs, data, batch_size, n)
    every = _record_every(record_every, epochs, total, batch_size, n)
    check_positive("lr", lr)
    check_nonnegative("weight_decay", weight_decay)
    _check_optimizer_settings(momentum, clip_grad_norm)
    generator = torch.Generator().manual_seed(0) if generator is None else generator
    opt = _make_optimizer(optimizer, list(model.parameters()), lr=lr, momentum=momentum,
                          weight_decay=weight_decay, betas=betas)
    kwargs = dict(loss_kwargs or {})
    batches = None if callable(data) else _batches(n, batch_size, generator)
    history, total_loss, count = History(), 0.0, 0
    model.train()
    for step in range(1, total + 1):
        if callable(data):
            batch = tuple(data(generator))
        else:
            idx = next(batches)
            batch = tuple(data) if idx is None else tuple(d[idx] for d in data)
        opt.zero_grad()
        to_minimise, recorded = _split_loss(loss_fn(model, *batch, **kwargs))
        to_minimise.backward()
        if after_backward is not None:
            after_backward(model)
        if clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
        opt.step()
        rows = int(batch[0].shape[0]) if batch and batch[0].ndim else 1
        total_loss += float(recorded.detach()) * rows
        count += rows
        if step % every == 0 or step == total:
            _take_record(history, step, total_loss / count, callback, model, model)
            total_loss, count = 0.0, 0
    return history


def _take_record(history: History, step: int, mean_loss, callback, module: nn.Module,
                 handle) -> None:
    """Record the mean loss and the callback's metrics (``module`` in eval mode, no grad)."""
    values = {"loss": mean_loss}
    if callback is not None:
        module.eval()
        with torch.no_grad():
            values |= dict(callback(handle, step) or {})
        module.train()
    history.record(step, values)


def _record_every(record_every, epochs, total, batch_size, n) -> int:
    if record_every is not None:
        check_int_at_least("record_every", record_every, 1)
        return record_every
    if epochs is not None:
        return 1 if batch_size is None else math.ceil(n / batch_size)
    return total


def _check_optimizer_settings(momentum, clip_grad_norm) -> None:
    check_in_range("momentum", momentum, 0.0, 1.0)
    if clip_grad_norm is not None:
        check_positive("clip_grad_norm", clip_grad_norm)


# ---------------------------------------------------------------- seeds trained side by side
class _Replica:
    """One replica's view of a stacked model inside :func:`torch.func.vmap`: callable like
    the module, with the replica's parameters."""

    def __init__(self, base: nn.Module, params: dict, buffers: dict) -> None:
        self._base, self._params, self._buffers = base, params, buffers

    def __call__(self, *args, **kwargs):
        return functional_call(self._base, (self._params, self._buffers), args, kwargs,
                               tie_weights=False)

    def named_parameters(self) -> Iterator[tuple[str, torch.Tensor]]:
        """(name, tensor) of the replica's parameters, as :meth:`nn.Module.named_parameters`."""
        yield from self._params.items()

    def parameters(self) -> Iterator[torch.Tensor]:
        """The replica's parameters, as :meth:`nn.Module.parameters`."""
        yield from self._params.values()


def _check_replicas(models: Sequence[nn.Module]) -> None:
    if len(models) == 0:
        raise ValueError("models must hold at least one model")
    if len(dict(models[0].named_parameters(remove_duplicate=False))) != len(
            dict(models[0].named_parameters())):
        raise ValueError("models with tied (shared) parameters cannot be stacked")
    shapes = [[(k, tuple(v.shape), v.dtype) for k, v in m.state_dict().items()] for m in models]
    for r, shape in enumerate(shapes):
        if type(models[r]) is not type(models[0]) or shape != shapes[0]:
            raise ValueError(f"models[{r}] must have the type, parameters and buffers of "
                             "models[0]")


def _stacked_batch(data, per_replica, gens, batch_size, iters):
    """Each replica's batch, stacked: shared full-batch tensors stay unstacked."""
    if callable(data):
        draws = [tuple(data(g)) for g in gens]
        return tuple(torch.stack(parts) for parts in zip(*draws, strict=True)), (0,) * len(
            draws[0])
    idx = [next(it) for it in iters]
    if idx[0] is None:
        return tuple(data), tuple(0 if p else None for p in per_replica)
    index = torch.stack(idx)  # (R, B)
    rows = torch.arange(len(gens))[:, None]
    return tuple(d[rows, index] if p else d[index] for d, p in zip(data, per_replica,
                                                                   strict=True)), (0,) * len(data)


def fit_replicas(
    models: Sequence[nn.Module],
    loss_fn: Callable[..., torch.Tensor],
    data: Sequence[torch.Tensor] | Callable[[torch.Generator], Sequence[torch.Tensor]],
    *,
    generators: Sequence[torch.Generator],
    steps: int | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    optimizer: str = "sgd",
    lr: float | Sequence[float] = 0.1,
    momentum: float = 0.0,
    weight_decay: float | Sequence[float] = 0.0,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    per_replica: Sequence[bool] | None = None,
    loss_kwargs: Mapping[str, object] | None = None,
    replica_kwargs: Mapping[str, torch.Tensor] | None = None,
    after_backward: Callable[[dict[str, torch.Tensor]], None] | None = None,
    clip_grad_norm: float | None = None,
    callback: Callable[[Callable, int], Mapping[str, torch.Tensor] | None] | None = None,
    record_every: int | None = None,
    randomness: str = "error",
) -> History:
    r"""Train ``R`` models of one architecture side by side, as ``R`` runs of :func:`fit`.

    The parameters (and buffers) of the models are stacked along a new first dimension
    (:func:`torch.func.stack_module_state`) and one vectorised step
    (:func:`torch.func.vmap` of :func:`torch.func.functional_call`) computes every replica's
    loss on its own batch; the sum of the losses is back-propagated, so each replica receives
    exactly its own gradient. The optimisers are the elementwise updates of
    :class:`torch.optim.SGD` and :class:`torch.optim.Adam`, with one step size and weight
    decay per replica if wished, so replica :math:`r` follows the trajectory of
    ``fit(models[r], …, generator=generators[r])`` (equal up to the order of floating-point
    sums; the tests check it). Replicas that share a seed draw the same batches: a paired
    design across conditions. The trained parameters and buffers are written back into
    ``models``.

    Parameters
    ----------
    models
        ``R`` ≥ 1 modules with the same type, parameter and buffer shapes (e.g. one
        architecture built with ``R`` seeds). Modules whose forward has no batching rule
        under :func:`torch.func.vmap` (``nn.LSTM``, ``nn.RNN``) cannot be stacked: write the
        cell with ``nn.Linear`` layers.
    loss_fn
        As in :func:`fit`; its ``model`` argument is one replica's view (callable like the
        module, with ``parameters()`` and ``named_parameters()`` for penalties).
    data
        As in :func:`fit`; a batch-drawing function is called once per replica per step
        with that replica's generator.
    generators
        One ``torch.Generator`` per replica: its batch order or fresh batches.
    per_replica
        One flag per data tensor: ``True`` if it carries a leading replica dimension
        (e.g. each seed's own noisy labels), ``False`` (default) if shared.
    lr, weight_decay
        One value, or one per replica.
    momentum, betas, eps
        As in :class:`torch.optim.SGD` / :class:`torch.optim.Adam`.
    loss_kwargs
        Keyword arguments of ``loss_fn`` shared by all replicas.
    replica_kwargs
        Keyword arguments of ``loss_fn`` with one value per replica (tensors with a leading
        dimension ``R``), e.g. each replica's smoothing ε.
    after_backward
        ``after_backward(params)`` with the stacked parameters (name → tensor of shape
        ``(R, …)`` with ``.grad``), called before clipping and the step.
    clip_grad_norm
        If given, each replica's gradient norm is clipped to it separately.
    callback
        ``callback(model_fn, step) -> {name: tensor of shape (R,)}``, where ``model_fn(*inputs)``
        returns the stacked outputs ``(R, …)`` of all replicas on shared inputs; called under
        :func:`torch.no_grad` in eval mode at every record.
    randomness
        :func:`torch.func.vmap`'s ``randomness``: ``"error"`` (default), ``"different"`` or
        ``"same"`` for a ``loss_fn`` that draws random numbers (dropout); with random draws
        inside the loss the replicas no longer equal separate :func:`fit` runs.
    steps, epochs, batch_size, optimizer, record_every
        As in :func:`fit` (``optimizer`` is ``"sgd"`` or ``"adam"``).

    Returns
    -------
    History
        As from :func:`fit`, with one column per replica: arrays of shape ``(records, R)``.

    Raises
    ------
    ValueError
        For models that differ, a wrong number of generators or per-replica values, or as
        :func:`fit`.
    """
    models = list(models)
    _check_replicas(models)
    R = len(models)
    if len(generators) != R or not all(isinstance(g, torch.Generator) for g in generators):
        raise ValueError(f"generators must hold one torch.Generator per model ({R})")
    n = _data_rows(data) if callable(data) else _data_rows(
        [d[0] if p else d for d, p in zip(data, per_replica or [False] * len(data),
                                          strict=True)])
    per_replica = tuple(per_replica or (False,) * (0 if callable(data) else len(data)))
    for i, (d, p) in enumerate(zip([] if callable(data) else data, per_replica, strict=True)):
        if p and d.shape[0] != R:
            raise ValueError(f"data[{i}] is per replica: its first dimension must be {R}")
    total = _check_schedule(steps, epochs, data, batch_size, n)
    every = _record_every(record_every, epochs, total, batch_size, n)
    lrs = one_per_replica("lr", lr, R, check_positive)
    decays = one_per_replica("weight_decay", weight_decay, R, check_nonnegative)
    _check_optimizer_settings(momentum, clip_grad_norm)
    check_choice("optimizer", optimizer, ["sgd", "adam"])
    check_choice("randomness", randomness, ["error", "different", "same"])
    kwargs = dict(loss_kwargs or {})
    per_kwargs = {k: torch.as_tensor(v) for k, v in (replica_kwargs or {}).items()}
    for k, v in per_kwargs.items():
        if v.ndim == 0 or v.shape[0] != R:
            raise ValueError(f"replica_kwargs[{k!r}] must have a leading dimension of {R}")

    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")
    dtype = next(iter(params.values())).dtype if params else torch.float64
    lrs, decays = (torch.tensor(v, dtype=dtype) for v in (lrs, decays))
    state = {name: {} for name in params}

    def replica_loss(p, b, batch, kw):
        return torch.stack(_split_loss(loss_fn(_Replica(base, p, b), *batch, **kwargs, **kw)))

    def model_fn(*inputs):
        return vmap(lambda p, b: functional_call(base, (p, b), inputs))(params, buffers)

    iters = [] if callable(data) else [_batches(n, batch_size, g) for g in generators]
    history, total_loss, count = History(), torch.zeros(R, dtype=torch.float64), 0
    base.train()
    for step in range(1, total + 1):
        batch, dims = _stacked_batch(data, per_replica, generators, batch_size, iters)
        losses = vmap(replica_loss, in_dims=(0, 0, dims, 0), randomness=randomness)(
            params, buffers, batch, per_kwargs)
        for p in params.values():
            p.grad = None
        losses[:, 0].sum().backward()
        if after_backward is not None:
            after_backward(params)
        with torch.no_grad():
            if clip_grad_norm is not None:
                _clip_per_replica(params, clip_grad_norm)
            _replica_step(optimizer, params, state, step, lrs=lrs, decays=decays,
                          momentum=momentum, betas=betas, eps=eps)
        rows = _batch_rows(batch, dims)
        total_loss += losses[:, 1].detach().double() * rows
        count += rows
        if step % every == 0 or step == total:
            _take_record(history, step, total_loss / count, callback, base, model_fn)
            total_loss, count = torch.zeros(R, dtype=torch.float64), 0
    _write_back(models, params, buffers)
    return history


def run_in_threads(calls: Mapping[Any, Callable[[], Any]], *, threads: int = 2
                   ) -> dict[Any, Any]:
    r"""Run independent calls (such as :func:`fit_replicas` runs) up to ``threads`` at a time,
    each on its own thread; their results by key, in the order of ``calls``.

    PyTorch releases Python's global interpreter lock inside its kernels, so two training runs
    on two threads use two CPU cores: each operation still runs on one thread (the limit
    :func:`dlnotes.setup` sets), only independent runs overlap. The arithmetic of each run is
    unchanged, so its results are those of the same call made alone, provided that every call
    draws its random numbers from its own generators (``torch.Generator`` objects; dropout masks
    from :func:`dlnotes.dropout.dropout_generator`, as
    :func:`dlnotes.node_classification.train_node_tasks` does) and seeds nothing global. A call
    that draws from the global torch or NumPy generator would make the results depend on how the
    threads interleave; the state of both is compared before and after, and such a draw raises
    an error. (Code that saves, seeds and restores the global generator leaves no trace and must
    not run inside the calls: build the models first.) On one core nothing is gained.

    Parameters
    ----------
    calls
        Key → a function of no arguments (e.g. a ``functools.partial`` of a training
        function).
    threads
        How many calls run at the same time, an integer ≥ 1.

    Returns
    -------
    dict
        Key → the call's result.

    Raises
    ------
    ValueError
        If ``calls`` is empty or holds something that is not callable, or ``threads`` < 1.
    RuntimeError
        If the calls drew from the global torch or NumPy generator. An exception raised by a
        call is re-raised.
    """
    check_int_at_least("threads", threads, 1)
    if not isinstance(calls, Mapping) or not calls:
        raise ValueError("calls must be a non-empty mapping of key to function")
    for key, call in calls.items():
        if not callable(call):
            raise ValueError(f"calls[{key!r}] must be callable, got {type(call).__name__}")
    # the legacy global NumPy generator is read, never drawn from, here
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()  # noqa: NPY002
    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = {key: pool.submit(call) for key, call in calls.items()}
        results = {key: future.result() for key, future in futures.items()}
    after = np.random.get_state()  # noqa: NPY002
    if not torch.equal(torch.get_rng_state(), torch_state) or not (
            np.array_equal(after[1], numpy_state[1]) and after[2:] == numpy_state[2:]):
        raise RuntimeError("a call drew from the global torch or NumPy generator, so the "
                           "results could depend on how the threads interleaved; give every "
                           "call its own generators (dlnotes.dropout.dropout_generator for "
                           "dropout masks)")
    return results


def _batch_rows(batch, dims) -> int:
    if not batch or batch[0].ndim == 0:
        return 1
    return int(batch[0].shape[1] if dims[0] == 0 else batch[0].shape[0])


def _per_replica_views(values: torch.Tensor, tensors: Sequence[torch.Tensor]
                       ) -> list[torch.Tensor]:
    """``values`` ``(R,)`` reshaped to broadcast against each ``(R, …)`` tensor."""
    return [values.reshape(-1, *[1] * (t.ndim - 1)).to(t.dtype) for t in tensors]


def _clip_per_replica(params: dict[str, torch.Tensor], max_norm: float) -> None:
    """Clip each replica's gradient norm as :func:`torch.nn.utils.clip_grad_norm_` would."""
    grads = [p.grad for p in params.values() if p.grad is not None]
    norms = torch.stack([g.flatten(1).pow(2).sum(1) for g in grads]).sum(0).sqrt()
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    torch._foreach_mul_(grads, _per_replica_views(scale, grads))


def _replica_step(optimizer, params, state, step, *, lrs, decays, momentum, betas, eps):
    """One elementwise SGD or Adam update of every replica (torch.optim's formulas).

    The parameters are updated together with ``torch._foreach_*`` operations, which on the
    CPU apply the same elementwise arithmetic to each tensor as separate calls would (so the
    result is bit for bit that of a loop over the parameters) with less Python per step."""
    names = [name for name, p in params.items() if p.grad is not None]
    if not names:
        return
    ps = [params[name] for name in names]
    views = state.setdefault("_views", {})
    if tuple(names) not in views:  # the step sizes and decays shaped like each parameter
        views[tuple(names)] = (_per_replica_views(lrs, ps), _per_replica_views(decays, ps))
    lr_views, wd_views = views[tuple(names)]
    gs = torch._foreach_add([p.grad for p in ps], torch._foreach_mul(wd_views, ps))
    slots = [state[name] for name in names]
    if optimizer == "sgd":
        if momentum:
            fresh = [i for i, s in enumerate(slots) if "buf" not in s]
            for i in fresh:
                slots[i]["buf"] = gs[i].clone()
            old = [i for i in range(len(slots)) if i not in set(fresh)]
            if old:
                bufs = [slots[i]["buf"] for i in old]
                torch._foreach_mul_(bufs, momentum)
                torch._foreach_add_(bufs, [gs[i] for i in old])
            gs = [s["buf"] for s in slots]
        torch._foreach_sub_(ps, torch._foreach_mul(lr_views, gs))
        return
    beta1, beta2 = betas
    ms = [s.setdefault("m", torch.zeros_like(p)) for s, p in zip(slots, ps, strict=True)]
    vs = [s.setdefault("v", torch.zeros_like(p)) for s, p in zip(slots, ps, strict=True)]
    torch._foreach_mul_(ms, beta1)
    torch._foreach_add_(ms, gs, alpha=1 - beta1)
    torch._foreach_mul_(vs, beta2)
    torch._foreach_addcmul_(vs, gs, gs, value=1 - beta2)
    denoms = torch._foreach_sqrt(vs)
    torch._foreach_div_(denoms, math.sqrt(1 - beta2 ** step))
    torch._foreach_add_(denoms, eps)
    updates = torch._foreach_mul(torch._foreach_div(lr_views, 1 - beta1 ** step), ms)
    torch._foreach_div_(updates, denoms)
    torch._foreach_sub_(ps, updates)


def _write_back(models, params, buffers) -> None:
    with torch.no_grad():
        for r, model in enumerate(models):
            for name, tensor in model.named_parameters():
                tensor.copy_(params[name][r])
            for name, tensor in model.named_buffers():
                tensor.copy_(buffers[name][r])


def train_classifier(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    lr: float,
    batch_size: int = 64,
    weight_decay: float = 0.0,
    objective: Objective | None = None,
    seed: int = 0,
    on_epoch_end: Callable[[nn.Module], dict[str, float]] | None = None,
    max_steps: int | None = None,
) -> dict[str, list[float]]:
    """Mini-batch SGD on a classifier, through :func:`fit`; per-epoch metrics as lists.

    Parameters
    ----------
    model
        Maps a batch of ``X`` to logits.
    X, y
        Training features ``(n, d)`` and integer labels ``(n,)``.
    epochs, lr, batch_size, weight_decay
        Plain SGD hyper-parameters (``epochs`` ≥ 1, ``lr`` > 0, ``weight_decay`` ≥ 0).
    objective
        ``objective(model, X_batch, y_batch) -> (to_minimise, to_record)``; ``None`` means
        cross-entropy on the logits (:func:`loss_objective` wraps any loss of the logits).
    seed
        Seeds the mini-batch order (independent of the global torch state).
    on_epoch_end
        Optional ``callback(model) -> {name: value}`` recorded after each epoch.
    max_steps
        If given (≥ 1), training stops after this many steps, cutting the last epoch short.

    Returns
    -------
    dict
        ``"train_loss"`` (mean mini-batch loss of each epoch) and one list per callback key.
    """
    check_int_at_least("epochs", epochs, 1)
    check_same_rows("X", X, "y", y)
    check_int_at_least("batch_size", batch_size, 1)
    per_epoch = math.ceil(X.shape[0] / batch_size)
    steps = epochs * per_epoch
    if max_steps is not None:
        check_int_at_least("max_steps", max_steps, 1)
        steps = min(steps, max_steps)
    history = fit(model, objective or loss_objective(F.cross_entropy), (X, y), steps=steps,
                  batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                  generator=torch.Generator().manual_seed(seed), record_every=per_epoch,
                  callback=None if on_epoch_end is None else lambda m, _: on_epoch_end(m))
    out = {"train_loss": history.loss.tolist()}
    out |= {k: history[k].tolist() for k in history.keys() if k != "loss"}
    return out


def first_epoch_reaching(curve: Sequence[float], target: float) -> int | None:
    """The first epoch (counted from 1) at which ``curve`` reaches ``target``, else ``None``.

    Used in chapter 6 for "epochs until the test accuracy first reaches 0.9".
    """
    check_finite("target", target)
    return next((i + 1 for i, value in enumerate(curve) if value >= target), None)


def relu_activity(model: nn.Sequential, X: torch.Tensor) -> list[torch.Tensor]:
    """For each ``nn.ReLU`` in ``model``, the fraction of rows of ``X`` on which each unit fires.

    A unit whose fraction is 0 never activates on ``X`` (a "dead" unit): it passes no
    gradient to the weights feeding it. Returns one tensor of shape ``(width,)`` per ReLU.
    """
    fractions = []
    h = X
    with torch.no_grad():
        for layer in model:
            h = layer(h)
            if isinstance(layer, nn.ReLU):
                fractions.append((h > 0).float().mean(dim=0))
    return fractions


def permute_hidden_units(net: nn.Sequential, perm: torch.Tensor) -> nn.Sequential:
    """A copy of a one-hidden-layer ``Linear → activation → Linear`` net with its hidden
    units reordered by ``perm``.

    The function the network computes is unchanged (the units are only relabelled), but the
    parameter vector is a different point: the reason a network's loss surface has many
    equivalent minima and cannot be convex (chapter 1).

    Raises
    ------
    ValueError
        If ``net`` is not ``[Linear, activation, Linear]`` or ``perm`` is not a permutation
        of its hidden units.
    """
    if len(net) != 3 or not isinstance(net[0], nn.Linear) or not isinstance(net[2], nn.Linear):
        raise ValueError("net must be nn.Sequential(Linear, activation, Linear)")
    width = net[0].out_features
    if sorted(perm.tolist()) != list(range(width)):
        raise ValueError(f"perm must be a permutation of range({width})")
    out = copy.deepcopy(net)
    with torch.no_grad():
        out[0].weight.copy_(net[0].weight[perm])
        out[0].bias.copy_(net[0].bias[perm])
        out[2].weight.copy_(net[2].weight[:, perm])
    return out

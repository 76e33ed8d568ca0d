r"""Receptive fields of convolution stacks, and the sliding-window maximum.

Used in chapter 8, "How far a unit sees".

A stack of convolutions and poolings is described by its layers ``(kernel, stride)`` or
``(kernel, stride, dilation)`` from the input to the output. A pooling layer has the same
geometry as a convolution with the same kernel and stride, so it is described the same way.

* :func:`receptive_field` walks the stack from the top layer down, as the notes do,
  :math:`r_{n-1} = (r_n - 1)\,s_n + k'_n` with :math:`r_L = 1` and the effective kernel
  :math:`k' = d(k-1)+1` of a dilated layer; :func:`receptive_field_growth` walks it from the
  input up, :math:`r_l = r_{l-1} + (k'_l - 1)\,j_{l-1}`, :math:`j_l = j_{l-1} s_l`.
* :func:`conv_stack`, :func:`input_gradient` and :func:`support_extent` measure the field with
  autograd: the gradient of one output unit with respect to the input is non-zero only on the
  pixels the unit can see. :func:`erf_spread` and :func:`distance_to_gaussian` summarise the
  *effective* receptive field (Luo et al., 2016): how that gradient is distributed.
* :func:`sliding_window_max` is max pooling of stride 1 in O(n) with a monotone deque.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from dlnotes.validation import (
    check_choice,
    check_finite,
    check_int_at_least,
    check_int_in_range,
    check_min_length,
    check_ndim,
)

__all__ = [
    "Layer",
    "VGG16_POOL5",
    "ALEXNET_POOL5",
    "effective_kernel",
    "receptive_field",
    "receptive_field_growth",
    "conv_stack",
    "input_gradient",
    "support_extent",
    "erf_spread",
    "distance_to_gaussian",
    "sliding_window_max",
]

#: A layer, given as ``(kernel, stride)`` or ``(kernel, stride, dilation)``.
Layer = tuple[int, int] | tuple[int, int, int]

#: The layers of VGG-16 (Simonyan & Zisserman, 2015) up to pool5 — 3×3 convolutions of stride
#: 1 in blocks of 2, 2, 3, 3, 3, each block followed by a 2×2 max pool of stride 2.
VGG16_POOL5: tuple[Layer, ...] = tuple(
    layer
    for n_convs in (2, 2, 3, 3, 3)
    for layer in [(3, 1)] * n_convs + [(2, 2)]
)

#: The layers of AlexNet (Krizhevsky et al., 2012) up to pool5 — conv 11/4, pool 3/2, conv
#: 5/1, pool 3/2, three conv 3/1, pool 3/2.
ALEXNET_POOL5: tuple[Layer, ...] = (
    (11, 4), (3, 2), (5, 1), (3, 2), (3, 1), (3, 1), (3, 1), (3, 2),
)


def _parse_layers(layers: Sequence[Sequence[int]]) -> list[tuple[int, int, int]]:
    if isinstance(layers, str | bytes) or not isinstance(layers, Sequence):
        raise ValueError(f"layers must be a sequence of (kernel, stride[, dilation]) tuples, "
                         f"got {type(layers).__name__}")
    parsed = []
    for i, layer in enumerate(layers):
        if isinstance(layer, str | bytes) or not isinstance(layer, Sequence) or len(layer) not in (
            2, 3
        ):
            raise ValueError(f"layers[{i}] must be (kernel, stride) or (kernel, stride, "
                             f"dilation), got {layer!r}")
        kernel, stride, *rest = layer
        dilation = rest[0] if rest else 1
        check_int_at_least(f"layers[{i}] kernel", kernel, 1)
        check_int_at_least(f"layers[{i}] stride", stride, 1)
        check_int_at_least(f"layers[{i}] dilation", dilation, 1)
        parsed.append((int(kernel), int(stride), int(dilation)))
    return parsed


def effective_kernel(kernel: int, dilation: int = 1) -> int:
    r"""The span in input pixels of a kernel of ``kernel`` taps spaced ``dilation`` apart.

    .. math:: k' = d\,(k - 1) + 1

    Parameters
    ----------
    kernel
        Number of taps, ≥ 1.
    dilation
        Spacing of the taps, ≥ 1 (1 is an ordinary convolution).

    Returns
    -------
    int
        The effective kernel size :math:`k'`.

    Raises
    ------
    ValueError
        If ``kernel`` or ``dilation`` is not an integer ≥ 1.
    """
    check_int_at_least("kernel", kernel, 1)
    check_int_at_least("dilation", dilation, 1)
    return int(dilation) * (int(kernel) - 1) + 1


def receptive_field(layers: Sequence[Sequence[int]]) -> int:
    r"""Receptive field, in input pixels, of one unit of the last layer of a stack.

    Walks the stack from the top down, as in the notes: a unit of the last layer sees
    :math:`r_L = 1` unit of its own layer, and

    .. math:: r_{n-1} = (r_n - 1)\,s_n + k'_n, \qquad k'_n = d_n(k_n - 1) + 1,

    until :math:`r_0`, the number of input pixels along one axis that can influence the unit
    (the extent of its field; with dilation or strides larger than kernels, some pixels inside
    it have no path to the unit).

    Parameters
    ----------
    layers
        ``(kernel, stride)`` or ``(kernel, stride, dilation)`` per layer, from the input to
        the output; poolings count as layers. An empty stack gives 1.

    Returns
    -------
    int
        :math:`r_0`; e.g. 212 for :data:`VGG16_POOL5` and 195 for :data:`ALEXNET_POOL5`.

    Raises
    ------
    ValueError
        If a layer is not a tuple of 2 or 3 integers ≥ 1.
    """
    rf = 1
    for kernel, stride, dilation in reversed(_parse_layers(layers)):
        rf = (rf - 1) * stride + effective_kernel(kernel, dilation)
    return rf


def receptive_field_growth(layers: Sequence[Sequence[int]]) -> list[tuple[int, int]]:
    r"""Receptive field and jump (distance in input pixels between neighbouring units) after
    every layer, from the input up.

    .. math:: r_l = r_{l-1} + (k'_l - 1)\,j_{l-1}, \qquad j_l = j_{l-1}\,s_l, \qquad
              r_0 = j_0 = 1,

    so :math:`r_L = 1 + \sum_l (k'_l - 1)\prod_{i<l} s_i` (the closed form of the top-down
    recursion of :func:`receptive_field`).

    Parameters
    ----------
    layers
        As for :func:`receptive_field`.

    Returns
    -------
    list of (int, int)
        ``(r_l, j_l)`` for ``l = 0, …, L``; the first entry is ``(1, 1)``, the input itself.

    Raises
    ------
    ValueError
        As :func:`receptive_field`.
    """
    rf, jump = 1, 1
    growth = [(rf, jump)]
    for kernel, stride, dilation in _parse_layers(layers):
        rf += (effective_kernel(kernel, dilation) - 1) * jump
        jump *= stride
        growth.append((rf, jump))
    return growth


def conv_stack(
    layers: Sequence[Sequence[int]],
    *,
    channels: int = 1,
    dims: int = 2,
    weights: str = "normal",
    activation: str = "identity",
    seed: int = 0,
) -> nn.Sequential:
    """A float64 stack of convolutions with the geometry of ``layers`` and no padding.

    Every layer, poolings included, becomes a ``Conv1d``/``Conv2d`` with the layer's kernel,
    stride and dilation, no bias and no padding (so every output unit's field lies inside the
    input). The first layer has one input channel, the last one output channel.

    Parameters
    ----------
    layers
        As for :func:`receptive_field`; at least one layer.
    channels
        Channels between layers, ≥ 1.
    dims
        1 or 2 spatial dimensions.
    weights
        ``"normal"``: independent :math:`\\mathcal N(0, 1/\\text{fan-in})` weights;
        ``"uniform"``: every weight :math:`1/\\text{fan-in}` (each layer averages its window).
    activation
        ``"identity"`` (a linear network) or ``"relu"`` between layers.
    seed
        Seeds the weights (the global torch state is not touched).

    Returns
    -------
    torch.nn.Sequential
        The network, in float64.

    Raises
    ------
    ValueError
        If ``layers`` is empty or malformed, or another argument is out of range.
    """
    parsed = _parse_layers(layers)
    check_min_length("layers", parsed, 1, "layers")
    check_int_at_least("channels", channels, 1)
    check_choice("dims", dims, (1, 2))
    check_choice("weights", weights, ("normal", "uniform"))
    check_choice("activation", activation, ("identity", "relu"))
    check_int_at_least("seed", seed, 0)
    conv = nn.Conv1d if dims == 1 else nn.Conv2d
    gen = torch.Generator().manual_seed(seed)
    modules: list[nn.Module] = []
    for i, (kernel, stride, dilation) in enumerate(parsed):
        n_in = 1 if i == 0 else channels
        n_out = 1 if i == len(parsed) - 1 else channels
        layer = conv(n_in, n_out, kernel, stride=stride, dilation=dilation, bias=False,
                     dtype=torch.float64)
        fan_in = n_in * kernel**dims
        with torch.no_grad():
            if weights == "uniform":
                layer.weight.fill_(1.0 / fan_in)
            else:
                w = torch.randn(layer.weight.shape, generator=gen, dtype=torch.float64)
                layer.weight.copy_(w / math.sqrt(fan_in))
        modules.append(layer)
        if activation == "relu" and i < len(parsed) - 1:
            modules.append(nn.ReLU())
    return nn.Sequential(*modules)


def input_gradient(
    model: nn.Module, size: int, *, dims: int = 2, seed: int = 0
) -> np.ndarray:
    r"""Gradient of the centre output unit of ``model`` with respect to its input.

    The input is one float64 sample of shape ``(1, 1, size)`` or ``(1, 1, size, size)``
    drawn from :math:`\mathcal N(0, 1)`; the unit is channel 0 at the centre of the output
    map (index ``n // 2`` along each axis). For a linear network the gradient does not depend
    on the input.

    Parameters
    ----------
    model
        Maps ``(batch, 1, *spatial)`` to ``(batch, channels, *spatial)``.
    size
        Input length along each axis, ≥ 1.
    dims
        1 or 2 spatial dimensions.
    seed
        Seeds the input sample.

    Returns
    -------
    numpy.ndarray
        :math:`\partial y / \partial x` of shape ``(size,)`` or ``(size, size)``.

    Raises
    ------
    ValueError
        If ``size`` or ``dims`` is out of range or the output map is empty.
    """
    check_int_at_least("size", size, 1)
    check_choice("dims", dims, (1, 2))
    check_int_at_least("seed", seed, 0)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn((1, 1) + (size,) * dims, generator=gen, dtype=torch.float64)
    x.requires_grad_(True)
    try:
        out = model(x)
    except RuntimeError as err:  # torch refuses inputs shorter than a kernel's span
        raise ValueError(f"size={size} is too small for the model: {err}") from None
    if out.numel() == 0:
        raise ValueError(f"size={size} is too small: the output map of the model is empty")
    centre = tuple(n // 2 for n in out.shape[2:])
    (grad,) = torch.autograd.grad(out[(0, 0) + centre], x)
    return grad[0, 0].numpy()


def support_extent(grad: Any) -> tuple[int, ...]:
    """Extent, along each axis, of the non-zero entries of ``grad``.

    Along axis ``a`` this is ``last - first + 1`` over the indices whose slice holds a
    non-zero entry (0 if ``grad`` is zero everywhere). Zeros *inside* the extent (holes) do
    not shorten it; count them with ``np.count_nonzero``.

    Parameters
    ----------
    grad
        A finite array of any rank ≥ 1.

    Returns
    -------
    tuple of int
        One extent per axis.

    Raises
    ------
    ValueError
        If ``grad`` is 0-dimensional or not finite.
    """
    g = np.asarray(grad)
    if g.ndim < 1:
        raise ValueError("grad must have at least one dimension")
    check_finite("grad", g)
    nonzero = g != 0
    extents = []
    for axis in range(g.ndim):
        other = tuple(a for a in range(g.ndim) if a != axis)
        hit = np.flatnonzero(nonzero.any(axis=other) if other else nonzero)
        extents.append(int(hit[-1] - hit[0] + 1) if hit.size else 0)
    return tuple(extents)


def _profile(grad: Any) -> np.ndarray:
    g = np.abs(np.asarray(grad, dtype=np.float64))
    check_ndim("grad", g, (1, 2))
    check_finite("grad", g)
    profile = g.sum(axis=0) if g.ndim == 2 else g
    total = profile.sum()
    if not total > 0:
        raise ValueError("grad must have at least one non-zero entry")
    return profile / total


def erf_spread(grad: Any) -> float:
    r"""Standard deviation, in pixels, of the effective receptive field along the last axis.

    The magnitudes :math:`|g|` are summed over the other axis (for a 2-D map) and normalised
    to a distribution :math:`p_i` over the positions :math:`i`; the spread is
    :math:`\sqrt{\sum_i p_i (i - \bar\imath)^2}`.

    Parameters
    ----------
    grad
        A finite 1-D or 2-D gradient map with a non-zero entry.

    Returns
    -------
    float
        The spread in pixels.

    Raises
    ------
    ValueError
        If ``grad`` has another rank, is not finite or is zero everywhere.
    """
    p = _profile(grad)
    i = np.arange(p.size, dtype=np.float64)
    mean = float(p @ i)
    return float(math.sqrt(max(float(p @ (i - mean) ** 2), 0.0)))


def distance_to_gaussian(grad: Any) -> float:
    r"""Total-variation distance between the effective receptive field and a Gaussian.

    The profile :math:`p` of :func:`erf_spread` is compared with the Gaussian of the same mean
    and standard deviation, integrated over each pixel :math:`[i - 1/2, i + 1/2]` and
    renormalised: :math:`\tfrac12\sum_i |p_i - q_i|`, between 0 (identical) and 1.

    Parameters
    ----------
    grad
        A finite 1-D or 2-D gradient map whose profile has a non-zero spread.

    Returns
    -------
    float
        The distance.

    Raises
    ------
    ValueError
        As :func:`erf_spread`, or if the profile sits on a single pixel.
    """
    p = _profile(grad)
    i = np.arange(p.size, dtype=np.float64)
    mean = float(p @ i)
    sd = erf_spread(grad)
    if not sd > 0:
        raise ValueError("grad must be non-zero on more than one position")
    edges = (np.arange(p.size + 1) - 0.5 - mean) / (sd * math.sqrt(2.0))
    cdf = 0.5 * (1.0 + np.array([math.erf(e) for e in edges]))
    q = np.diff(cdf)
    q /= q.sum()
    return float(0.5 * np.abs(p - q).sum())


def sliding_window_max(values: Sequence[Any] | np.ndarray | torch.Tensor, k: int) -> list[Any]:
    r"""Maximum of every window of ``k`` consecutive values, the window moving one step at a
    time, in O(n) time.

    A deque holds the indices of the current window whose values are still candidates for a
    maximum, their values decreasing from front to back. Each new value pops the back
    while the back's value is not larger (those can never be a maximum again), then is
    pushed; the front is dropped once it leaves the window. Every index is pushed and popped
    at most once, so the work is at most :math:`2n` deque operations and fewer than
    :math:`2n` comparisons. The result equals ``torch.nn.functional.max_pool1d`` with kernel
    ``k`` and stride 1.

    Parameters
    ----------
    values
        A sequence, 1-D array or 1-D tensor of mutually comparable values (finite if numeric
        arrays); its elements are compared with ``<=`` directly.
    k
        Window length, ``1 ≤ k ≤ len(values)``.

    Returns
    -------
    list
        The ``len(values) - k + 1`` window maxima, as elements of ``values``.

    Raises
    ------
    ValueError
        If ``k`` is not an integer in ``[1, len(values)]`` or ``values`` is bad.
    """
    if isinstance(values, torch.Tensor | np.ndarray):
        check_ndim("values", values, 1)
        check_finite("values", values)
        items = values.tolist()
    else:
        items = list(values)
    check_min_length("values", items, 1, "values")
    check_int_in_range("k", k, 1, len(items))
    window: deque[int] = deque()
    maxima = []
    for i, value in enumerate(items):
        while window and items[window[-1]] <= value:
            window.pop()
        window.append(i)
        if window[0] <= i - k:
            window.popleft()
        if i >= k - 1:
            maxima.append(items[window[0]])
    return maxima

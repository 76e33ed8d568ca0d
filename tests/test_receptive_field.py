"""dlnotes.receptive_field against autograd, torch's pooling, published values and brute force."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from dlnotes.receptive_field import (
    ALEXNET_POOL5,
    VGG16_POOL5,
    conv_stack,
    distance_to_gaussian,
    effective_kernel,
    erf_spread,
    input_gradient,
    receptive_field,
    receptive_field_growth,
    sliding_window_max,
    support_extent,
)

layer_strategy = st.tuples(st.integers(1, 5), st.integers(1, 3), st.integers(1, 3))
stack_strategy = st.lists(layer_strategy, min_size=1, max_size=4)


def test_vgg16_and_alexnet_to_pool5_have_the_published_receptive_fields():
    # Araujo, Norris & Sim (2019), Distill, table of receptive fields: 212 and 195.
    assert receptive_field(VGG16_POOL5) == 212
    assert receptive_field(ALEXNET_POOL5) == 195


def test_single_layers_and_the_empty_stack():
    assert receptive_field([]) == 1
    assert receptive_field([(7, 2)]) == 7
    assert receptive_field([(3, 1, 4)]) == 9
    assert receptive_field([(3, 1)] * 5) == 11  # 2n + 1 for n 3x3 convolutions


@given(st.integers(1, 9), st.integers(1, 6))
@settings(max_examples=30, deadline=None)
def test_effective_kernel_is_the_span_of_a_dilated_torch_convolution(kernel, dilation):
    span = effective_kernel(kernel, dilation)
    conv = torch.nn.Conv1d(1, 1, kernel, dilation=dilation, bias=False)
    # the shortest input a dilated convolution accepts is its span
    assert conv(torch.zeros(1, 1, span)).shape[-1] == 1
    with pytest.raises(RuntimeError):
        conv(torch.zeros(1, 1, span - 1))


@given(stack_strategy)
@settings(max_examples=60, deadline=None)
def test_top_down_recursion_equals_the_bottom_up_closed_form(layers):
    growth = receptive_field_growth(layers)
    assert growth[0] == (1, 1)
    assert growth[-1][0] == receptive_field(layers)
    closed = 1 + sum((d * (k - 1)) * math.prod(s for _, s, _ in layers[:i])
                     for i, (k, _, d) in enumerate(layers))
    assert receptive_field(layers) == closed
    assert growth[-1][1] == math.prod(s for _, s, _ in layers)


@given(stack_strategy, st.integers(0, 10))
@settings(max_examples=40, deadline=None)
def test_autograd_support_of_a_random_conv_stack_spans_exactly_the_receptive_field(layers, seed):
    rf, jump = receptive_field_growth(layers)[-1]
    size = rf + 2 * jump  # room for three output units
    grad = input_gradient(conv_stack(layers, dims=1, seed=seed), size, dims=1)
    (extent,) = support_extent(grad)
    assert extent == rf
    nonzero = np.flatnonzero(grad)
    # the output has three units; the centre one sees input pixels jump … jump + rf - 1
    assert (nonzero[0], nonzero[-1]) == (jump, jump + rf - 1)
    assert np.count_nonzero(grad) <= rf


@pytest.mark.parametrize("layers", [VGG16_POOL5, ALEXNET_POOL5], ids=["vgg16", "alexnet"])
def test_autograd_support_of_the_2d_networks_with_two_channels_is_the_published_field(layers):
    rf, jump = receptive_field_growth(layers)[-1]
    grad = input_gradient(conv_stack(layers, channels=2, seed=1), rf + 2 * jump)
    assert support_extent(grad) == (rf, rf)


def test_dilated_stack_with_equal_dilations_leaves_holes_inside_its_field():
    # two 3-tap layers with dilation 2 reach 9 pixels but only the even offsets
    grad = input_gradient(conv_stack([(3, 1, 2), (3, 1, 2)], dims=1), 9, dims=1)
    assert support_extent(grad) == (9,)
    assert np.array_equal(np.flatnonzero(grad), np.arange(0, 9, 2))


def test_relu_network_support_never_exceeds_the_field():
    layers = [(3, 1), (2, 2), (3, 1)]
    rf = receptive_field(layers)
    for seed in range(5):
        model = conv_stack(layers, channels=3, activation="relu", seed=seed)
        grad = input_gradient(model, rf + 4, seed=seed)
        assert all(e <= rf for e in support_extent(grad))


def test_uniform_weights_give_the_n_fold_convolution_of_a_box():
    depth = 6
    grad = input_gradient(conv_stack([(3, 1)] * depth, dims=1, weights="uniform"),
                          2 * depth + 1, dims=1)
    box = np.ones(3) / 3
    expected = np.array([1.0])
    for _ in range(depth):
        expected = np.convolve(expected, box)
    assert np.allclose(grad, expected, atol=1e-15)
    # the variance of a sum of n uniform {-1, 0, 1} steps is 2n/3
    assert erf_spread(grad) == pytest.approx(math.sqrt(2 * depth / 3), rel=1e-12)


def test_erf_spread_and_gaussian_distance_of_known_profiles():
    assert erf_spread(np.array([0.0, 1.0, 0.0, 1.0])) == pytest.approx(1.0)
    assert erf_spread(np.array([[0.0, -2.0], [0.0, 0.0]])) == 0.0
    x = np.arange(-40, 41)
    gauss = np.exp(-0.5 * (x / 6.0) ** 2)
    assert erf_spread(gauss) == pytest.approx(6.0, rel=1e-3)
    assert distance_to_gaussian(gauss) < 0.005
    assert distance_to_gaussian(np.ones(41)) > 0.05  # a box is not a Gaussian


def test_erf_becomes_more_gaussian_with_depth():
    dists = [distance_to_gaussian(input_gradient(
        conv_stack([(3, 1)] * n, dims=1, weights="uniform"), 2 * n + 1, dims=1))
        for n in (2, 8, 32)]
    assert dists[0] > dists[1] > dists[2]


@given(st.lists(st.integers(-50, 50), min_size=1, max_size=40), st.data())
@settings(max_examples=80, deadline=None)
def test_sliding_window_max_equals_max_pool1d_with_stride_one(values, data):
    k = data.draw(st.integers(1, len(values)))
    x = torch.tensor(values, dtype=torch.float64)
    pooled = F.max_pool1d(x[None, None], k, stride=1)[0, 0]
    assert sliding_window_max(values, k) == pooled.tolist()
    assert sliding_window_max(x, k) == pooled.tolist()


def test_sliding_window_max_on_the_notes_example():
    assert sliding_window_max([1, 3, -1, -3, 5, 3, 6, 7], 3) == [3, 3, 5, 5, 6, 7]
    assert sliding_window_max([1], 1) == [1]


@given(st.lists(st.floats(-1e6, 1e6), min_size=3, max_size=30), st.data())
@settings(max_examples=40, deadline=None)
def test_two_stacked_windows_of_k_see_a_window_of_2k_minus_1(values, data):
    k = data.draw(st.integers(1, (len(values) + 1) // 2))
    twice = sliding_window_max(sliding_window_max(values, k), k)
    assert twice == sliding_window_max(values, receptive_field([(k, 1), (k, 1)]))


class Counted:
    """A number that counts how often it is compared."""

    comparisons = 0

    def __init__(self, v):
        self.v = v

    def __le__(self, other):
        Counted.comparisons += 1
        return self.v <= other.v


@pytest.mark.parametrize("order", ["increasing", "decreasing", "random"])
def test_sliding_window_max_makes_fewer_than_2n_comparisons(order):
    n, k = 2000, 50
    values = {"increasing": np.arange(n), "decreasing": np.arange(n)[::-1],
              "random": np.random.default_rng(0).permutation(n)}[order]
    Counted.comparisons = 0
    result = sliding_window_max([Counted(int(v)) for v in values], k)
    assert [c.v for c in result] == sliding_window_max(values.tolist(), k)
    assert Counted.comparisons < 2 * n  # brute force needs (n - k + 1)(k - 1) = 95,049


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: receptive_field([(3,)]), "layers\\[0\\]"),
        (lambda: receptive_field([(3, 1, 1, 1)]), "layers\\[0\\]"),
        (lambda: receptive_field([(3, 1), (0, 1)]), "layers\\[1\\] kernel"),
        (lambda: receptive_field([(3, 0)]), "stride"),
        (lambda: receptive_field([(3, 1, 0)]), "dilation"),
        (lambda: receptive_field([(2.5, 1)]), "kernel"),
        (lambda: receptive_field("33"), "layers"),
        (lambda: effective_kernel(0), "kernel"),
        (lambda: conv_stack([]), "layers must hold at least 1 layer"),
        (lambda: conv_stack([(3, 1)], channels=0), "channels"),
        (lambda: conv_stack([(3, 1)], dims=3), "dims"),
        (lambda: conv_stack([(3, 1)], weights="ones"), "weights"),
        (lambda: conv_stack([(3, 1)], activation="tanh"), "activation"),
        (lambda: input_gradient(conv_stack([(5, 1)]), 3), "too small"),
        (lambda: input_gradient(conv_stack([(5, 1)]), 0), "size"),
        (lambda: support_extent(np.float64(1.0)), "grad"),
        (lambda: support_extent(np.array([1.0, np.nan])), "grad"),
        (lambda: erf_spread(np.zeros(5)), "non-zero"),
        (lambda: erf_spread(np.zeros((2, 2, 2))), "grad"),
        (lambda: distance_to_gaussian(np.array([0.0, 1.0, 0.0])), "more than one"),
        (lambda: sliding_window_max([1, 2, 3], 0), "k"),
        (lambda: sliding_window_max([1, 2, 3], 4), r"k must be an integer in \[1, 3\]"),
        (lambda: sliding_window_max([], 1), "values must hold at least 1 value"),
        (lambda: sliding_window_max([1, 2], 1.0), "k"),
        (lambda: sliding_window_max(np.zeros((2, 2)), 1), "values"),
        (lambda: sliding_window_max(torch.tensor([1.0, float("nan")]), 1), "values"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_bad_input_raises_value_error_naming_the_problem(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()

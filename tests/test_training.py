"""dlnotes.training: MLPs, mini-batches, the training loop and its objective hook."""

import pytest
import torch
import torch.nn.functional as F

from dlnotes.training import (
    accuracy,
    first_epoch_reaching,
    loss_objective,
    minibatches,
    mlp,
    permute_hidden_units,
    relu_activity,
    train_classifier,
)


def test_minibatches_cover_every_index_once():
    idx = torch.cat(list(minibatches(10, 3, torch.Generator().manual_seed(0))))
    assert sorted(idx.tolist()) == list(range(10))


def test_mlp_with_bias_init_and_relu_activity():
    net = mlp([4, 8, 3], bias_init=-100.0)
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    assert all(float(m.bias.detach().unique()) == -100.0 for m in linears)
    (active,) = relu_activity(net, torch.randn(50, 4))
    assert active.shape == (8,) and float(active.max()) == 0.0
    with pytest.raises(ValueError, match="sizes"):
        mlp([4])


def test_mlp_seed_gives_the_same_network_and_leaves_the_global_generator_alone():
    torch.manual_seed(0)
    a = mlp([4, 8, 3], seed=5)
    after_a = torch.randn(3)
    torch.manual_seed(0)
    b = mlp([4, 8, 3], seed=5)
    after_b = torch.randn(3)
    c = mlp([4, 8, 3], seed=6)
    for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters(), strict=True):
        assert torch.equal(pa, pb) and not torch.equal(pa, pc)
    torch.manual_seed(0)
    assert torch.equal(after_a, after_b) and torch.equal(after_a, torch.randn(3))
    with pytest.raises(ValueError, match="seed"):
        mlp([4, 3], seed=-1)


def test_train_classifier_learns_a_separable_problem():
    X = torch.randn(200, 2)
    y = (X[:, 0] + X[:, 1] > 0).long()
    net = mlp([2, 16, 2], seed=0)
    hist = train_classifier(net, X, y, epochs=20, lr=0.5,
                            on_epoch_end=lambda m: {"acc": accuracy(m(X), y)})
    assert hist["train_loss"][-1] < hist["train_loss"][0]
    assert hist["acc"][-1] > 0.95


def test_permuting_hidden_units_keeps_the_function_but_moves_the_parameters():
    net = mlp([5, 7, 3])
    perm = torch.tensor([6, 0, 1, 2, 3, 4, 5])
    other = permute_hidden_units(net, perm)
    x = torch.randn(10, 5)
    assert torch.allclose(net(x), other(x), atol=1e-6)
    assert not torch.equal(net[0].weight, other[0].weight)
    with pytest.raises(ValueError, match="perm"):
        permute_hidden_units(net, torch.tensor([0, 0, 1, 2, 3, 4, 5]))


def test_train_classifier_minimises_the_objective_and_records_its_second_value():
    X = torch.randn(64, 3)
    y = (X[:, 0] > 0).long()
    calls = []

    def penalised(model):
        penalty = 10.0 * sum(p.pow(2).sum() for p in model.parameters())
        return F.cross_entropy(model(X), y) + penalty, penalty

    def objective(model, xb, yb):
        loss = F.cross_entropy(model(xb), yb)
        calls.append(len(xb))
        return loss + 10.0 * sum(p.pow(2).sum() for p in model.parameters()), loss

    net = mlp([3, 4, 2], seed=0)
    with torch.no_grad():
        before, penalty_before = penalised(net)
    hist = train_classifier(net, X, y, epochs=3, lr=0.01, batch_size=16, objective=objective)
    with torch.no_grad():
        after, penalty_after = penalised(net)
    assert calls == [16] * 12
    assert after < before and penalty_after < penalty_before  # the objective was minimised
    assert max(hist["train_loss"]) < 2.0  # the recorded value excludes the large penalty


def test_loss_objective_is_the_default_cross_entropy():
    X, y = torch.randn(32, 3), torch.randint(0, 2, (32,))
    a, b = mlp([3, 2], seed=1), mlp([3, 2], seed=1)
    default = train_classifier(a, X, y, epochs=2, lr=0.1, seed=3)
    wrapped = train_classifier(b, X, y, epochs=2, lr=0.1, seed=3,
                               objective=loss_objective(F.cross_entropy))
    assert default["train_loss"] == wrapped["train_loss"]


def test_train_classifier_rejects_mismatched_rows():
    with pytest.raises(ValueError, match="same number of rows"):
        train_classifier(mlp([3, 2]), torch.randn(5, 3), torch.zeros(4, dtype=torch.long),
                         epochs=1, lr=0.1)


def test_max_steps_stops_training_after_that_many_optimiser_steps():
    X, y = torch.randn(50, 3), torch.randint(0, 2, (50,))
    calls = []

    def objective(model, xb, yb):
        calls.append(len(xb))
        loss = F.cross_entropy(model(xb), yb)
        return loss, loss

    hist = train_classifier(mlp([3, 2], seed=0), X, y, epochs=10, lr=0.1, batch_size=8,
                            objective=objective, max_steps=9)
    assert len(calls) == 9 and len(hist["train_loss"]) == 2  # 7 steps, then 2 more
    with pytest.raises(ValueError, match="max_steps"):
        train_classifier(mlp([3, 2]), X, y, epochs=1, lr=0.1, max_steps=0)


def test_first_epoch_reaching_counts_from_one_and_returns_none_if_never():
    assert first_epoch_reaching([0.2, 0.85, 0.91, 0.95], 0.9) == 3
    assert first_epoch_reaching([0.2, 0.5], 0.9) is None
    assert first_epoch_reaching([0.9], 0.9) == 1

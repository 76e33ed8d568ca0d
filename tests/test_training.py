"""dlnotes.training: MLPs, mini-batches, the training loop and its objective hook."""

from functools import partial

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dlnotes.training import (
    History,
    accuracy,
    first_epoch_reaching,
    fit,
    fit_replicas,
    minibatches,
    mlp,
    permute_hidden_units,
    relu_activity,
    run_in_threads,
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


# ------------------------------------------------------------------ fit and fit_replicas
def _reference_sgd(model, X, y, *, steps, batch_size, lr, weight_decay, seed):
    """A hand-written SGD loop: the independent reference for fit."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, weight_decay=weight_decay)
    gen, losses = torch.Generator().manual_seed(seed), []
    while len(losses) < steps:
        for idx in torch.randperm(len(X), generator=gen).split(batch_size):
            if len(losses) == steps:
                break
            opt.zero_grad()
            loss = F.cross_entropy(model(X[idx]), y[idx])
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
    return losses


def _xent(model, xb, yb):
    return F.cross_entropy(model(xb), yb)


def _problem(n=60, d=5, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    return X, (X[:, 0] + X[:, 1] > 0).long() + (X[:, 2] > 1).long()


def test_fit_follows_a_hand_written_sgd_loop_step_by_step():
    X, y = _problem()
    a, b = mlp([5, 8, 3], seed=1).double(), mlp([5, 8, 3], seed=1).double()
    expected = _reference_sgd(a, X, y, steps=17, batch_size=16, lr=0.3, weight_decay=0.01,
                              seed=4)
    hist = fit(b, _xent, (X, y), steps=17, batch_size=16, lr=0.3, weight_decay=0.01,
               generator=torch.Generator().manual_seed(4), record_every=1)
    assert hist.step == list(range(1, 18))
    assert np.allclose(hist.loss, expected, rtol=0, atol=1e-12)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.allclose(pa, pb, rtol=0, atol=1e-12)


def test_fit_records_epochs_callbacks_and_a_second_recorded_value():
    X, y = _problem()
    seen = []

    def callback(model, step):
        seen.append((model.training, torch.is_grad_enabled()))
        return {"acc": accuracy(model(X), y)}

    hist = fit(mlp([5, 8, 3], seed=0).double(),
               lambda m, xb, yb: (_xent(m, xb, yb) + 100.0, _xent(m, xb, yb)), (X, y),
               epochs=3, batch_size=25, lr=0.5, callback=callback)
    assert hist.step == [3, 6, 9] and hist["acc"].shape == (3,)
    assert seen == [(False, False)] * 3
    assert float(hist.loss.max()) < 5.0  # the recorded value excludes the +100


def test_fit_draws_fresh_batches_from_a_function_of_the_generator():
    w = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)

    def draw(gen):
        x = torch.randn(32, 3, generator=gen, dtype=torch.float64)
        return x, x @ w

    model = torch.nn.Linear(3, 1, bias=False).double()
    hist = fit(model, lambda m, xb, yb: (m(xb)[:, 0] - yb).pow(2).mean(), draw, steps=200,
               optimizer="adam", lr=0.05, record_every=50)
    assert hist.step == [50, 100, 150, 200] and hist.loss[-1] < 1e-3 * hist.loss[0]
    assert torch.allclose(model.weight[0], w, atol=1e-2)


def test_train_classifier_is_fit_with_per_epoch_lists():
    X, y = _problem()
    a, b = mlp([5, 8, 3], seed=2).double(), mlp([5, 8, 3], seed=2).double()
    expected = _reference_sgd(a, X, y, steps=12, batch_size=20, lr=0.2, weight_decay=0.0,
                              seed=3)
    hist = train_classifier(b, X, y, epochs=4, lr=0.2, batch_size=20, seed=3)
    per_epoch = np.asarray(expected).reshape(4, 3).mean(1)  # equal batches: a plain mean
    assert np.allclose(hist["train_loss"], per_epoch, atol=1e-12)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_replicas_side_by_side_equal_separate_fit_runs(optimizer):
    X, y = _problem()
    seeds, lrs, decays = [0, 1, 2, 1], [0.3, 0.1, 0.2, 0.05], [0.0, 0.01, 0.0, 0.1]
    kwargs = dict(steps=23, batch_size=16, optimizer=optimizer, record_every=5,
                  clip_grad_norm=2.0)
    if optimizer == "sgd":
        kwargs["momentum"] = 0.9
    singles = [mlp([5, 8, 3], seed=s).double() for s in seeds]
    stacked = [mlp([5, 8, 3], seed=s).double() for s in seeds]
    callback = lambda m, step: {"logit0": m(X)[..., 0, 0]}  # noqa: E731
    separate = [fit(m, _xent, (X, y), lr=lr, weight_decay=wd, callback=callback,
                    generator=torch.Generator().manual_seed(s), **kwargs)
                for m, s, lr, wd in zip(singles, seeds, lrs, decays, strict=True)]
    together = fit_replicas(stacked, _xent, (X, y), lr=lrs, weight_decay=decays,
                            callback=callback,
                            generators=[torch.Generator().manual_seed(s) for s in seeds],
                            **kwargs)
    assert together.step == separate[0].step == [5, 10, 15, 20, 23]
    for r, hist in enumerate(separate):
        assert np.allclose(together.loss[:, r], hist.loss, rtol=0, atol=1e-10)
        assert np.allclose(together["logit0"][:, r], hist["logit0"], rtol=0, atol=1e-10)
        for pa, pb in zip(singles[r].parameters(), stacked[r].parameters(), strict=True):
            assert torch.allclose(pa, pb, rtol=0, atol=1e-10)


def test_replicas_with_per_replica_data_kwargs_buffers_and_fresh_batches():
    X, y = _problem(n=40)
    Y = torch.stack([y, (y + 1) % 3, y])  # each replica its own labels
    temps = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)

    def net(seed):
        torch.manual_seed(seed)
        return torch.nn.Sequential(torch.nn.Linear(5, 6), torch.nn.BatchNorm1d(6),
                                   torch.nn.ReLU(), torch.nn.Linear(6, 3)).double()

    def loss(m, xb, yb, *, temperature):
        return F.cross_entropy(m(xb) / temperature, yb)

    singles, stacked = [net(s) for s in range(3)], [net(s) for s in range(3)]
    for r in range(3):
        fit(singles[r], loss, (X, Y[r]), steps=9, batch_size=8, lr=0.1,
            loss_kwargs={"temperature": temps[r]}, generator=torch.Generator().manual_seed(r))
    fit_replicas(stacked, loss, (X, Y), per_replica=[False, True], steps=9, batch_size=8,
                 lr=0.1, replica_kwargs={"temperature": temps},
                 generators=[torch.Generator().manual_seed(r) for r in range(3)])
    for a, b in zip(singles, stacked, strict=True):
        for (name, ta), tb in zip(a.state_dict().items(), b.state_dict().values(),
                                  strict=True):
            assert torch.allclose(ta.double(), tb.double(), atol=1e-10), name

    def draw(gen):
        x = torch.randn(16, 5, generator=gen, dtype=torch.float64)
        return x, (x[:, 0] > 0).long()

    one, two = mlp([5, 3], seed=0).double(), [mlp([5, 3], seed=0).double()]
    fit(one, _xent, draw, steps=5, lr=0.5, generator=torch.Generator().manual_seed(7))
    fit_replicas(two, _xent, draw, steps=5, lr=0.5,
                 generators=[torch.Generator().manual_seed(7)])
    assert torch.allclose(one[0].weight, two[0][0].weight, atol=1e-12)


def test_full_batch_replicas_share_the_data_unstacked_and_keep_the_stored_order():
    X, y = _problem(n=30)
    singles, stacked = [mlp([5, 4, 3], seed=s).double() for s in (0, 1)], [
        mlp([5, 4, 3], seed=s).double() for s in (0, 1)]
    for m in singles:
        fit(m, _xent, (X, y), steps=15, lr=0.4)
    hist = fit_replicas(stacked, _xent, (X, y), steps=15, lr=0.4,
                        generators=[torch.Generator(), torch.Generator()])
    assert hist.loss.shape == (1, 2)
    for a, b in zip(singles, stacked, strict=True):
        assert torch.allclose(a[2].weight, b[2].weight, atol=1e-12)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda X, y: fit(mlp([5, 3]), _xent, (X, y)), "exactly one of steps and epochs"),
        (lambda X, y: fit(mlp([5, 3]), _xent, (X, y[:5]), steps=1), "same number of rows"),
        (lambda X, y: fit(mlp([5, 3]), _xent, (X, y), steps=1, optimizer="rmsprop"),
         "optimizer"),
        (lambda X, y: fit(mlp([5, 3]), _xent, (X, y), steps=1, lr=-1.0), "lr"),
        (lambda X, y: fit(mlp([5, 3]), _xent, lambda g: (X, y), epochs=1), "epochs"),
        (lambda X, y: fit_replicas([mlp([5, 3]), mlp([5, 4])], _xent, (X, y), steps=1,
                                   generators=[torch.Generator()] * 2), r"models\[1\]"),
        (lambda X, y: fit_replicas([mlp([5, 3])] * 2, _xent, (X, y), steps=1,
                                   generators=[torch.Generator()]), "generators"),
        (lambda X, y: fit_replicas([mlp([5, 3])] * 2, _xent, (X, y), steps=1, lr=[0.1] * 3,
                                   generators=[torch.Generator()] * 2), "lr"),
    ],
    ids=["no-schedule", "rows", "optimizer", "lr", "epochs-with-function", "models-differ",
         "generators", "lr-per-replica"],
)
def test_fit_rejects_bad_input_naming_the_argument(call, match):
    X, y = _problem()
    with pytest.raises(ValueError, match=match):
        call(X.float(), y)


def test_fit_replicas_rejects_tied_parameters():
    net = mlp([3, 3, 3], seed=0)
    net[2].weight = net[0].weight  # one parameter under two names
    with pytest.raises(ValueError, match="tied"):
        fit_replicas([net, net], lambda m, x: m(x).sum(), (torch.ones(2, 3),),
                     generators=[torch.Generator(), torch.Generator()], steps=1)


def test_run_in_threads_returns_each_call_s_result_by_key_in_order():
    X = torch.randn(64, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y = (X[:, 0] > 0).long()

    def run(seed, model):  # the model is built first: mlp(seed=...) seeds the global generator
        history = fit(model, lambda m, a, b: F.cross_entropy(m(a), b), (X, y), epochs=3,
                      batch_size=16, lr=0.1, generator=torch.Generator().manual_seed(seed))
        return history.loss

    # the threads keep the calling thread's limit on torch's threads (dlnotes.setup sets 1)
    assert run_in_threads({"n": torch.get_num_threads})["n"] == torch.get_num_threads()
    alone = {seed: run(seed, mlp([3, 8, 2], seed=seed).double()) for seed in (4, 2, 7)}
    threaded = run_in_threads({seed: partial(run, seed, mlp([3, 8, 2], seed=seed).double())
                               for seed in (4, 2, 7)}, threads=2)
    assert list(threaded) == [4, 2, 7]
    for seed, loss in alone.items():
        np.testing.assert_array_equal(threaded[seed], loss)


def test_run_in_threads_refuses_draws_from_a_global_generator_and_passes_errors_on():
    with pytest.raises(RuntimeError, match="global"):
        run_in_threads({"a": lambda: torch.rand(3), "b": lambda: 1})
    with pytest.raises(RuntimeError, match="global"):
        run_in_threads({"a": lambda: np.random.rand(3)})  # noqa: NPY002
    assert run_in_threads({"a": lambda: torch.rand(3, generator=torch.Generator())},
                          threads=1)["a"].shape == (3,)

    def fails():
        raise KeyError("inside the call")

    with pytest.raises(KeyError, match="inside the call"):
        run_in_threads({"a": fails, "b": lambda: 2})


@pytest.mark.parametrize(("calls", "threads", "message"), [
    ({}, 2, "calls"), ([lambda: 1], 2, "calls"), ({"a": 3}, 2, "callable"),
    ({"a": lambda: 1}, 0, "threads"),
], ids=["empty", "not-a-mapping", "not-callable", "no-threads"])
def test_run_in_threads_rejects_bad_arguments(calls, threads, message):
    with pytest.raises(ValueError, match=message):
        run_in_threads(calls, threads=threads)


def test_histories_side_by_side_join_the_replica_columns_of_each_record():
    parts = []
    for columns in ([1.0, 2.0], [3.0]):
        part = History()
        part.record(5, {"loss": np.array(columns), "acc": np.array(columns) / 10})
        part.record(10, {"loss": np.array(columns) + 1, "acc": np.array(columns)})
        parts.append(part)
    joined = History.side_by_side(parts)
    assert joined.step == [5, 10]
    np.testing.assert_array_equal(joined.loss, [[1, 2, 3], [2, 3, 4]])
    np.testing.assert_array_equal(joined["acc"], [[0.1, 0.2, 0.3], [1, 2, 3]])
    late = History()
    late.record(6, {"loss": np.array([0.0]), "acc": np.array([0.0])})
    with pytest.raises(ValueError, match="same steps"):
        History.side_by_side([parts[0], late])
    with pytest.raises(ValueError, match="parts"):
        History.side_by_side([])

"""dlnotes.setup: seeds, one thread, deterministic algorithms, the figure style, freed memory
kept for reuse; and random draws that do not depend on the CPU's vendor."""

import platform
import subprocess
import sys

import matplotlib as mpl
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from threadpoolctl import threadpool_info
from torch.func import vmap
from torch.utils._python_dispatch import TorchDispatchMode

import dlnotes
from dlnotes.dropout import dropout_mlp
from dlnotes.node_classification import GraphClassifier, GraphTask, train_node_tasks
from dlnotes.plotting import PALETTE
from dlnotes.self_supervised import set_dropout
from dlnotes.transformer import Encoder


def test_setup_makes_torch_numpy_and_generator_draws_repeat():
    # setup also seeds NumPy's legacy global state, which some libraries still read.
    first = (dlnotes.setup(3).normal(size=3), np.random.rand(2), torch.randn(2))  # noqa: NPY002
    second = (dlnotes.setup(3).normal(size=3), np.random.rand(2), torch.randn(2))  # noqa: NPY002
    for a, b in zip(first, second, strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_setup_limits_torch_and_blas_to_one_thread_deterministic_and_applies_style():
    dlnotes.setup(0)
    assert torch.get_num_threads() == 1
    assert torch.are_deterministic_algorithms_enabled()
    blas = [p for p in threadpool_info() if p["user_api"] == "blas"]
    assert blas and all(p["num_threads"] == 1 for p in blas)
    assert mpl.rcParams["axes.prop_cycle"].by_key()["color"][0] == PALETTE[0]


@pytest.mark.parametrize("bad", [-1, 1.5, "0"])
def test_setup_rejects_a_bad_seed(bad):
    with pytest.raises(ValueError, match="seed"):
        dlnotes.setup(bad)


def test_setup_does_not_load_the_compiler_stack():
    # The deterministic flag is set without importing torch._inductor (about 0.8 s per kernel).
    probe = ("import sys, torch, dlnotes; dlnotes.setup(seed=0); "
             "print(torch.are_deterministic_algorithms_enabled(), "
             "'torch._inductor.config' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.split() == ["True", "False"]


# A 24 MiB tensor made and freed in a fresh process. glibc's default serves it with mmap (its
# threshold starts at 128 KiB) and unmaps it on free, so the next one is faulted in and
# zero-filled again; kept, it comes from the heap and its memory stays there, free for reuse.
MEMORY_PROBE = """
import ctypes, sys, torch
import dlnotes
from dlnotes.reproducibility import keep_freed_memory
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks",
                "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "setup":
    dlnotes.setup(seed=0)
elif sys.argv[1] == "keep":
    assert keep_freed_memory()
size = 24 * 2**20
before = libc.mallinfo2()
x = torch.ones(size // 8, dtype=torch.float64)
mapped = libc.mallinfo2().hblkhd - before.hblkhd >= size
del x
kept = libc.mallinfo2().fordblks - before.fordblks >= size // 2
print(mapped, kept)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="mallopt is glibc's")
def test_setup_keeps_freed_memory_in_the_heap_instead_of_unmapping_it():
    result = {mode: subprocess.run([sys.executable, "-c", MEMORY_PROBE, mode],
                                   capture_output=True, text=True, check=True,
                                   timeout=120).stdout.split()
              for mode in ("default", "keep", "setup")}
    assert result["default"] == ["True", "False"]  # the positive control: mapped, then unmapped
    assert result["keep"] == result["setup"] == ["False", "True"]


def test_keep_freed_memory_changes_nothing_where_there_is_no_glibc(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    assert dlnotes.reproducibility.keep_freed_memory() is False


# bernoulli_ with a scalar probability (what nn.Dropout and F.dropout call) draws from MKL's
# generator on Intel CPUs and from torch's own on AMD and ARM: the same seed gives different
# masks, so a notebook that trains with it stores outputs that another CPU cannot reproduce.
VENDOR_DEPENDENT = {"aten.bernoulli_.float", "aten.bernoulli.p", "aten.native_dropout.default"}


class _RecordOps(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.add(str(func))
        return func(*args, **(kwargs or {}))


def _ops_of(fn):
    with _RecordOps() as record:
        fn()
    return record.ops


def test_the_recorder_sees_torch_dropout_draw_bernoulli():
    x = torch.ones(4, 6, dtype=torch.float64)
    assert _ops_of(lambda: torch.nn.Dropout(0.5)(x)) & VENDOR_DEPENDENT
    assert _ops_of(lambda: vmap(lambda a: F.dropout(a, 0.5), randomness="different")(x)) \
        & VENDOR_DEPENDENT


def _graph_models():
    graph = torch.randn(6, 5, dtype=torch.float64), (torch.rand(6, 6) < 0.5).double()
    A = ((graph[1] + graph[1].T) > 0).double().fill_diagonal_(0)
    for kind, heads in (("gcn", 1), ("gat", 2), ("mlp", 1)):
        model = GraphClassifier(kind, 5, 4, 3, heads=heads, dropout=0.5, seed=0).double()
        yield model, graph[0], model.operator(A)


def test_package_dropout_draws_the_same_masks_on_every_cpu():
    tokens = torch.randint(0, 9, (2, 5))
    encoder = Encoder(9, 8, 2, 16, 2, max_len=5, dropout=0.3, seed=0).double()
    mlm = set_dropout(Encoder(9, 8, 2, 16, 1, max_len=5, seed=0).double(), 0.2)
    runs = [lambda: encoder(tokens), lambda: mlm(tokens),
            lambda: dropout_mlp([5, 4, 3], 0.5, input_p=0.2)(torch.randn(3, 5))]
    for model, X, op in _graph_models():
        runs.append(lambda model=model, X=X, op=op: model(X, op).sum().backward())
    for run in runs:
        torch.manual_seed(0)
        ops = _ops_of(run)
        assert any(op.startswith("aten.rand.") for op in ops)  # dropout ran
        assert not ops & VENDOR_DEPENDENT, ops & VENDOR_DEPENDENT


def test_side_by_side_training_with_dropout_draws_no_bernoulli():
    models = [GraphClassifier("gat", 5, 4, 3, heads=2, dropout=0.5, seed=s).double()
              for s in range(2)]
    X = torch.randn(6, 5, dtype=torch.float64)
    A = torch.ones(6, 6, dtype=torch.float64).fill_diagonal_(0)
    tasks = [GraphTask(m, {"train": (X, A)}) for m in models]
    y, mask = torch.zeros(2, 6, dtype=torch.long), torch.ones(2, 6, dtype=torch.bool)
    ops = _ops_of(lambda: train_node_tasks(tasks, y, mask, epochs=2))
    assert not ops & VENDOR_DEPENDENT, ops & VENDOR_DEPENDENT

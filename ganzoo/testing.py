"""Conformance checks for ganzoo plugins, as a pytest plugin: is a model a correct ganzoo citizen?

In a plugin's own tests, two lines::

    from ganzoo.testing import conformance

    TestMyGAN = conformance("mygan")

or, without a test file, ``python -m pytest --ganzoo-conformance mygan``.
Every check is its own test item, parametrised by model (and shape, and loss), and says what to
fix when it fails. ganzoo registers this module with pytest (the ``pytest11`` entry point); it
does nothing unless a test uses it, and it imports torch only inside the checks.
"""

from __future__ import annotations

import dataclasses
import math
import os
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

__all__ = ["ConformanceSuite", "conformance", "write_tiny_dataset"]

SHAPES: tuple[tuple[int, int, int], ...] = ((1, 28, 28), (3, 32, 32))
CLASSES = 10


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("ganzoo")
    group.addoption("--ganzoo-conformance", action="append", default=[], metavar="MODEL",
                    help="check these models with ganzoo's conformance suite (repeatable)")


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: Any, parser: Any, args: list[str]) -> None:
    """``pytest --ganzoo-conformance NAME`` typed with no test file of ganzoo's collects the suite:
    this module's path is added to the arguments (a path, not ``--pyargs``, so the user's other
    arguments keep their meaning). The option given through ``addopts`` adds nothing, so a bare
    ``pytest`` still collects the project's own tests; name the suite there yourself."""
    typed = [str(a) for a in early_config.invocation_params.args]
    if not any(a.startswith("--ganzoo-conformance") for a in typed):
        return
    here = Path(__file__).resolve()
    for arg in typed:
        target = arg.split("::", 1)[0]
        if target == __name__ or (target.endswith(".py") and Path(target).resolve() == here):
            return  # the suite (or one of its checks) is already named
    args.append(str(here))


# --- helpers the checks share -----------------------------------------------------------------------

def build(model: str, shape: tuple[int, int, int]) -> Any:
    """The model for ``shape``, with 10 classes when it is class-conditional."""
    import ganzoo
    from ganzoo.errors import ConfigError

    with _fail_with(f"build(options, *, image_shape, num_classes=None) must build the model for image_shape {shape} "
                    "at its default options (check other shapes with conformance(..., shapes=[...]))"):
        try:
            return ganzoo.create_model(model, image_shape=shape)
        except ConfigError as plain:
            try:  # a class-conditional model refuses to be built without classes, in words of its own
                return ganzoo.create_model(model, image_shape=shape, num_classes=CLASSES)
            except ConfigError as conditional:
                if str(conditional) == str(plain):
                    raise plain from None
                raise ConfigError(f"{model!r} could not be built for image_shape {shape}: without classes, "
                                  f"{plain}; with {CLASSES} classes, {conditional}") from None


def labels_for(gan: Any, n: int) -> Any:
    import torch

    return torch.arange(n) % gan.generator.num_classes if gan.generator.num_classes else None


def write_tiny_dataset(root: Path, n: int = 64, size: int = 28) -> Path:
    """A Fashion-MNIST-shaped dataset in torchvision's layout (train and test IDX files): class k
    is a bright bar at row 2k + 4 on noise, so a classifier can learn it in a few steps."""
    import random
    import struct

    rng = random.Random(0)
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, count in (("train", n), ("t10k", max(n // 2, 10))):
        images, labels = bytearray(), bytearray()
        for i in range(count):
            img = bytearray(rng.randrange(0, 40) for _ in range(size * size))
            for col in range(4, size - 4):
                img[(2 * (i % 10) + 4) * size + col] = 255
            images += img
            labels.append(i % 10)
        for name, data, dims in ((f"{prefix}-images-idx3-ubyte", images, (count, size, size)),
                                 (f"{prefix}-labels-idx1-ubyte", labels, (count,))):
            (raw / name).write_bytes(bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)
                                     + bytes(data))
    return root


def compatible_losses(gan: Any) -> tuple[list[str], dict[str, str]]:
    """(losses that can train ``gan``, {loss: its reason for refusing})."""
    import ganzoo
    from ganzoo.assembly import refusal

    ok: list[str] = []
    refused: dict[str, str] = {}
    for name in ganzoo.list_losses():
        reason = refusal(gan, name, ganzoo.create_loss(name))
        if reason:
            refused[name] = reason
        else:
            ok.append(name)
    return ok, refused


@contextmanager
def _fail_with(advice: str) -> Iterator[None]:
    """A failed check, or an error the plugin's code raised inside it, as a failure that says what to
    fix (an error keeps its traceback, chained, to point at the plugin's line)."""
    try:
        yield
    except AssertionError as exc:
        if "\n\nWhat to fix: " in str(exc):  # an inner check's advice is the more precise
            raise
        frames = traceback.extract_tb(exc.__traceback__)
        if frames and Path(frames[-1].filename).resolve() == Path(__file__).resolve():  # a check of this suite
            raise AssertionError(f"{exc}\n\nWhat to fix: {advice}") from None
        raise AssertionError(f"an assert of the model's own failed: {exc}\n\nWhat to fix: {advice}") from exc
    except Exception as exc:
        raise AssertionError(f"{type(exc).__name__}: {exc}\n\nWhat to fix: {advice}") from exc


def rebound_state(parts: dict[str, Any], step: Callable[[], Any]) -> list[str]:
    """The tensor attributes of ``parts`` (objects, or modules with their submodules; parameters and
    buffers aside) that calling ``step()`` rebinds to other tensors, by name.

    State kept so is invisible to a replayed CUDA graph, which reads and writes the tensors the
    capture saw. An attribute ``NAME`` beside a parameter ``NAME_orig`` (PyTorch's older spectral
    and weight norm, recomputed from it on every call) is not state.
    """
    import torch

    def tensors() -> dict[str, Any]:
        found = {}
        for label, part in parts.items():
            objects = part.named_modules() if isinstance(part, torch.nn.Module) else [("", part)]
            for name, obj in objects:
                derived = {p.removesuffix("_orig") for p in getattr(obj, "_parameters", {}) if p.endswith("_orig")}
                for attr, value in vars(obj).items():
                    if isinstance(value, torch.Tensor) and attr not in derived:
                        found[".".join(x for x in (label, name, attr) if x)] = value
        return found

    before = tensors()
    step()
    after = tensors()
    return sorted(k for k in before.keys() | after.keys() if before.get(k) is not after.get(k))


_READS_BACK = "reads a value back to the host (.item(), `if tensor:`, int(t), float(t))"
_DATA_SHAPED = "makes a tensor whose shape depends on the data"
_WHY = {"_local_scalar_dense": _READS_BACK, "equal": "torch.equal reads its answer back to the host",
        "allclose": "torch.allclose reads its answer back to the host",
        "bincount": "bincount reads the largest value back to the host to size its output",
        "nonzero": _DATA_SHAPED + " (nonzero)", "masked_select": _DATA_SHAPED + " (masked_select)",
        "_unique2": _DATA_SHAPED + " (unique)", "unique_dim": _DATA_SHAPED + " (unique)",
        "unique_consecutive": _DATA_SHAPED + " (unique_consecutive)"}
_RANDOM_FACTORIES = {"rand", "randn", "randint", "randperm", "normal"}
_FACTORIES = {"empty", "empty_strided", "zeros", "ones", "full", "arange", "linspace", "logspace", "eye", "tensor",
              "as_tensor", "scalar_tensor"}
_TO_HOST = {"TensorBase.cpu", "TensorBase.tolist", "TensorBase.numpy", "TensorBase.to"}
_PY_RANDOM = ("random", "uniform", "randint", "randrange", "choice", "choices", "sample", "shuffle", "gauss",
              "normalvariate", "betavariate", "expovariate", "triangular")
_NUMPY_RANDOM = ("random", "rand", "randn", "randint", "uniform", "normal", "choice", "permutation", "shuffle",
                 "binomial", "beta", "exponential")


def _place(frames: Sequence[Any]) -> str:
    """Where in the code, from ``frames`` (outermost first): the innermost frame outside PyTorch and
    this module, and, when that one lies in an installed library, the innermost outside any."""
    import torch

    torch_dir, here = Path(torch.__file__).resolve().parent, Path(__file__).resolve()
    ours = [f for f in reversed(frames) if Path(f.filename).resolve() != here
            and not Path(f.filename).resolve().is_relative_to(torch_dir)]
    if not ours:
        return "(no Python frame outside PyTorch)"

    def show(f: Any) -> str:
        return f"{f.filename}:{f.lineno} in {f.name}" + (f": {f.line}" if f.line else "")

    installed = [("site-packages" in f.filename or "dist-packages" in f.filename) for f in ours]
    if installed[0]:
        caller = next((f for f, lib in zip(ours, installed) if not lib), None)
        if caller is not None:
            return f"{show(ours[0])} (called from {show(caller)})"
    return show(ours[0])


def host_reads(step: Callable[[], Any]) -> list[str]:
    """What calling ``step()`` does that a CUDA graph cannot capture or would freeze, one line each
    with the place in the code, in the order first seen:

    - a value read back to the host: ``.item()``, ``if tensor:``, ``int(t)``, ``float(t)``,
      ``torch.equal``, ``torch.allclose``, ``bincount``, and copies to the host (``.cpu()``,
      ``.tolist()``, ``.numpy()``, ``.to("cpu")`` with the name);
    - a tensor whose shape depends on the data: ``nonzero``, a boolean mask as an index (assigning
      a scalar through one is fine: it becomes ``masked_fill_``), ``masked_select``, ``unique``,
      ``repeat_interleave`` without ``output_size``;
    - a tensor built or drawn without a device (``torch.rand(())``, ``torch.zeros(n)``; a constant
      scalar such as ``torch.tensor(0.5)`` is fine): on a GPU it is made on the host, outside the
      graph, so every replay reuses what the capture made;
    - Python data copied to the device (``torch.tensor([...], device=...)``, ``x.new_tensor(...)``),
      and a tensor assigned through a boolean mask (on a GPU: indexed by ``nonzero``);
    - a draw with a ``torch.Generator`` of its own (a graph replays the default generator's), or
      from the functions of Python's ``random`` or ``numpy.random`` (``random.random()``, say).

    It runs ``step`` once, on the CPU as well as anywhere else. A call PyTorch makes itself is not
    counted, except a read back. ``F.one_hot`` with ``num_classes`` is fine (it checks its input
    on the CPU only). What it cannot see: Python state other than tensors (:func:`rebound_state`
    lists tensor attributes a step rebinds), and what happens inside a library's C code.
    """
    import random

    import torch
    from torch.overrides import TorchFunctionMode
    from torch.utils._python_dispatch import TorchDispatchMode

    torch_dir = Path(torch.__file__).resolve().parent
    found: dict[str, None] = {}
    quiet = [0]  # inside a call whose reads on the CPU a GPU does not make

    def note(what: str) -> None:
        found.setdefault(f"{what}, at {_place(traceback.extract_stack())}")

    in_torch: dict[str, bool | None] = {}  # a file: in PyTorch, in this module (None), elsewhere

    def called_by_torch() -> bool:  # (walks frames without reading source lines: it runs on every call)
        frame = sys._getframe(1)
        while frame is not None:
            if frame.f_code.co_name == "__torch_function__":  # another mode's (make_fx's), not a caller
                frame = frame.f_back
                continue
            name = frame.f_code.co_filename
            if name not in in_torch:
                path = Path(name).resolve()
                in_torch[name] = None if path == Path(__file__).resolve() else path.is_relative_to(torch_dir)
            if in_torch[name] is not None:
                return bool(in_torch[name])
            frame = frame.f_back
        return False

    def is_cpu(value: Any) -> bool:  # a torch.device may be some tensor's .device: cuda on a GPU
        return isinstance(value, str) and torch.device(value).type == "cpu"

    class Watch(TorchDispatchMode):
        def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None) -> Any:
            kwargs = kwargs or {}
            name = func.overloadpacket.__name__
            if name in _WHY and not (quiet[0] and name == "_local_scalar_dense"):
                note(_WHY[name])
            elif name in ("index", "index_put", "index_put_", "_index_put_impl_") and len(args) > 1 and any(
                    isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8)
                    for i in args[1] if i is not None):
                value = args[2] if name != "index" and len(args) > 2 else None
                if not (isinstance(value, torch.Tensor) and value.dim() == 0):  # a scalar fill is masked_fill_
                    note(_DATA_SHAPED + " (a boolean mask as an index)")
            elif str(func) == "aten.repeat_interleave.Tensor" and kwargs.get("output_size") is None:
                note(_DATA_SHAPED + " (repeat_interleave with tensor repeats and no output_size)")
            return func(*args, **kwargs)

    class WatchCalls(TorchFunctionMode):  # what a call was given is only seen before PyTorch fills in defaults
        def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None) -> Any:
            kwargs = kwargs or {}
            name, qualname = getattr(func, "__name__", None), getattr(func, "__qualname__", "")
            if name == "one_hot" and (kwargs.get("num_classes", args[1] if len(args) > 1 else -1) or -1) > 0:
                quiet[0] += 1
                try:
                    return func(*args, **kwargs)
                finally:
                    quiet[0] -= 1
            if called_by_torch():
                return func(*args, **kwargs)
            is_torch = getattr(func, "__module__", None) == "torch"
            if qualname in _TO_HOST and (qualname != "TensorBase.to" or any(
                    is_cpu(a) for a in (*args[1:], kwargs.get("device")))):
                note(f"copies a tensor to the host (.{name}()): on a GPU it waits for the device, and a "
                     "capture refuses it")
            elif qualname == "TensorBase.new_tensor" or (is_torch and name in ("tensor", "as_tensor") and args
                                                           and not isinstance(args[0], torch.Tensor)
                                                           and kwargs.get("device") is not None):
                call = "x.new_tensor" if name == "new_tensor" else f"torch.{name}"
                note(f"copies Python data to the device ({call}): a capture refuses the copy, or replays it from "
                     "memory freed since; use a Python number, torch.full((), c, device=...), x.new_full(...), or a "
                     "buffer made in __init__")
            elif qualname == "TensorBase.__setitem__" and len(args) > 2 and isinstance(args[2], torch.Tensor) and any(
                    isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8)
                    for i in (args[1] if isinstance(args[1], tuple) else (args[1],))):
                note(_DATA_SHAPED + " (a tensor assigned through a boolean mask: on a GPU it is indexed by nonzero; "
                     "assign a Python number, or use torch.where)")
            elif kwargs.get("generator") is not None:
                note(f"draws with a generator of its own ({'torch.' if is_torch else 'x.'}{name}(generator=...)): a "
                     "CUDA graph replays only the default generator's draws")
            elif is_torch and (name in _RANDOM_FACTORIES or name in _FACTORIES) and kwargs.get("device") is None \
                    and torch.get_default_device().type == "cpu" \
                    and not any(isinstance(a, torch.Tensor) for a in (*args, *kwargs.values())):
                out = func(*args, **kwargs)
                if name in _RANDOM_FACTORIES or out.dim() > 0:  # a constant CPU scalar is captured as one
                    what = "draws random numbers" if name in _RANDOM_FACTORIES else "builds a tensor"
                    note(f"{what} without a device (torch.{name}): on a GPU it is made on the host, outside the "
                         "graph, so every replay reuses what the capture made (pass device=, or use *_like / "
                         "x.new_*)")
                return out
            return func(*args, **kwargs)

    patched: list[tuple[Any, str, Any]] = []

    def watch_module(module: Any, modname: str, label: str, names: Sequence[str]) -> None:
        for attr in names:
            original = getattr(module, attr, None)
            if original is None:
                continue

            def draw(*a: Any, _original: Any = original, _attr: str = attr, **k: Any) -> Any:
                note(f"draws from {label} ({modname}.{_attr}): a replayed graph repeats the capture's draw "
                     "(draw on the device with torch)")
                return _original(*a, **k)

            patched.append((module, attr, original))
            setattr(module, attr, draw)

    watch_module(random, "random", "Python's random module", _PY_RANDOM)
    if "numpy" in sys.modules:
        watch_module(sys.modules["numpy"].random, "numpy.random", "NumPy's random module", _NUMPY_RANDOM)
    try:
        with WatchCalls(), Watch():
            step()
    finally:
        for module, attr, original in reversed(patched):
            setattr(module, attr, original)
    return list(found)


def _declared(model: str) -> tuple[Any, str]:
    """(gan, a loss that can train it and declares cuda_graphs), for a model that declares
    cuda_graphs; else the test skips, saying why."""
    import torch

    torch.manual_seed(0)
    gan = build(model, SHAPES[0])
    if not gan.cuda_graphs:
        pytest.skip(f"{model} does not declare cuda_graphs=True")
    losses = capturable_losses(gan)
    if not losses:
        pytest.skip(f"no loss that declares cuda_graphs can train {model} (test_cuda_graph_promise says so on a GPU)")
    return gan, losses[0]


def _cpu_step(gan: Any, loss: str) -> Any:
    """StepModules for ``gan`` on the CPU, with SGD (no optimizer state) and an EMA."""
    import torch

    return _step_modules(gan, loss, lambda params: torch.optim.SGD(params, lr=1e-3), device_type="cpu")


def cuda_graph_cpu_findings(model: str, loss: str | None = None) -> dict[str, list[str]]:
    """The three checks of the CUDA-graph promise a CPU can run, on ``model`` at its default options
    as if it declared the promise (SGD, 8 images of 1x28x28, ``loss`` or a loss that can train it):
    what each found, empty where it passed. ``reads_back``: :func:`host_reads` of a step;
    ``rebinds``: :func:`rebound_state` of the model and loss over a step; ``replay``: the failure of
    :func:`check_cuda_graph_step` on the CPU."""
    import torch

    from ganzoo.step import train_step

    torch.manual_seed(0)
    gan = build(model, SHAPES[0])
    if loss is None:
        losses = compatible_losses(gan)[0]
        loss = "nonsaturating" if "nonsaturating" in losses else losses[0]
    m, y = _cpu_step(gan, loss), labels_for(gan, 8)
    batches = [(torch.rand(8, *SHAPES[0]) * 2 - 1, gan.generator.sample_latent(8)) for _ in range(3)]
    train_step(m, batches[0][0], y, batches[0][1], step=0)  # lazily made state is made before the watch
    found: dict[str, list[str]] = {
        "reads_back": host_reads(lambda: train_step(m, batches[1][0], y, batches[1][1], step=1)),
        "rebinds": rebound_state({"model": gan, "loss": m.loss},
                                 lambda: train_step(m, batches[2][0], y, batches[2][1], step=2)),
        "replay": []}
    replay = build(model, SHAPES[0])
    replay.cuda_graphs = True
    try:
        check_cuda_graph_step(replay, loss, device="cpu")
    except AssertionError as exc:
        found["replay"].append(str(exc).split("\n\nWhat to fix")[0])
    return found


def capturable_losses(gan: Any) -> list[str]:
    """The losses that can train ``gan`` and declare ``cuda_graphs = True``."""
    import ganzoo

    return [name for name in compatible_losses(gan)[0] if ganzoo.create_loss(name).cuda_graphs]


def _step_modules(gan: Any, loss: str, optimizer: Any, device_type: str = "cuda", **kwargs: Any) -> Any:
    """What a step needs, for ``gan`` as it is, with an EMA of G (decay 0.999)."""
    import copy

    import ganzoo
    from ganzoo.step import StepModules

    return StepModules(gan=gan, G=gan.generator, D=gan.discriminator, D_frozen=gan.discriminator,
                       loss=ganzoo.create_loss(loss), opt_g=optimizer(gan.generator.parameters()),
                       opt_d=optimizer(gan.discriminator.parameters()), device_type=device_type,
                       ema=copy.deepcopy(gan.generator).requires_grad_(False), ema_decay=0.999, **kwargs)


def trace_capture(fn: Callable[[], dict[str, Any]]) -> tuple[Callable[[], None], dict[str, Any]]:
    """A CPU stand-in for :func:`ganzoo.graphs.cuda_capture`: records the tensor operations ``fn``
    runs (``torch.fx``'s ``make_fx``) and replays the record, which, like a CUDA graph, repeats
    every decision made in Python while recording and works on the tensors the recording saw.

    Recording runs ``fn`` once (a CUDA capture runs nothing). What a capture would refuse or freeze
    (:func:`host_reads`: a value read back, a tensor made off the device, a draw from Python's
    random) fails the recording with an AssertionError that names the line.
    """
    import torch
    from torch.fx.experimental.proxy_tensor import make_fx
    from torch.overrides import TorchFunctionMode

    from ganzoo.graphs import first_line

    class OneHotOnDevice(TorchFunctionMode):
        """``F.one_hot(t, K)`` as a comparison: its CPU kernel checks the labels with a read back,
        which a recording refuses, and which its CUDA kernel does not make."""

        def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None) -> Any:
            kwargs = kwargs or {}
            if getattr(func, "__name__", None) == "one_hot":
                classes = kwargs.get("num_classes", args[1] if len(args) > 1 else -1)
                if classes > 0:
                    return (args[0].unsqueeze(-1) == torch.arange(classes, device=args[0].device)).long()
            return func(*args, **kwargs)

    def with_one_hot_on_device() -> dict[str, Any]:
        with OneHotOnDevice():
            return fn()

    recorded: list[Any] = []
    try:
        found = host_reads(lambda: recorded.append(make_fx(with_one_hot_on_device)()))
    except RuntimeError as exc:
        if "_local_scalar_dense" in str(exc) or "data-dependent" in str(exc):
            raise AssertionError(f"the step {_READS_BACK}, which a CUDA capture refuses, at "
                                 f"{_place(traceback.extract_tb(exc.__traceback__))}") from None
        raise AssertionError(
            "torch.fx's make_fx, which stands in for a CUDA graph on the CPU, could not record the step "
            f"({type(exc).__name__}: {first_line(exc)}). If the step is right and make_fx is at fault, deselect "
            "this check (-k 'not replays_as_eagerly_on_cpu') and rely on test_cuda_graph_promise on a GPU") from exc
    if found:
        raise AssertionError("the step does what a CUDA graph cannot capture: " + "; ".join(found))
    record, outputs = recorded[0], {}

    def replay() -> None:
        with torch.no_grad():  # the record holds the backward pass as operations of its own
            for name, value in record().items():
                outputs.setdefault(name, torch.empty_like(value)).copy_(value)

    return replay, outputs


def check_cuda_graph_step(gan: Any, loss: str, n: int = 8, *, device: str = "cuda",
                          regularizers: Sequence[tuple[str, Any]] = (),
                          augmentations: Sequence[tuple[str, Any]] = ()) -> None:
    """Capture ``gan``'s training step with ``loss`` (and the ``(name, object)`` regularizers and
    augmentations given) in CUDA graphs (:class:`ganzoo.graphs.GraphedStep`) and replay it: a
    replayed step must change the weights, buffers and EMA as the same step run eagerly does (fp32,
    SGD, the same seed; within 1% of each tensor's change, which TF32 convolutions and atomic
    reductions leave room for), and bf16 steps must replay without NaN.

    With ``device="cpu"``, :func:`trace_capture` stands in for the CUDA capture (fp32 only), and a
    replay must match the eager step to 1e-5 of each tensor's change (the same kernels run): it
    finds a step whose replay would repeat a decision or a value that the eager step changes.
    """
    import torch

    from ganzoo.graphs import GraphedStep, cuda_capture
    from ganzoo.step import train_step

    advice = ("a step that declares cuda_graphs=True must be capturable: no .item() or `if tensor:` (no value "
              "read back to the host), no tensor built on the CPU inside forward, no shape that depends on the "
              "data, no decision made from a Python counter or Python's random module, and state kept in buffers "
              "updated in place (a Python attribute rebound in forward keeps its capture-time value when the "
              "graph is replayed)")
    on_gpu = torch.device(device).type == "cuda"
    reseed = torch.cuda.manual_seed if on_gpu else torch.manual_seed
    tolerance = 1e-2 if on_gpu else 1e-5
    capture = cuda_capture if on_gpu else trace_capture
    torch.manual_seed(0)
    gan = gan.to(device).train()
    shape = gan.image_shape
    m = _step_modules(gan, loss, lambda params: torch.optim.SGD(params, lr=0.05), device_type=torch.device(device).type,
                      regularizers=list(regularizers), augmentations=list(augmentations))
    y = labels_for(gan, n)
    y = y.to(device) if y is not None else None
    batches = [(torch.rand(n, *shape, device=device) * 2 - 1, gan.generator.sample_latent(n, device=device))
               for _ in range(3)]
    # steps 0, L, 2L, where L is a multiple of every lazy regularizer's period: one kind of step
    # (all of them due), so one graph, warmed up, captured, and replayed twice
    period = math.lcm(1, *(reg.every for _, reg in m.regularizers))
    graphed = GraphedStep(m, warmup=1, capture=capture)
    with _fail_with(advice):
        for i, (real, z) in enumerate(batches[:2]):  # an eager warm-up, then the capture and its first replay
            graphed(real, y, z, step=i * period)
        tensors = [t for module in (gan, m.ema) for t in [*module.parameters(), *module.buffers()]
                   if t.is_floating_point()]
        before = [t.detach().clone() for t in tensors]
        # the graph's second replay (its capture replayed once): state that a step rebinds instead
        # of updating in place is read from where it was at the capture, and stays behind here
        real, z = batches[2]
        assert graphed.key(real, y, update_g=True, step=2 * period) in graphed.graphs, "the step was not captured"
        reseed(5)
        graphed(real, y, z, step=2 * period)
        replayed = [t.detach().clone() for t in tensors]
        with torch.no_grad():
            for t, saved in zip(tensors, before):
                t.copy_(saved)
        reseed(5)
        train_step(m, real, y, z, step=2 * period)  # the EMA reads the decay the replay was given
        if on_gpu:
            torch.cuda.synchronize()
    names = [prefix + name for module, prefix in ((gan, ""), (m.ema, "ema.")) for name, t in
             [*module.named_parameters(), *module.named_buffers()] if t.is_floating_point()]
    moved = [name for name, a, b in zip(names, replayed, before) if not torch.equal(a, b)]
    differ = [name for name, a, b, e in zip(names, replayed, before, tensors)
              if float((a - e.detach()).norm()) > tolerance * float((e.detach() - b).norm()) + 1e-6]
    with _fail_with(advice):
        assert moved, "a replayed step changed no weight"
        assert not differ, (f"a replayed step and the same step run eagerly changed these differently: {differ[:6]}"
                            + (f" (and {len(differ) - 6} more)" if len(differ) > 6 else ""))
    if not on_gpu:
        return
    m16 = _step_modules(gan, loss, lambda params: torch.optim.Adam(params, lr=2e-4, betas=(0.5, 0.999)),
                        dtype=torch.bfloat16, regularizers=list(regularizers), augmentations=list(augmentations))
    graphed = GraphedStep(m16, warmup=1)
    with _fail_with(advice + "; under bf16 autocast too"):
        outs = [graphed(real, y, z, step=i * period) for i, (real, z) in enumerate(batches)]
        bad = {k: float(v) for out in outs for k, v in out.items() if not torch.isfinite(v).all()}
        assert not bad, f"bf16 steps replayed from a graph gave non-finite values: {bad}"


def _train(model: str, root: Path, out: Path, **kwargs: Any) -> Any:
    import ganzoo

    gan = build(model, SHAPES[0])
    losses, _ = compatible_losses(gan)
    from ganzoo.registry import get_registry

    default = get_registry().default("loss")
    if not losses:
        pytest.fail(f"model {model!r} trains with no registered loss: check the names in its GAN's trains_with attribute "
                    f"against `ganzoo list` (losses: {', '.join(ganzoo.list_losses())})", pytrace=False)
    loss = default if default in losses else losses[0]
    return ganzoo.train(model, recipe="none", data_dir=root, loss=loss, batch_size=16, seed=3, out=out,
                        overrides={"train.precision": "fp32", "train.device": "cpu", "train.early_grids": 0},
                        **kwargs)


def _layout(t: Any) -> str | None:
    import torch

    if t.dim() != 4:
        return None
    c, cl = t.is_contiguous(), t.is_contiguous(memory_format=torch.channels_last)
    return "C" if c and not cl else "L" if cl and not c else None


def _check_known(models: Sequence[str]) -> None:
    """A model name that is not registered (a typo, or a plugin not installed in this environment)
    fails the collection once, with the nearest names, instead of every check with a traceback."""
    import ganzoo
    from ganzoo.errors import GanzooError
    from ganzoo.registry import get_registry

    failures = get_registry().failures
    for model in models:
        refused = [f for f in failures if f.registration == ("model", model)]
        try:
            spec = ganzoo.get_model_spec(model)
        except GanzooError as exc:
            problem = str(exc)
        else:
            if refused:  # two plugins register the name: which one is meant, the checks cannot tell
                pytest.fail(f"ganzoo conformance: model {model!r} is registered by plugin {spec.plugin!r}, and "
                            "a second registration of the name failed: " + "; ".join(map(str, refused)) + ". The "
                            "checks cannot tell which model you mean: uninstall one of the plugins or rename the "
                            "model.", pytrace=False)
            continue
        if refused:  # the plugin is there, but its registration was refused: say why, first
            pytest.fail("ganzoo conformance: model " + repr(model) + " was not registered: " +
                        "; ".join(str(f) for f in refused), pytrace=False)
        failed = "".join(f"\n  {f}" for f in failures)
        pytest.fail(f"ganzoo conformance: {problem} Is the plugin that registers it installed in this "
                    "environment?" + (f" These plugins failed to load or register:{failed}" if failed else ""),
                    pytrace=False)


# --- the suite --------------------------------------------------------------------------------------

class ConformanceSuite:
    """The checks; :func:`conformance` makes a subclass for the models to check."""

    models: Sequence[str] = ()
    shapes: Sequence[tuple[int, int, int]] = SHAPES

    def pytest_generate_tests(self, metafunc: Any) -> None:
        models = list(self.models) or list(metafunc.config.getoption("ganzoo_conformance", default=[]) or [])
        if "model" in metafunc.fixturenames:
            if not models:  # every check would be skipped, and a CI would go green having checked nothing
                pytest.fail("ganzoo conformance: no model named. Name them in the test file, "
                            "TestMyGan = conformance('mygan'), or on the command line, --ganzoo-conformance mygan",
                            pytrace=False)
            _check_known(models)
            metafunc.parametrize("model", models)
        if "shape" in metafunc.fixturenames:
            metafunc.parametrize("shape", list(self.shapes), ids=lambda s: "x".join(map(str, s)))
        if "loss" in metafunc.fixturenames:
            import ganzoo

            metafunc.parametrize("loss", ganzoo.list_losses())

    @pytest.fixture
    def tiny_data(self, tmp_path_factory: Any) -> Path:
        return write_tiny_dataset(tmp_path_factory.mktemp("ganzoo-conformance-data"))

    def test_registration_metadata(self, model: str) -> None:
        import ganzoo
        from ganzoo.options import check_defaults
        from ganzoo.registry import get_registry

        spec = ganzoo.get_model_spec(model)
        with _fail_with("register(name, build, options=AFrozenDataclass, description='one line saying what it is')"):
            assert spec.description.strip(), f"model {model!r} has no description"
            assert dataclasses.is_dataclass(spec.options), f"model {model!r}: options= is not a dataclass"
            assert spec.options.__dataclass_params__.frozen, f"model {model!r}: its options dataclass is not frozen"
            check_defaults(spec.options)  # a default for every option, of a type a config can give back unchanged
            assert spec.plugin in get_registry().plugins.infos, f"model {model!r} comes from no loaded plugin"

    def test_builds_and_shapes(self, model: str, shape: tuple[int, int, int]) -> None:
        import torch

        from ganzoo.interfaces import GAN, Discriminator, Generator, as_output

        torch.manual_seed(0)
        gan = build(model, shape)
        with _fail_with("build(options, *, image_shape, num_classes) must return ganzoo.interfaces.GAN(G, D) whose "
                        "G maps [N, latent_dim] noise to [N, C, H, W] float images in [-1, 1] and whose D returns "
                        "[N] logits (or a DiscriminatorOutput)"):
            assert isinstance(gan, GAN) and isinstance(gan.generator, Generator)
            assert isinstance(gan.discriminator, Discriminator)
            z = gan.generator.sample_latent(4)
            assert z.shape[0] == 4, f"sample_latent(4) gave {tuple(z.shape)}"
            y = labels_for(gan, 4)
            fake = gan.generator(z, y)
            assert tuple(fake.shape) == (4, *shape), f"G made {tuple(fake.shape)} for image_shape {shape}"
            assert fake.dtype == torch.float32, f"G made {fake.dtype}"
            assert fake.min() >= -1 and fake.max() <= 1, "G's images leave [-1, 1] (end G in tanh)"
            out = as_output(gan.discriminator(fake, y))
            assert tuple(out.logits.shape) == (4,), f"D gave logits of shape {tuple(out.logits.shape)}, not [N]"
            assert all(v.shape[0] == 4 for v in out.extras.values()), "D's extra outputs must have N rows"

    def test_seeded_sampling_is_deterministic(self, model: str) -> None:
        import torch

        gan = build(model, SHAPES[0])
        y = labels_for(gan, 6)
        with _fail_with("draw noise only from the generator passed to sample_latent, and keep eval mode free of "
                        "randomness (dropout is off in eval mode)"):
            first = gan.generator.sample(6, y=y, generator=torch.Generator().manual_seed(1))
            again = gan.generator.sample(6, y=y, generator=torch.Generator().manual_seed(1), batch_size=4)
            torch.testing.assert_close(first, again, msg="the same seed gave other images")

    def test_every_parameter_learns_with_every_loss_that_accepts_it(self, model: str, loss: str) -> None:
        import torch

        import ganzoo
        from ganzoo.step import StepModules, discriminator_update, generator_update

        from ganzoo.assembly import refusal

        torch.manual_seed(0)
        gan = build(model, SHAPES[0])
        objective = ganzoo.create_loss(loss)
        reason = refusal(gan, loss, objective)
        if reason is not None:  # a clean refusal, with the reason the user will read, is a pass
            assert isinstance(reason, str) and reason.strip(), f"{loss} refused {model} without a reason"
            return
        m = StepModules(gan=gan, G=gan.generator, D=gan.discriminator, D_frozen=gan.discriminator, loss=objective,
                        opt_g=torch.optim.SGD(gan.generator.parameters(), lr=0.0),
                        opt_d=torch.optim.SGD(gan.discriminator.parameters(), lr=0.0), device_type="cpu")
        real = torch.rand(8, *SHAPES[0]) * 2 - 1
        y = labels_for(gan, 8)
        with _fail_with(f"D's training step with the {loss!r} loss raised (see the error above): G and D must take "
                        "the batch and labels the trainer gives, and D return [N] logits or a DiscriminatorOutput"):
            z = gan.generator.sample_latent(8)
            _, fake, _ = discriminator_update(m, real, y, z)
        silent = [n for n, p in gan.discriminator.named_parameters() if p.requires_grad and p.grad is None]
        with _fail_with("every parameter of D should take part in D's loss; remove unused layers"):
            assert not silent, f"D's parameters without a gradient under {loss}: {silent}"
        with _fail_with(f"G's training step with the {loss!r} loss raised (see the error above): G and D must "
                        "take the batch and labels the trainer gives"):
            generator_update(m, real, fake, y, z, g_step=0)
        silent = [n for n, p in gan.generator.named_parameters() if p.requires_grad and p.grad is None]
        with _fail_with("every parameter of G should shape its images (an embedding that is never used?)"):
            assert not silent, f"G's parameters without a gradient under {loss}: {silent}"
        bad = [n for n, p in gan.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
        assert not bad, f"non-finite gradients: {bad}"

    def test_a_few_cpu_steps_train_without_nan(self, model: str, tiny_data: Path, tmp_path: Path) -> None:
        import math

        from ganzoo.errors import TrainingDiverged

        nan = ("a loss became NaN or inf within four steps at the default options: check the initialisation and "
               "that D's logits are not squashed")
        with _fail_with("four training steps on a tiny Fashion-MNIST-shaped dataset (1x28x28, 10 classes) at the "
                        "default options must run: see the error above"):
            try:
                run = _train(model, tiny_data, tmp_path / "run", max_steps=4)
            except TrainingDiverged as exc:
                raise AssertionError(f"TrainingDiverged: {exc}\n\nWhat to fix: {nan}") from exc
        with _fail_with(nan):
            assert run.summary["status"] == "completed" and run.summary["steps"] == 4
            assert all(math.isfinite(v) for v in run.summary["final"].values()), run.summary["final"]
        with _fail_with("a trained run must sample: G's sample() draws [n, C, H, W] images"):
            assert run.sample(3).shape[1:] == (1, 28, 28)

    def test_checkpoint_round_trip_resumes_bit_exactly(self, model: str, tiny_data: Path, tmp_path: Path) -> None:
        import torch

        import ganzoo
        from ganzoo.checkpoint import load_checkpoint, split_prefix

        from ganzoo.errors import CheckpointError

        with _fail_with("two short trainings on tiny data must run (see test_a_few_cpu_steps_train_without_nan)"):
            _train(model, tiny_data, tmp_path / "straight", epochs=2)
            split = _train(model, tiny_data, tmp_path / "split", epochs=1)
        with _fail_with("a run of the model must resume from its last checkpoint (ganzoo.train(resume=RUN))"):
            try:
                ganzoo.train(resume=split.path, epochs=2)
            except CheckpointError as exc:
                raise AssertionError(f"CheckpointError: {exc}\n\nWhat to fix: create every parameter and buffer "
                                     "in __init__ (not lazily in forward), so that a checkpoint loads into a freshly "
                                     "built model") from exc
        a, _ = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.safetensors")
        b, _ = load_checkpoint(tmp_path / "split" / "checkpoints" / "last.safetensors")
        for prefix in ("generator", "discriminator", "g_optimizer", "d_optimizer"):
            wa, wb = split_prefix(a, prefix), split_prefix(b, prefix)
            differ = [k for k in wa if k not in wb or not torch.equal(wa[k], wb[k])]
            with _fail_with("keep all state in parameters and buffers (state_dict), draw randomness only from "
                            "torch's generators, and do not depend on anything outside the model"):
                assert wa.keys() == wb.keys() and not differ, f"{prefix} differs after resuming: {differ[:5]}"

    def test_channels_last_promise(self, model: str) -> None:
        import torch
        from torch.utils._python_dispatch import TorchDispatchMode

        torch.manual_seed(0)
        gan = build(model, SHAPES[1])
        if not gan.channels_last:
            pytest.skip(f"{model} does not declare channels_last=True")
        real = torch.rand(6, *SHAPES[1]) * 2 - 1
        y = labels_for(gan, 6)
        gan.to(memory_format=torch.channels_last)
        mixed: set[str] = set()

        class Watch(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
                out = func(*args, **(kwargs or {}))
                if func not in (torch.ops.aten.clone.default, torch.ops.aten.copy_.default,
                                torch.ops.aten._to_copy.default):
                    tensors = [t for t in [*args, *(out if isinstance(out, (tuple, list)) else [out])]
                               if isinstance(t, torch.Tensor) and t.dim() == 4 and t.shape[0] == 6 and t.shape[1] > 1]
                    if len({_layout(t) for t in tensors} - {None}) > 1:
                        mixed.add(str(func))
                return out

        with _fail_with("G and D must run on channels-last tensors of the shapes they were built for"), Watch():
            fake = gan.generator(gan.generator.sample_latent(6), y)
            out = gan.discriminator(torch.cat([real.contiguous(memory_format=torch.channels_last), fake]),
                                    torch.cat([y, y]) if y is not None else None)
            (out if isinstance(out, torch.Tensor) else out.logits).sum().backward()
        with _fail_with("never .view() a 4-D activation (reshape, or ganzoo.layers.Flatten), and convert tensors "
                        "the model makes itself with ganzoo.layers.memory_format_of"):
            assert not mixed, f"ops computing on two memory layouts at once: {sorted(mixed)}"

    def test_cuda_graph_promise(self, model: str) -> None:
        import torch

        gan = build(model, SHAPES[0])
        if not gan.cuda_graphs:
            pytest.skip(f"{model} does not declare cuda_graphs=True")
        if not torch.cuda.is_available():
            pytest.skip("no CUDA GPU here: a model that declares cuda_graphs=True is captured on a machine with one")
        capturable = capturable_losses(gan)
        with _fail_with("a model that declares cuda_graphs=True must train with at least one loss that does"):
            assert capturable, (f"no loss that can train {model} declares cuda_graphs = True "
                                f"(losses: {compatible_losses(gan)[0]})")
        check_cuda_graph_step(gan, capturable[0])

    def test_cuda_graph_promise_replays_as_eagerly_on_cpu(self, model: str) -> None:
        """One of three checks of the promise a CPU runs: the GPU check's comparison, with a recorded
        trace of the step standing in for the CUDA graph (:func:`trace_capture`). It finds a choice
        made from Python state (a counter, say) that differs between the recorded step and the next."""
        gan, loss = _declared(model)
        check_cuda_graph_step(gan, loss, device="cpu")

    def test_cuda_graph_promise_keeps_state_in_place(self, model: str) -> None:
        """One of three checks of the promise a CPU runs: two steps rebind no tensor attribute."""
        import torch

        from ganzoo.step import train_step

        gan, loss = _declared(model)
        m, y = _cpu_step(gan, loss), labels_for(gan, 8)

        def two_steps() -> None:
            for i in range(2):
                train_step(m, torch.rand(8, *SHAPES[0]) * 2 - 1, y, gan.generator.sample_latent(8), step=i)

        with _fail_with("keep state that lives across steps in buffers updated in place (register_buffer, then "
                        "buf.copy_(...) or buf.add_(...)), not in an attribute rebound per call (self.x = ...): a "
                        "CUDA graph replays the tensors its capture saw"):
            rebound = rebound_state({"model": gan}, two_steps)
            assert not rebound, f"{model} declares cuda_graphs=True, but a training step rebinds {rebound}"

    def test_cuda_graph_promise_reads_nothing_back(self, model: str) -> None:
        """One of three checks of the promise a CPU runs: a step reads no value back to the host,
        makes no tensor shaped by the data and makes or draws nothing off the device (:func:`host_reads`)."""
        import torch

        from ganzoo.step import train_step

        gan, loss = _declared(model)
        m, y = _cpu_step(gan, loss), labels_for(gan, 8)
        batches = [(torch.rand(8, *SHAPES[0]) * 2 - 1, gan.generator.sample_latent(8)) for _ in range(2)]
        train_step(m, batches[0][0], y, batches[0][1], step=0)  # lazily made state is made outside the watch
        with _fail_with("decide on the device, not in Python: torch.where(cond, a, b) instead of `if tensor:`, masks "
                        "multiplied in instead of boolean indexing, tensors made and drawn with device= (or *_like, "
                        "x.new_*), torch's random functions instead of Python's or NumPy's; a CUDA graph replays "
                        "the decisions its capture made"):
            found = host_reads(lambda: train_step(m, batches[1][0], y, batches[1][1], step=1))
            assert not found, f"{model} declares cuda_graphs=True, but its training step " + "; ".join(found)

    def test_registration_does_not_import_torch(self, model: str) -> None:
        import ganzoo
        from ganzoo.registry import get_registry

        info = get_registry().plugins.infos.get(ganzoo.get_model_spec(model).plugin)
        if info is None or info.distribution is None:
            pytest.skip(f"{model} is registered at run time, not through an entry point")
        # import the module, then load the registry with this plugin alone (its register hooks run)
        probe = (f"import sys, importlib; importlib.import_module({info.module.split(':')[0]!r}); "
                 f"imported = 'torch' in sys.modules; import ganzoo; listed = {model!r} in ganzoo.list_models(); "
                 "print(imported, 'torch' in sys.modules, listed)")
        from ganzoo.plugins import ONLY_ENV

        env = {**os.environ, ONLY_ENV: info.name}
        result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=env)
        assert result.returncode == 0, result.stderr[-2000:]
        imported, registered, listed = result.stdout.split()[-3:]
        assert listed == "True", (f"loaded alone (GANZOO_PLUGINS={info.name}), plugin {info.name!r} registers no "
                                  f"model {model!r}: {result.stderr.strip()[-2000:]}")
        with _fail_with("import torch inside build(), not at the top of the module the entry point names, so "
                        "that `ganzoo list` stays fast"):
            assert imported == "False", f"importing {info.module} imports torch"
        with _fail_with("import torch (and the modules that do) inside build(), not in the register_* hook, so "
                        "that `ganzoo list` stays fast"):
            assert registered == "False", f"running the register_* hooks of plugin {info.name!r} imports torch"


def conformance(*models: str, shapes: Sequence[tuple[int, int, int]] = SHAPES) -> type:
    """A test class checking ``models``; assign it to a name starting with ``Test``."""
    return type("TestConformance", (ConformanceSuite,), {"models": tuple(models), "shapes": tuple(shapes),
                                                          "__module__": sys._getframe(1).f_globals.get("__name__")})


class TestConformance(ConformanceSuite):
    """What ``pytest --ganzoo-conformance MODEL`` collects (or ``--pyargs ganzoo.testing --ganzoo-conformance MODEL``)."""

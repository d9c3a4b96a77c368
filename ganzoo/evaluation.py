"""Scores for generators: Frechet distance and KID on features of a dataset-specific classifier,
class coverage, and the real-vs-real floor measured the same way.

Inception features were made for ImageNet photos and need weights from the internet; a small
classifier trained on the dataset itself is cheap, offline and sensitive to what matters in 28x28
garments. It is trained once per dataset (seeded, deterministic), cached as safetensors with its
test accuracy, and reused. The FID and KID maths come from torchmetrics.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .atomic import atomic_write_bytes
from .checkpoint import load_checkpoint, save_checkpoint
from .config import DataSettings, resolve_data, whole_number
from .data import DatasetSplit, load_images, to_uint8, to_unit_range
from .errors import CheckpointError, GanzooError, GanzooWarning
from .paths import cache_dir
from .rundir import json_safe

FEATURE_NET_VERSION = 1
INCEPTION_WEIGHTS = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{INCEPTION_WEIGHTS}"


class FeatureNet(nn.Module):
    """A small CNN classifier; its 128-d penultimate layer is the feature space for the scores."""

    num_features = 128

    def __init__(self, channels: int, height: int, width: int, num_classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * (height // 4) * (width // 4), self.num_features), nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(self.num_features, num_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] -> features [N, 128]."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # torchmetrics hands the images over as given (normalize=False): in [-1, 1]
        return self.features(x)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _fingerprint(images: torch.Tensor, labels: torch.Tensor) -> str:
    digest = hashlib.sha1()
    digest.update(str(tuple(images.shape)).encode())
    digest.update(images.contiguous().numpy().tobytes())
    digest.update(labels.numpy().tobytes())
    return digest.hexdigest()[:12]


def _batches(n: int, size: int):
    for start in range(0, n, size):
        yield start, min(n, start + size)


@torch.no_grad()
def _accuracy(net: FeatureNet, images: torch.Tensor, labels: torch.Tensor) -> float:
    net.eval()
    correct = 0
    for a, b in _batches(len(images), 1000):
        correct += (net.classify(to_unit_range(images[a:b])).argmax(1) == labels[a:b]).sum().item()
    return correct / len(images)


def feature_net(dataset: str, train: DatasetSplit, test: DatasetSplit, *, epochs: int = 3, seed: int = 0,
                log: Any = None, progress: Any = None) -> tuple[FeatureNet, dict]:
    """The cached feature network for ``dataset``, trained on its training split when not cached.

    Training it takes minutes on a CPU (docs/evaluation.md), once per dataset: ``log(text)`` is
    told before it starts and ``progress(done, total)`` after every batch.
    """
    train_x, train_y = train.images, train.labels
    if train_y is None:
        raise GanzooError(f"dataset {dataset!r} has no class labels; the feature network for eval needs them")
    num_classes = train.num_classes
    key = f"{dataset.split(':')[0]}-v{FEATURE_NET_VERSION}-s{seed}-e{epochs}-{_fingerprint(train_x, train_y)}"
    path = cache_dir() / "features" / f"{key}.safetensors"
    net = FeatureNet(*train_x.shape[1:], num_classes)
    if path.is_file():
        try:
            tensors, meta = load_checkpoint(path)
            net.load_state_dict(tensors)
            return net.eval(), meta["feature_net"]
        except (CheckpointError, RuntimeError, KeyError):
            pass  # a damaged cache entry: train again and replace it
    if log:
        log(f"training the feature network for {dataset} once ({epochs} epochs over {len(train_x):,} images; "
            f"to be cached in {path.parent} for every later eval)")
    batches_per_epoch = math.ceil(len(train_x) / 128)
    start = time.perf_counter()
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):  # all on the CPU: fork and seed its generator only
        torch.default_generator.manual_seed(seed)
        net = FeatureNet(*train_x.shape[1:], num_classes)
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
        for epoch in range(epochs):
            net.train()
            order = torch.randperm(len(train_x), generator=generator)
            for i, (a, b) in enumerate(_batches(len(order), 128)):
                idx = order[a:b]
                loss = F.cross_entropy(net.classify(to_unit_range(train_x[idx])), train_y[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if progress:
                    progress(epoch * batches_per_epoch + i + 1, epochs * batches_per_epoch)
    info = {
        "dataset": dataset, "key": key, "epochs": epochs, "seed": seed,
        "test_accuracy": round(_accuracy(net, test.images, test.labels), 4),
        "train_seconds": round(time.perf_counter() - start, 1), "num_features": FeatureNet.num_features,
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(path, net.state_dict(), {"feature_net": info})
    except OSError as exc:  # the network is trained: score with it now, and say why the next eval trains again
        warnings.warn(f"could not cache the feature network in {path.parent} ({exc.strerror or exc}); "
                      "every eval will train it again: set $GANZOO_CACHE_DIR to a writable folder",
                      GanzooWarning, stacklevel=2)
    return net.eval(), info


def _data_of(meta: dict[str, Any], run: str | Path) -> DataSettings:
    try:
        return resolve_data(meta["config"]["data"])
    except (KeyError, TypeError):
        raise CheckpointError(f"{run}: its metadata names no dataset to score against") from None
    except GanzooError as exc:
        raise CheckpointError(f"{run}: its dataset settings do not resolve here ({exc})") from None


def _splits(d: DataSettings) -> tuple[DatasetSplit, DatasetSplit]:
    """The training and test split of a run's dataset, each loaded once."""
    return tuple(load_images(d.name, d.root, train=train, download=d.download, options=d.options)  # type: ignore[return-value]
                 for train in (True, False))


def _scores(net: FeatureNet, a: torch.Tensor, b: torch.Tensor, seed: int) -> dict[str, float]:
    """FID and KID between two image sets in [-1, 1], through ``net``'s features."""
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    n = min(len(a), len(b))
    # normalize=False: the floats reach the network as they are. With normalize=True, torchmetrics
    # releases before its custom-network exemption cast them to uint8 first, which breaks this net.
    fid = FrechetInceptionDistance(feature=net, normalize=False)
    with warnings.catch_warnings():  # "KID keeps all features in memory": 128 floats per image here
        warnings.simplefilter("ignore", UserWarning)
        kid = KernelInceptionDistance(feature=net, normalize=False, subsets=50, subset_size=min(1000, n))
    with torch.no_grad():
        for images, real in ((a, True), (b, False)):
            for s, e in _batches(len(images), 1000):
                batch = images[s:e].float()
                fid.update(batch, real=real)
                kid.update(batch, real=real)
        with torch.random.fork_rng(devices=[]):  # all on the CPU: fork and seed its generator only
            torch.default_generator.manual_seed(seed)
            kid_mean, kid_std = kid.compute()
        return {"fid": float(fid.compute()), "kid": float(kid_mean), "kid_std": float(kid_std)}


@torch.no_grad()
def predict_classes(net: FeatureNet, images: torch.Tensor) -> torch.Tensor:
    return torch.cat([net.classify(images[a:b].float()).argmax(1) for a, b in _batches(len(images), 1000)])


def class_shares(predicted: torch.Tensor, num_classes: int) -> list[float]:
    counts = torch.bincount(predicted, minlength=num_classes).float()
    return (counts / counts.sum()).tolist()


def coverage_summary(shares: list[float]) -> dict[str, float]:
    k = len(shares)
    entropy = -sum(p * math.log(p) for p in shares if p > 0)
    return {
        "classes_covered": sum(p >= 0.5 / k for p in shares),  # at least half their fair share
        "coverage_entropy": abs(round(entropy / math.log(k), 4)) if k > 1 else 1.0,  # 1 = uniform
    }


MIN_N = 10  # images scored at the least: fewer give no usable covariance (and KID no subsets)


def evaluate(run: str | Path, *, n: int = 10000, seed: int = 0, log: Any = None, progress: Any = None,
             generator: Any = None, meta: dict | None = None) -> dict[str, Any]:
    """Score a run (or checkpoint) against its dataset's test split; also measure the floor.

    ``log`` and ``progress`` follow the feature network's training, the first time a dataset is scored.
    """
    from .sampling import generate, load_generator

    n = whole_number(n, "n (the samples scored: FID compares covariances)", least=MIN_N)
    if generator is None:
        generator, meta = load_generator(run)
    assert meta is not None
    data = _data_of(meta, run)
    dataset = data.name
    train, test = _splits(data)
    n = min(n, len(test.images), len(train.images))
    if n < MIN_N:
        raise GanzooError(f"scoring needs at least {MIN_N} images in each split of {dataset}, and it has "
                          f"{len(train.images)} for training and {len(test.images)} for testing")
    net, info = feature_net(dataset, train, test, log=log, progress=progress)
    labels = torch.arange(n) % generator.num_classes if generator.num_classes else None
    fake = generate(generator, n, seed=seed, labels=labels)
    real = to_unit_range(test.images[:n])
    pick = torch.randperm(len(train.images), generator=torch.Generator().manual_seed(seed))[:n]
    floor = _scores(net, to_unit_range(train.images[pick]), real, seed)
    scores = _scores(net, real, fake, seed)
    result: dict[str, Any] = {
        "model": meta["model"], "dataset": dataset, "n": n, "seed": seed,
        "step": meta.get("state", {}).get("step"), "epoch": meta.get("state", {}).get("epoch"),
        "sampled_from": meta.get("sampled_from", "generator"),
        **scores,
        "floor": floor,
        "feature_net": info,
    }
    num_classes = test.num_classes
    if num_classes:
        predicted = predict_classes(net, fake)
        shares = class_shares(predicted, num_classes)
        result["class_shares"] = [round(p, 4) for p in shares]
        result.update(coverage_summary(shares))
        if labels is not None:  # conditional: how often the classifier sees the class that was asked for
            result["class_accuracy"] = round(float((predicted == labels).float().mean()), 4)
    return result


def check_inception() -> None:
    """Raise :class:`GanzooError` unless :func:`inception_fid` can run here: torchmetrics,
    torch-fidelity and the Inception-v3 weights on disk (checked before minutes of sampling)."""
    try:
        import torch_fidelity  # noqa: F401
        import torchmetrics  # noqa: F401
    except ImportError as exc:
        raise GanzooError(f"Inception FID needs {exc.name or 'torch-fidelity'}: pip install 'ganzoo[inception]'") from None
    weights = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS
    if not weights.is_file():
        raise GanzooError(
            f"Inception FID needs the Inception-v3 weights at {weights} and this machine cannot download them. "
            f"Fetch {INCEPTION_URL} and save it there (or set $TORCH_HOME to the folder whose "
            "hub/checkpoints/ holds it)."
        )


def inception_fid(run: str | Path, *, n: int = 10000, seed: int = 0) -> float:
    """FID on Inception-v3 features, comparable with published numbers; needs local weights."""
    check_inception()
    from torchmetrics.image.fid import FrechetInceptionDistance

    from .sampling import generate, load_generator

    generator, meta = load_generator(run)
    d = _data_of(meta, run)
    test_x = load_images(d.name, d.root, train=False, download=d.download, options=d.options).images
    n = min(n, len(test_x))
    labels = torch.arange(n) % generator.num_classes if generator.num_classes else None
    fake = generate(generator, n, seed=seed, labels=labels)
    # uint8 in, as the published protocols score PNGs: the test images as stored, the fakes
    # rounded as a PNG would hold them (normalize=True would truncate, a half-level shift)
    fid = FrechetInceptionDistance(feature=2048, normalize=False)

    def rgb(x: torch.Tensor) -> torch.Tensor:
        return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x

    for s, e in _batches(n, 500):
        fid.update(rgb(test_x[s:e]), real=True)
        fid.update(rgb(to_uint8(fake[s:e])), real=False)
    return float(fid.compute())


def write_eval(run_dir: Path, result: dict[str, Any]) -> Path:
    path = run_dir / "eval.json"
    atomic_write_bytes(path, (json.dumps(json_safe(result), indent=2) + "\n").encode())
    return path

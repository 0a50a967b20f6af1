"""Datasets as whole tensors on the training device.

A split is loaded once as ``uint8`` images through torchvision's dataset classes
(or scikit-learn for ``digits``), subset and split with a seeded generator, then
moved to the device as ``float32`` in [0, 1] -- the same values torchvision's
``ToTensor`` gives, without a per-sample PIL transform in the training loop.

Where the files come from, in order:
1. the data directory (``--data-dir``, ``$LRTRACK_DATA_DIR`` or ``~/.cache/lrtrack/datasets``)
   in torchvision's layout (``<dir>/MNIST/raw``, ``<dir>/FashionMNIST/raw``);
2. for Fashion-MNIST, Debian's ``dataset-fashion-mnist`` package, unpacked into
   the data directory;
3. torchvision's download (fails quickly without internet);
4. otherwise a `DataUnavailableError` listing the ways to provide the data.

The decoded uint8 tensors are cached in the per-user cache directory
(``~/.cache/lrtrack/tensors``, or under ``$XDG_CACHE_HOME``), never in the data
directory (which may be shared or read-only), one file per raw folder, checked
against the raw files' names, sizes and modification times: a later process loads
them in milliseconds without importing torchvision (about 1.3 s per agent process
on a 2-core CPU). A changed raw file rebuilds the cache; a cache directory that
cannot be written just goes without it.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lrtrack.errors import DataUnavailableError

if TYPE_CHECKING:
    import torch

    from lrtrack.config import TrainConfig

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
TORCHVISION_CLASSES = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
DIGITS_TEST_FRACTION = 0.2
DOWNLOAD_TIMEOUT_S = 20


@dataclass
class Split:
    """Images ``x`` (N, 1, H, W) and integer labels ``y`` (N,)."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device: torch.device) -> Split:
        return Split(self.x.to(device, non_blocking=True), self.y.to(device, non_blocking=True))


@dataclass
class Data:
    """The splits of one run. ``val`` is None unless ``val_split`` > 0."""

    train: Split
    val: Split | None
    test: Split
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train.x.shape[1:])

    @property
    def eval_split(self) -> Split:
        """The split that ``val/*`` metrics are computed on (validation if held out, else test)."""
        return self.val if self.val is not None else self.test


def default_data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """``explicit``, else ``$LRTRACK_DATA_DIR``, else a per-user cache directory."""
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get("LRTRACK_DATA_DIR"):
        return Path(os.environ["LRTRACK_DATA_DIR"]).expanduser()
    return _user_cache() / "datasets"


def _user_cache() -> Path:
    """``$XDG_CACHE_HOME/lrtrack``, else ``~/.cache/lrtrack``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lrtrack"


def load_data(config: TrainConfig, device: torch.device) -> Data:
    """Load, subset and split ``config.dataset``; return float tensors on ``device``."""
    import torch

    x_train, y_train, x_test, y_test = _raw_splits(config.dataset, str(default_data_dir(config.data_dir)))
    generator = torch.Generator().manual_seed(config.seed)
    train = _subset(Split(x_train, y_train), config.train_size, generator)
    test = _subset(Split(x_test, y_test), config.test_size, generator)
    val = None
    if config.val_split > 0:
        n_val = max(1, int(round(len(train) * config.val_split)))
        order = torch.randperm(len(train), generator=generator)
        val = Split(train.x[order[:n_val]], train.y[order[:n_val]])
        train = Split(train.x[order[n_val:]], train.y[order[n_val:]])
    splits = [_as_float(s).to(device) if s is not None else None for s in (train, val, test)]
    return Data(train=splits[0], val=splits[1], test=splits[2], num_classes=10)


def _subset(split: Split, size: int | None, generator: torch.Generator) -> Split:
    import torch

    if size is None or size >= len(split):
        return split
    index = torch.randperm(len(split), generator=generator)[:size]
    return Split(split.x[index], split.y[index])


def _as_float(split: Split) -> Split:
    return Split(split.x.float().div_(255.0).unsqueeze(1), split.y.long())


@functools.lru_cache(maxsize=4)
def _raw_splits(dataset: str, data_dir: str):
    """uint8 images (N, H, W) and labels for train and test; cached per process."""
    if dataset == "digits":
        return _digits()
    return _torchvision(dataset, Path(data_dir))


def _digits():
    """scikit-learn's bundled 8x8 digits with a fixed 80/20 train/test split."""
    import torch
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy(bunch.images * (255.0 / 16.0)).round().to(torch.uint8)
    y = torch.from_numpy(bunch.target).long()
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    n_test = int(len(y) * DIGITS_TEST_FRACTION)
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


def _torchvision(dataset: str, data_dir: Path):
    if dataset == "fashion-mnist":
        _unpack_debian_fashion_mnist(data_dir)
    raw = data_dir / TORCHVISION_CLASSES[dataset] / "raw"
    cache = _cache_path(dataset, raw)
    if (cached := _read_cache(cache, raw)) is not None:
        return cached
    from torchvision import datasets

    cls = getattr(datasets, TORCHVISION_CLASSES[dataset])
    try:
        train, test = cls(data_dir, train=True), cls(data_dir, train=False)
    except RuntimeError:
        _download(cls, data_dir, dataset)
        train, test = cls(data_dir, train=True), cls(data_dir, train=False)
    splits = (train.data, train.targets, test.data, test.targets)
    _write_cache(cache, raw, splits)
    return splits


def _cache_path(dataset: str, raw: Path) -> Path:
    """``~/.cache/lrtrack/tensors/<dataset>-<hash of the raw folder's path>.pt``."""
    digest = hashlib.sha256(str(raw.resolve()).encode()).hexdigest()[:16]
    return _user_cache() / "tensors" / f"{dataset}-{digest}.pt"


def _raw_fingerprint(raw: Path) -> list[tuple[str, int, int]]:
    """Name, size and mtime of every raw file: what the cached tensors were decoded from."""
    files = sorted(raw.iterdir()) if raw.is_dir() else []
    return [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files if f.is_file()]


def _read_cache(cache: Path, raw: Path):
    """The cached splits, or None when missing, unreadable or made from other raw files."""
    import torch

    fingerprint = _raw_fingerprint(raw)
    if not fingerprint or not cache.is_file():
        return None
    try:
        saved = torch.load(cache, weights_only=True)
    except Exception:  # a truncated or foreign file: rebuild it from the raw files
        return None
    if [tuple(entry) for entry in saved.get("raw", [])] != fingerprint:
        return None
    return tuple(saved["splits"])


def _write_cache(cache: Path, raw: Path, splits) -> None:
    """Save the decoded splits atomically (temporary file, then rename)."""
    import torch

    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache.parent, suffix=".tmp")
    except OSError:
        return  # a cache directory that cannot be written: go without the cache
    try:
        with os.fdopen(fd, "wb") as file:
            torch.save({"raw": _raw_fingerprint(raw), "splits": list(splits)}, file)
        os.replace(tmp, cache)
    except OSError:
        Path(tmp).unlink(missing_ok=True)


def _unpack_debian_fashion_mnist(data_dir: Path) -> None:
    """Unzip Debian's ``dataset-fashion-mnist`` files into torchvision's layout (atomically)."""
    raw = data_dir / "FashionMNIST" / "raw"
    sources = sorted(DEBIAN_FASHION_MNIST.glob("*-ubyte.gz"))
    if len(sources) < 4 or all((raw / s.stem).exists() for s in sources):
        return
    raw.mkdir(parents=True, exist_ok=True)
    for source in sources:
        target = raw / source.stem
        if target.exists():
            continue
        with gzip.open(source, "rb") as src, tempfile.NamedTemporaryFile(dir=raw, delete=False) as tmp:
            shutil.copyfileobj(src, tmp)
        os.replace(tmp.name, target)


def _download(cls, data_dir: Path, dataset: str) -> None:
    """torchvision's download into a temporary folder, moved into place only when complete."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    staging = Path(tempfile.mkdtemp(prefix="lrtrack-download-"))
    try:
        cls(staging, train=True, download=True)
        cls(staging, train=False, download=True)
        data_dir.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staging / TORCHVISION_CLASSES[dataset]), str(data_dir / TORCHVISION_CLASSES[dataset]))
    except Exception as exc:  # any download failure: explain how to provide the data
        folder = data_dir / TORCHVISION_CLASSES[dataset] / "raw"
        ways = f"put the IDX files in {folder}, or point --data-dir / LRTRACK_DATA_DIR at a directory that has them"
        if dataset == "fashion-mnist":
            ways += ", or install Debian's package dataset-fashion-mnist"
        raise DataUnavailableError(
            f"--dataset {dataset}: files not found in {folder} and the download failed "
            f"({type(exc).__name__}); {ways}"
        ) from None
    finally:
        socket.setdefaulttimeout(previous)
        shutil.rmtree(staging, ignore_errors=True)

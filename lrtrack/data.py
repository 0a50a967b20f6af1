"""A run's data: built-in or referenced datasets, held resident on the device or streamed.

Sources
-------
``dataset`` is a built-in name (``mnist``, ``fashion-mnist``, ``digits``) or a reference
(`lrtrack.references.DATASETS`): a torchvision class (``torchvision.datasets:KMNIST``),
a user callable (``mydata:make``) or an entry-point name (group ``lrtrack.datasets``),
called like torchvision's classes: ``callable(root=DATA_DIR, train=True|False,
**dataset_args)``. A callable without a ``train`` parameter (``torchvision.datasets:FakeData``)
returns one dataset, which is split here: `HELD_OUT_TEST_FRACTION` (20%) of it is the test
split, chosen by a permutation seeded with `SPLIT_SEED` (0) -- the same for every run, so
every run of a sweep is tested on the same items. ``digits`` is split the same way.

Items are ``(input, label)``: input a tensor, a PIL image or a NumPy array, converted as
torchvision's ``ToTensor`` would (8-bit images become ``float32`` in [0, 1], channels
first), label an int (`as_item`). The number of classes is ``len(dataset.classes)``, else
the dataset's ``num_classes`` attribute, else one more than the largest label (read from
``dataset.targets`` when present, else from every item once).

Subsets and splits
------------------
``train_size``/``test_size`` take seeded subsets and ``val_split`` holds out part of the
training subset, all with one generator seeded ``seed`` (`split_indices`): the same items
whichever path then serves them.

Two paths, chosen per run (``data_path: auto``) and logged as ``data_path`` in the W&B config
-------------------------------------------------------------------------------------------
- **resident**: every split decoded once into ``float32`` tensors on the training device
  (`Split`); an epoch is one gather and slices, no per-sample work. Chosen when the decoded
  splits fit in ``resident_budget_mb`` (default 2048 MiB).
- **streaming**: a ``torch.utils.data.DataLoader`` (`Streamer`) over the same items, for
  datasets that do not fit: ``loader_workers`` worker processes (default: one per CPU core
  the training leaves free, at most 4, see `loader_workers`) converting items and building batches, kept alive across epochs
  (``persistent_workers``), pinned memory on CUDA; 8-bit inputs travel as ``uint8`` and
  become ``float32`` on the device. The batch order is drawn in the training process from
  the same seeded generator as the resident path's, so both paths train on the same
  batches and give the same numbers on CPU (``tests/test_user_models.py`` checks it).

Both paths give batches of ``(x, y)`` on the device through ``train_batches(order, size,
end)`` and ``eval_batches(size)``, so `lrtrack.train` is the same loop for both.

Where the built-ins' files come from, in order:
1. the data directory (``--data-dir``, ``$LRTRACK_DATA_DIR`` or ``~/.cache/lrtrack/datasets``)
   in torchvision's layout (``<dir>/MNIST/raw``, ``<dir>/FashionMNIST/raw``);
2. for Fashion-MNIST, Debian's ``dataset-fashion-mnist`` package, unpacked into
   the data directory;
3. torchvision's download (fails quickly without internet);
4. otherwise a `DataUnavailableError` listing the ways to provide the data.

The built-ins' decoded uint8 tensors are cached in the per-user cache directory
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
import json
import math
import numbers
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from lrtrack.errors import DataUnavailableError, UserError

if TYPE_CHECKING:
    import torch

    from lrtrack.config import TrainConfig

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
TORCHVISION_CLASSES = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
#: Share of a single dataset (``digits``, or a callable without ``train``) held out as the test split.
HELD_OUT_TEST_FRACTION = 0.2
#: Seed of that held-out split's permutation: fixed, so every run tests on the same items.
SPLIT_SEED = 0
DOWNLOAD_TIMEOUT_S = 20
#: The most streaming worker processes the automatic ``loader_workers`` picks.
MAX_AUTO_WORKERS = 4

Batches = Iterator[tuple["torch.Tensor", "torch.Tensor"]]


@dataclass
class Split:
    """A resident split: inputs ``x`` (N, ...) as float32 and integer labels ``y`` (N,), on the device."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device: torch.device) -> Split:
        return Split(self.x.to(device, non_blocking=True), self.y.to(device, non_blocking=True))

    def train_batches(self, order: torch.Tensor, size: int, end: int) -> Batches:
        """Batches of ``size`` in ``order`` (a permutation of the split), up to sample ``end``:
        one gather for the epoch, then slices."""
        order = order.to(self.x.device)
        xs, ys = self.x.index_select(0, order), self.y.index_select(0, order)
        for start in range(0, end, size):
            yield xs[start : start + size], ys[start : start + size]

    def eval_batches(self, size: int) -> Batches:
        for start in range(0, len(self), size):
            yield self.x[start : start + size], self.y[start : start + size]


@dataclass
class StreamSplit:
    """A streamed split: positions ``index`` in its `Streamer`'s items, served in batches by its DataLoader."""

    streamer: Streamer
    index: torch.Tensor

    def __len__(self) -> int:
        return len(self.index)

    def train_batches(self, order: torch.Tensor, size: int, end: int) -> Batches:
        return self.streamer.batches(self.index[order[:end]].split(size))

    def eval_batches(self, size: int) -> Batches:
        return self.streamer.batches(self.index.split(size))


@dataclass
class Data:
    """The splits of one run. ``val`` is None unless ``val_split`` > 0."""

    train: Split | StreamSplit
    val: Split | StreamSplit | None
    test: Split | StreamSplit
    num_classes: int
    input_shape: tuple[int, ...]  #: one sample's shape, e.g. (1, 28, 28)
    path: str = "resident"  #: "resident" or "streaming"

    @property
    def eval_split(self) -> Split | StreamSplit:
        """The split that ``val/*`` metrics are computed on (validation if held out, else test)."""
        return self.val if self.val is not None else self.test

    def close(self) -> None:
        """End the streaming path's worker processes (nothing to do for resident data)."""
        if isinstance(self.train, StreamSplit):
            self.train.streamer.close()


@dataclass
class Source:
    """The items a run's splits are drawn from: train and test datasets of ``(input, label)``."""

    name: str  #: the ``dataset`` setting, for messages
    train: Any
    test: Any
    num_classes: int


class TensorItems:
    """A built-in split's decoded uint8 images (N, 1, H, W) and labels as ``(image, label)`` items."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.x[i], int(self.y[i])


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
    """``config.dataset``'s splits (subsets, validation split) on the path `choose_path` picks.
    A streaming `Data` holds worker processes until `Data.close`."""
    source = open_source(config.dataset, json.dumps(config.dataset_args, sort_keys=True),
                         str(default_data_dir(config.data_dir)))
    train, val, test = split_indices(len(source.train), len(source.test), config)
    first, _ = read_item(source.train, int(train[0]) if len(train) else 0, source.name)
    input_shape = tuple(first.shape)
    samples = len(train) + len(test) + (len(val) if val is not None else 0)
    path = choose_path(config, input_shape, samples)
    if path == "resident":
        splits = [_resident(source, source.test if s is test else source.train, s, device) if s is not None else None
                  for s in (train, val, test)]
    else:
        streamer = Streamer([source.train, source.test], source.name, device, loader_workers(config, device),
                            config.seed)
        offset = len(source.train)  # test items follow the train items in the streamer
        splits = [StreamSplit(streamer, s) if s is not None else None for s in (train, val)]
        splits.append(StreamSplit(streamer, test + offset))
        streamer.start()
    return Data(train=splits[0], val=splits[1], test=splits[2], num_classes=source.num_classes,
                input_shape=input_shape, path=path)


def choose_path(config: TrainConfig, input_shape: tuple[int, ...], samples: int) -> str:
    """``config.data_path`` unless ``auto``; then ``resident`` when ``samples`` float32 inputs of
    ``input_shape`` fit in ``resident_budget_mb``, else ``streaming``."""
    if config.data_path != "auto":
        return config.data_path
    decoded = samples * math.prod(input_shape) * 4
    return "resident" if decoded <= config.resident_budget_mb * 2**20 else "streaming"


def loader_workers(config: TrainConfig, device: torch.device) -> int:
    """``config.loader_workers``, or one worker per CPU core the training leaves free, at most
    `MAX_AUTO_WORKERS`: on CUDA every core this process may use but one (the training loop's);
    on the CPU those not taken by torch's intra-op threads (``OMP_NUM_THREADS``). 0 reads the
    items in the training process."""
    import torch

    if config.loader_workers is not None:
        return config.loader_workers
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    busy = 1 if device.type == "cuda" else torch.get_num_threads()
    return max(0, min(MAX_AUTO_WORKERS, cores - busy))


def split_indices(n_train: int, n_test: int, config: TrainConfig):
    """Item indices of the train, validation (None unless ``val_split`` > 0) and test splits:
    seeded subsets of ``train_size``/``test_size`` items, then ``val_split`` of the training
    subset held out, all from one generator seeded ``config.seed``."""
    import torch

    generator = torch.Generator().manual_seed(config.seed)
    train = _subset(n_train, config.train_size, generator)
    test = _subset(n_test, config.test_size, generator)
    val = None
    if config.val_split > 0:
        n_val = max(1, int(round(len(train) * config.val_split)))
        order = torch.randperm(len(train), generator=generator)
        val, train = train[order[:n_val]], train[order[n_val:]]
    return train, val, test


def _subset(n: int, size: int | None, generator: torch.Generator) -> torch.Tensor:
    import torch

    if size is None or size >= n:
        return torch.arange(n)
    return torch.randperm(n, generator=generator)[:size]


def _resident(source: Source, dataset: Any, index: torch.Tensor, device: torch.device) -> Split:
    """The items ``index`` of ``dataset`` decoded into one float32 tensor on ``device``."""
    import torch

    if isinstance(dataset, TensorItems):
        x = dataset.x if len(index) == len(dataset) and bool((index == torch.arange(len(dataset))).all()) \
            else dataset.x[index]
        return Split(_to_float(x), dataset.y[index].long()).to(device)
    first, _ = read_item(dataset, int(index[0]), source.name)
    x = torch.empty((len(index), *first.shape), dtype=first.dtype)
    y = torch.empty(len(index), dtype=torch.long)
    for row, i in enumerate(index.tolist()):
        item, label = read_item(dataset, i, source.name)
        if item.shape != first.shape:
            raise UserError(f"dataset: {source.name}: item {i} has shape {tuple(item.shape)}, item "
                            f"{int(index[0])} {tuple(first.shape)}; items of one dataset must have one shape")
        x[row], y[row] = item, label
    return Split(_to_float(x), y).to(device)


def _to_float(x: torch.Tensor) -> torch.Tensor:
    """8-bit inputs scaled to [0, 1] as ``ToTensor`` does; other inputs as float32."""
    import torch

    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()


class Streamer:
    """One ``DataLoader`` over all of a run's items (the train dataset's, then the test
    dataset's), serving whatever batches of positions the loop asks for next.

    The batches are planned in the training process (`batches`), so the order comes from
    the run's seeded generator whatever the worker count; worker processes read and convert
    the items (`collate_items`) and are kept across epochs and splits.
    """

    def __init__(self, datasets: list[Any], name: str, device: torch.device, workers: int, seed: int) -> None:
        import torch
        from torch.utils.data import ConcatDataset, DataLoader

        self.device = device
        self.plan: list[list[int]] = []
        self.loader = DataLoader(
            ConcatDataset(datasets),
            batch_sampler=_Plan(self),
            num_workers=workers,
            collate_fn=functools.partial(collate_items, name=name),
            pin_memory=device.type == "cuda",
            persistent_workers=workers > 0,
            generator=torch.Generator().manual_seed(seed + 3),  # worker seeds, for datasets with random transforms
        )

    def start(self) -> None:
        """Start the worker processes now (before W&B starts its threads), not in epoch 1."""
        self.plan = []
        for _ in self.loader:
            pass

    def close(self) -> None:
        """Shut the worker processes down now (the loader's iterator does it when it is dropped),
        so none is left running -- or copied into the next run's forked workers."""
        self.loader = None

    def batches(self, plan: list[torch.Tensor]) -> Batches:
        if self.loader is None:
            raise RuntimeError("the streamer was closed")
        self.plan = [batch.tolist() for batch in plan]
        for x, y in self.loader:
            yield _to_float(x.to(self.device, non_blocking=True)), y.to(self.device, non_blocking=True)


class _Plan:
    """The DataLoader's batch sampler: the batches its `Streamer` planned last."""

    def __init__(self, streamer: Streamer) -> None:
        self.streamer = streamer

    def __iter__(self):
        return iter(self.streamer.plan)

    def __len__(self) -> int:
        return len(self.streamer.plan)


def collate_items(items: list[Any], name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch from raw items: inputs stacked (uint8 stays uint8 until the device), labels as int64."""
    import torch

    converted = [as_item(item, name) for item in items]
    return torch.stack([x for x, _ in converted]), torch.tensor([y for _, y in converted], dtype=torch.long)


def read_item(dataset: Any, i: int, name: str) -> tuple[torch.Tensor, int]:
    """``dataset[i]`` as `as_item` converts it; `UserError` naming ``dataset`` when reading it raises."""
    try:
        item = dataset[i]
    except Exception as exc:
        from lrtrack.references import first_line

        raise UserError(f"dataset: {name}: reading item {i} raised {first_line(exc)}") from None
    return as_item(item, name, i)


def as_item(item: Any, name: str, position: int | None = None) -> tuple[torch.Tensor, int]:
    """One ``(input, label)`` item as (tensor, int), input converted as ``ToTensor`` would but
    left ``uint8`` when it is an 8-bit image (scaled to [0, 1] on the device, `_to_float`);
    `UserError` naming ``dataset`` when it is not such a pair."""
    import torch

    where = f"item {position}" if position is not None else "an item"
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        what = f"a {type(item).__name__} of length {len(item)}" if isinstance(item, (tuple, list)) else type(item).__name__
        raise UserError(f"dataset: {name}: {where} is {what}, not an (input, label) pair")
    value, label = item
    if isinstance(label, torch.Tensor) and label.numel() == 1 and not label.is_floating_point():
        label = label.item()
    if isinstance(label, bool) or not isinstance(label, numbers.Integral):
        raise UserError(f"dataset: {name}: {where} has label {label!r} ({type(label).__name__}), not an int class index")
    return _as_tensor(value, name, where), int(label)


#: PIL modes with 8-bit bands: kept as uint8 (``ToTensor`` divides those by 255).
_PIL_UINT8_MODES = ("L", "P", "RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV", "LA")


def _as_tensor(value: Any, name: str, where: str) -> torch.Tensor:
    import numpy as np
    import torch

    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype == np.uint8:  # HWC (or HW) 8-bit image, as ToTensor reads it
            array = value[:, :, None] if value.ndim == 2 else value
            return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).contiguous()
        from torchvision.transforms.functional import to_tensor

        return to_tensor(value)
    if type(value).__module__.startswith("PIL."):
        from torchvision.transforms.functional import pil_to_tensor, to_tensor

        return pil_to_tensor(value) if value.mode in _PIL_UINT8_MODES else to_tensor(value)
    raise UserError(f"dataset: {name}: {where} has input of type {type(value).__name__}; "
                    "expected a tensor, a PIL image or a NumPy array")


@functools.lru_cache(maxsize=4)
def open_source(dataset: str, dataset_args: str, data_dir: str) -> Source:
    """The datasets a run draws from (``dataset_args`` as JSON text); cached per process."""
    from lrtrack.references import DATASETS, is_builtin

    if is_builtin(DATASETS, dataset):
        x_train, y_train, x_test, y_test = _raw_splits(dataset, data_dir)
        train, test = TensorItems(x_train.unsqueeze(1), y_train), TensorItems(x_test.unsqueeze(1), y_test)
        return Source(dataset, train, test, int(max(y_train.max(), y_test.max())) + 1)
    return _reference_source(dataset, json.loads(dataset_args), data_dir)


def _reference_source(reference: str, dataset_args: dict[str, Any], data_dir: str) -> Source:
    """A referenced dataset's train and test datasets (`lrtrack.references.build_user_dataset`)."""
    from lrtrack.references import DATASETS, accepts, build_user_dataset, resolve

    if accepts(resolve(DATASETS, reference), "train"):
        train = build_user_dataset(reference, data_dir, True, dataset_args)
        test = build_user_dataset(reference, data_dir, False, dataset_args)
    else:
        train, test = held_out_split(build_user_dataset(reference, data_dir, None, dataset_args))
    for split, dataset in (("train", train), ("test", test)):
        if len(dataset) == 0:
            raise UserError(f"dataset: {reference}: the {split} split is empty")
    return Source(reference, train, test, _num_classes(reference, train, test))


def held_out_split(dataset: Any) -> tuple[Any, Any]:
    """(train, test) of one dataset: `HELD_OUT_TEST_FRACTION` of its items, chosen by a
    permutation seeded with `SPLIT_SEED`, are the test split."""
    import torch
    from torch.utils.data import Subset

    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(SPLIT_SEED))
    n_test = max(1, int(len(dataset) * HELD_OUT_TEST_FRACTION))
    return Subset(dataset, order[n_test:].tolist()), Subset(dataset, order[:n_test].tolist())


def _num_classes(reference: str, *datasets: Any) -> int:
    """``len(classes)``, else a ``num_classes`` attribute, else the largest label + 1 (from
    ``targets`` when present, else from every item)."""
    bases = [d.dataset if hasattr(d, "dataset") and hasattr(d, "indices") else d for d in datasets]
    classes = getattr(bases[0], "classes", None)
    if classes is not None and len(classes) > 0:
        return len(classes)
    declared = getattr(bases[0], "num_classes", None)
    if isinstance(declared, numbers.Integral) and not isinstance(declared, bool) and declared > 0:
        return int(declared)
    if getattr(bases[0], "targets", None) is not None:  # e.g. torchvision's classes: the labels without the images
        import torch

        unique = {id(base): base for base in bases}.values()
        labels = torch.cat([torch.as_tensor(base.targets).flatten().long() for base in unique]).tolist()
    else:
        labels = [read_item(d, i, reference)[1] for d in datasets for i in range(len(d))]
    largest = max(labels)
    if min(labels) < 0:
        raise UserError(f"dataset: {reference}: labels must be class indices 0, 1, ...; found {min(labels)}")
    return largest + 1


@functools.lru_cache(maxsize=4)
def _raw_splits(dataset: str, data_dir: str):
    """uint8 images (N, H, W) and labels for train and test; cached per process."""
    if dataset == "digits":
        return _digits()
    return _torchvision(dataset, Path(data_dir))


def _digits():
    """scikit-learn's bundled 8x8 digits, split like a single referenced dataset (`held_out_split`)."""
    import torch
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy(bunch.images * (255.0 / 16.0)).round().to(torch.uint8)
    y = torch.from_numpy(bunch.target).long()
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(SPLIT_SEED))
    n_test = int(len(y) * HELD_OUT_TEST_FRACTION)
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

"""Seconds per epoch: `lrtrack.train.run` vs the studies' torchvision DataLoader + ToTensor loop.

Both sides train the same model (`lrtrack.models.build_model`) with Adam at the same
batch size and then evaluate the test split in batches of 1,000; one epoch = that
train pass plus that evaluation. The reference is the loop the published studies
use: ``DataLoader(datasets.X(root, transform=ToTensor()), batch_size=64, shuffle=True)``,
``num_workers=0``, ``loss.item()`` per step. Rounds alternate (lrtrack, loop, lrtrack,
loop, ...); the first round is a warm-up; medians are reported with their ratio.

    python benchmarks/bench_epoch.py --quick          # about a minute on 2 CPU cores
    python benchmarks/bench_epoch.py                  # full splits
    python benchmarks/bench_epoch.py --device cuda    # on a GPU machine

Targets: issue 2, fcn/Fashion-MNIST <= 0.25x; issue 6, fcn <= 0.2x and cnn <= 0.7x on CPU.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from _common import median, parser, setup

from lrtrack.config import TrainConfig


@dataclass
class Case:
    name: str
    config: TrainConfig
    target: float  #: issue 6's ratio target on CPU


def cases(quick: bool, device: str, mnist_root: str) -> list[Case]:
    fashion = {"train_size": 15000, "test_size": 2500} if quick else {}
    mnist = {"train_size": 4000, "test_size": 1000} if quick else {}
    return [
        Case("fcn, Fashion-MNIST, batch 64", TrainConfig(dataset="fashion-mnist", model="fcn", batch_size=64,
                                                         epochs=1, device=device, **fashion), 0.2),
        Case("cnn, MNIST subset, batch 64", TrainConfig(dataset="mnist", data_dir=mnist_root, model="cnn", batch_size=64,
                                                        epochs=1, device=device, **mnist), 0.7),
    ]


def lrtrack_epoch(config: TrainConfig) -> float:
    from lrtrack.train import run

    return run(config).history[0]["perf/epoch_seconds"]


def dataloader_epoch(config: TrainConfig) -> float:
    """One epoch of the studies' loop: DataLoader + ToTensor, then the test pass."""
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, Subset
    from torchvision import datasets, transforms

    from lrtrack.data import default_data_dir
    from lrtrack.models import build_model
    from lrtrack.train import resolve_device

    device = resolve_device(config.device)
    dataset_class = {"mnist": datasets.MNIST, "fashion-mnist": datasets.FashionMNIST}[config.dataset]
    root = default_data_dir(config.data_dir)
    train_set = dataset_class(root, train=True, transform=transforms.ToTensor())
    test_set = dataset_class(root, train=False, transform=transforms.ToTensor())
    if config.train_size:
        train_set = Subset(train_set, range(config.train_size))
    if config.test_size:
        test_set = Subset(test_set, range(config.test_size))
    train_loader = DataLoader(train_set, batch_size=config.batch_size, shuffle=True)
    test_loader = DataLoader(test_set, batch_size=config.eval_batch_size)
    model = build_model(config, (1, 28, 28), 10).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)

    tick = time.perf_counter()
    model.train()
    running_loss, correct = 0.0, 0
    for x, y in train_loader:
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        output = model(x)
        loss = F.cross_entropy(output, y)
        loss.backward()
        optimizer.step()
        running_loss += loss.item()
        correct += (output.argmax(1) == y).sum().item()
    model.eval()
    test_loss, test_correct = 0.0, 0
    with torch.no_grad():
        for x, y in test_loader:
            x, y = x.to(device), y.to(device)
            output = model(x)
            test_loss += F.cross_entropy(output, y, reduction="sum").item()
            test_correct += (output.argmax(1) == y).sum().item()
    return time.perf_counter() - tick


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    args = p.parse_args()
    setup(args)
    rounds = args.rounds or (2 if args.quick else 3)
    print("| case | lrtrack s/epoch | DataLoader loop s/epoch | ratio | target |")
    print("|---|---|---|---|---|")
    for case in cases(args.quick, args.device, args.mnist_root):
        from lrtrack.data import load_data
        from lrtrack.train import resolve_device

        load_data(case.config, resolve_device(args.device))  # files in place (Debian's Fashion-MNIST unpacked)
        ours, theirs = [], []
        for round_number in range(rounds + 1):
            a, b = lrtrack_epoch(case.config), dataloader_epoch(case.config)
            if round_number:  # round 0 warms up both sides
                ours.append(a)
                theirs.append(b)
        n = case.config.train_size or "all"
        ratio = median(ours) / median(theirs)
        print(f"| {case.name} ({n} train) | {median(ours):.3f} | {median(theirs):.3f} | "
              f"**{ratio:.3f}x** | <= {case.target}x |", flush=True)


if __name__ == "__main__":
    main()

"""The one training function every entry point shares: `run(config, logger) -> RunResult`.

It reads top to bottom: seed, device, data, model, optimizer, scheduler, then per
epoch train and evaluate (under ``no_grad``) and log one row of metrics.

When the learning rate changes
------------------------------
Per-epoch schedulers (``step``, ``cosine``, ``exponential``, ``plateau``, and the
linear warm-up) step once *after* each epoch's training, so the rate logged as
``lr`` for epoch *e* is the rate every batch of epoch *e* used. With
``StepLR(step_size=5, gamma=0.5)`` and ``lr=0.05`` epochs 1-5 train at 0.05 and
epochs 6-10 at 0.025 -- calling ``scheduler.step()`` at the start of the epoch
instead is the classic off-by-one that makes epoch 5 use 0.025. ``onecycle``
steps after every batch; its logged ``lr`` is the mean rate over the epoch.

Divergence
----------
A NaN/inf train loss, or one above ``diverge_loss``, ends the run early with
``state = "diverged"`` in the summary rather than an exception.
"""

from __future__ import annotations

import math
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from lrtrack.faults import fault_point
from lrtrack.metrics import BEST_EPOCH, BEST_VAL_ACC, PERF_EPOCH_SECONDS, PERF_OVERHEAD_SECONDS, PERF_RUN_SECONDS, PERF_SAMPLES_PER_SECOND, TRAIN_ACC, TRAIN_LOSS, VAL_ACC, VAL_LOSS
from lrtrack.states import State
from lrtrack.tracking import MemoryLogger, RunLogger

if TYPE_CHECKING:
    import torch

    from lrtrack.config import TrainConfig
    from lrtrack.data import Split, StreamSplit


#: Called after each epoch with that epoch's metrics; returning a state
#: (e.g. ``"early-stopped"``) ends the run there.
EpochHook = Callable[[dict[str, Any]], "str | None"]


@dataclass
class RunResult:
    """What a run produced: its final state, per-epoch history and summary."""

    config: TrainConfig
    state: str
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    wandb_run_id: str | None = None

    @property
    def final(self) -> dict[str, Any]:
        return self.history[-1] if self.history else {}


def run(config: TrainConfig, logger: RunLogger | None = None, on_epoch: EpochHook | None = None) -> RunResult:
    """Train ``config`` to the end (or divergence / early stop) and log everything to ``logger``."""
    import torch

    from lrtrack.data import load_data
    from lrtrack.models import build_model

    logger = logger or MemoryLogger()
    # 1. seed: weights from config.seed, data order from its own generator
    torch.manual_seed(config.seed)
    order_generator = torch.Generator().manual_seed(config.seed + 1)
    # 2. device
    device = resolve_device(config.device)
    # 3. data: whole splits on the device (resident) or a DataLoader (streaming), see lrtrack.data
    data = load_data(config, device)
    config = config.model_copy(update={"data_path": data.path})  # the path taken, as logged
    augment_generator = torch.Generator().manual_seed(config.seed + 2) if config.augment else None
    # 4. model
    model = build_model(config, data.input_shape, data.num_classes).to(device)
    if config.model in ("cnn", "cnn-small"):  # channels_last convolutions: ~0.8x the CPU epoch time (benchmarks/)
        model = model.to(memory_format=torch.channels_last)
    if config.compile:
        model = torch.compile(model)
    # 5. optimizer and scheduler
    optimizer = build_optimizer(config, model.parameters())
    steps_per_epoch = batches_per_epoch(len(data.train), config.batch_size, config.drop_last)
    scheduler = build_scheduler(config, optimizer, steps_per_epoch)
    per_batch = config.scheduler == "onecycle"

    record = Recorder(config, logger, data_summary(data))
    state, error = State.FINISHED, None
    try:
        for epoch in range(1, config.epochs + 1):
            tick = time.perf_counter()
            train_loss, train_acc, lr_used = train_epoch(
                model, optimizer, scheduler if per_batch else None, data.train, config, order_generator, augment_generator
            )
            val = evaluate(model, data.eval_split, config)
            test = evaluate(model, data.test, config) if data.val is not None else None
            metrics = epoch_metrics(epoch, train_loss, train_acc, val, test, lr_used, time.perf_counter() - tick, len(data.train))
            if stop := record.end_epoch(metrics, lambda: _snapshot(model), scheduler, on_epoch):
                state = stop
                break
    except KeyboardInterrupt:
        state = State.INTERRUPTED
        raise
    except Exception as exc:
        state, error = State.FAILED, exc
        raise
    finally:
        try:
            result = record.finish(state, lambda: _snapshot(model), error)
        finally:
            data.close()  # a streaming path's worker processes end with the run
    return result


class Recorder:
    """One run's bookkeeping, shared by `run` and packed training (`lrtrack.pack`).

    It starts the logger, and after each epoch logs the row, keeps the best weights,
    detects divergence, steps a per-epoch scheduler and asks the hook whether to stop;
    `finish` logs the checkpoints and curves and the summary.
    """

    def __init__(self, config: TrainConfig, logger: RunLogger, data: dict[str, Any] | None = None) -> None:
        self.config, self.logger = config, logger
        self.data = dict(data or {})  #: `data_summary`: what the data turned out to be, kept in the summary
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] = {VAL_ACC: -1.0, "epoch": 0, "weights": None}  # the best epoch so far
        tick = time.perf_counter()
        logger.start(config)
        self.started = time.perf_counter()
        self.start_seconds = self.started - tick  # W&B init

    def end_epoch(self, metrics: dict[str, Any], weights: Callable[[], dict], scheduler: Any,
                  on_epoch: EpochHook | None) -> str | None:
        """Record one epoch; returns the state the run ends in if it ends here, else None."""
        self.history.append(metrics)
        self.logger.log_epoch(metrics)
        if metrics[VAL_ACC] > self.best[VAL_ACC]:
            self.best = {VAL_ACC: metrics[VAL_ACC], "epoch": metrics["epoch"], "weights": weights()}
        diverged = is_diverged(metrics[TRAIN_LOSS], self.config.diverge_loss)
        if not diverged and scheduler is not None and self.config.scheduler != "onecycle":  # onecycle: per batch
            step_epoch_scheduler(scheduler, metrics[VAL_LOSS])
        stop = on_epoch(metrics) if on_epoch is not None else None  # the hook sees every row, the last one too
        return State.DIVERGED if diverged else stop

    def finish(self, state: str, weights: Callable[[], dict], error: BaseException | None = None) -> RunResult:
        """Checkpoints and curves (when an epoch ran), then the summary; the run's result.

        A ``failed`` run's summary holds its one-line ``error`` and the path of its
        ``traceback`` file, saved with the run's files (``error`` None: the exception
        being handled, as in `lrtrack.pack`).

        ``perf/overhead_seconds`` is everything but the epochs' training and evaluation:
        W&B init, per-epoch logging and hooks (store writes), checkpoints and the curves
        figure (W&B's own finish comes after the summary and is not in it).
        """
        run_seconds = time.perf_counter() - self.started
        tick = time.perf_counter()
        if self.history:
            fault_point("checkpoint")
            _log_files(self.logger, self.config, weights(), self.best, self.history)
        files_seconds = time.perf_counter() - tick
        summary = {**_summary(self.history, self.best, state, run_seconds), **self.data}
        error = error or (sys.exc_info()[1] if state == State.FAILED else None)
        if isinstance(error, Exception):
            summary["error"] = describe_error(error)
            summary["traceback"] = str(save_traceback(error, self.logger.files_dir))
        training = sum(row[PERF_EPOCH_SECONDS] for row in self.history)
        summary[PERF_OVERHEAD_SECONDS] = self.start_seconds + run_seconds - training + files_seconds
        self.logger.finish(summary)
        return RunResult(config=self.config, state=state, history=self.history, summary=summary,
                         wandb_run_id=self.logger.run_id)


def data_summary(data) -> dict[str, Any]:
    """What a run's summary records about its data: ``num_classes`` (reports take the chance
    level from it) and one sample's ``input_shape``."""
    return {"num_classes": data.num_classes, "input_shape": list(data.input_shape)}


def describe_error(exc: BaseException) -> str:
    """One line for a run's error: the exception's type and the first line of its message."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def save_traceback(exc: BaseException, folder) -> Path:
    """Write ``exc``'s full traceback to ``folder/traceback.txt``; returns the file."""
    path = Path(folder) / "traceback.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(traceback.format_exception(exc)))
    return path


def epoch_metrics(epoch: int, train_loss: float, train_acc: float, val: dict[str, float], test: dict[str, float] | None,
                  lr: float, seconds: float, samples: int) -> dict[str, Any]:
    """One history row: epoch, train/*, val/* (and test/*), lr used, epoch time and throughput."""
    metrics = {"epoch": epoch, TRAIN_LOSS: train_loss, TRAIN_ACC: train_acc, **_prefixed("val", val)}
    if test is not None:
        metrics.update(_prefixed("test", test))
    metrics.update({"lr": lr, PERF_EPOCH_SECONDS: seconds, PERF_SAMPLES_PER_SECOND: samples / seconds})
    return metrics


def train_epoch(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batch_scheduler: Any,
    split: Split | StreamSplit,
    config: TrainConfig,
    generator: torch.Generator,
    augment_generator: torch.Generator | None = None,
) -> tuple[float, float, float]:
    """One pass over ``split`` in a seeded random order; returns (mean loss, accuracy, lr used).

    The order is drawn here, from ``generator``, whichever path serves the batches
    (`lrtrack.data`), so resident and streaming runs see the same batches. With
    ``augment_generator`` each batch is augmented (`augment`).

    The lr used is the rate of the epoch's first batch, or the mean over its batches
    when a per-batch scheduler changes it during the epoch.

    Loss and correct counts accumulate on the device and are read once, at the end.
    """
    import torch
    import torch.nn.functional as F

    model.train()
    n, size = len(split), config.batch_size
    device = next(model.parameters()).device
    order = torch.randperm(n, generator=generator)
    end = samples_per_epoch(n, size, config.drop_last)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    first_lr, lr_sum, steps = optimizer.param_groups[0]["lr"], 0.0, 0
    mixed_precision = precision_context(config, device)
    for x, y in split.train_batches(order, size, end):
        if augment_generator is not None:
            x = augment(x, augment_generator)
        with mixed_precision:
            logits = model(x)
            loss = F.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        lr_sum += optimizer.param_groups[0]["lr"]
        optimizer.step()
        if batch_scheduler is not None:
            batch_scheduler.step()
        loss_sum += loss.detach() * len(y)
        correct += (logits.argmax(1) == y).sum()
        steps += 1
    loss_value, correct_value = torch.stack([loss_sum, correct.to(loss_sum.dtype)]).tolist()
    lr_used = lr_sum / max(steps, 1) if batch_scheduler is not None else first_lr
    return loss_value / end, correct_value / end, lr_used


def evaluate(model: torch.nn.Module, split: Split | StreamSplit, config: TrainConfig) -> dict[str, float]:
    """Mean loss and accuracy over ``split``, in ``eval_batch_size`` chunks, without gradients."""
    import torch
    import torch.nn.functional as F

    model.eval()
    device = next(model.parameters()).device
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device)
    with torch.no_grad(), precision_context(config, device):
        for x, y in split.eval_batches(config.eval_batch_size):
            logits = model(x).float()
            loss_sum += F.cross_entropy(logits, y, reduction="sum")
            correct += (logits.argmax(1) == y).sum()
    loss_value, correct_value = torch.stack([loss_sum, correct]).tolist()
    return {"loss": loss_value / len(split), "acc": correct_value / len(split)}


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random crop with zero padding and random horizontal flip, per image, of a batch of
    images ``(B, C, H, W)`` (torchvision's ``RandomCrop(size, padding=p)`` and
    ``RandomHorizontalFlip()``): ``p`` is an eighth of the image side, rounded (4 for 28 or 32
    pixels, 1 for 8). Offsets and flips are drawn on the CPU from ``generator`` (seeded ``seed
    + 2``), so both data paths augment the same batches the same way."""
    import torch
    import torch.nn.functional as F

    if x.dim() != 4:
        return x  # not a batch of images: nothing to crop or flip
    b, _, h, w = x.shape
    pad = max(1, round(min(h, w) / 8))
    offsets = torch.randint(0, 2 * pad + 1, (2, b), generator=generator).to(x.device)
    flips = (torch.rand(b, generator=generator) < 0.5).to(x.device)
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = (offsets[0][:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # (B, 1, H, 1)
    cols = (offsets[1][:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # (B, 1, 1, W)
    cols = torch.where(flips[:, None, None, None], cols.flip(-1), cols)
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    channel = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when available, else CPU."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def build_optimizer(config: TrainConfig, params) -> torch.optim.Optimizer:
    """The configured optimizer. SGD, Adam and AdamW use PyTorch's fused kernels (one
    kernel for all parameters; measured faster on CPU, see benchmarks/README.md)."""
    import torch

    params = list(params)
    fused = {"fused": True} if params and params[0].device.type in ("cpu", "cuda") else {}
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov, weight_decay=config.weight_decay, **fused
        )
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay, **fused)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay, **fused)
    return torch.optim.RMSprop(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


def build_scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int):
    """The configured scheduler (None for ``none`` without warm-up); see the module docstring."""
    from torch.optim import lr_scheduler as sched

    if config.scheduler == "onecycle":
        return sched.OneCycleLR(optimizer, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch)
    if config.scheduler == "plateau":
        return sched.ReduceLROnPlateau(optimizer, mode="min", factor=config.gamma, patience=config.step_size)
    remaining = config.epochs - config.warmup_epochs
    main = {
        "none": lambda: sched.LambdaLR(optimizer, lambda _: 1.0) if config.warmup_epochs else None,
        "step": lambda: sched.StepLR(optimizer, step_size=config.step_size, gamma=config.gamma),
        "cosine": lambda: sched.CosineAnnealingLR(optimizer, T_max=remaining),
        "exponential": lambda: sched.ExponentialLR(optimizer, gamma=config.gamma),
    }[config.scheduler]()
    if not config.warmup_epochs:
        return main
    warmup = sched.LinearLR(optimizer, start_factor=1 / (config.warmup_epochs + 1), total_iters=config.warmup_epochs)
    return sched.SequentialLR(optimizer, [warmup, main], milestones=[config.warmup_epochs])


def step_epoch_scheduler(scheduler, val_loss: float) -> None:
    from torch.optim.lr_scheduler import ReduceLROnPlateau

    if isinstance(scheduler, ReduceLROnPlateau):
        scheduler.step(val_loss)
    else:
        scheduler.step()


def batches_per_epoch(n: int, batch_size: int, drop_last: bool) -> int:
    return math.ceil(samples_per_epoch(n, batch_size, drop_last) / batch_size)


def samples_per_epoch(n: int, batch_size: int, drop_last: bool) -> int:
    """How many of ``n`` samples an epoch trains on: all, or whole batches only with ``drop_last``."""
    return n - n % batch_size if drop_last and n >= batch_size else n


def is_diverged(loss: float, threshold: float) -> bool:
    return not math.isfinite(loss) or loss > threshold


def precision_context(config: TrainConfig, device: torch.device):
    """bf16 autocast when ``precision`` is ``bf16``, else a no-op context."""
    import torch

    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16")


def _prefixed(prefix: str, metrics: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}/{k}": v for k, v in metrics.items()}


def _snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _summary(history: list[dict[str, Any]], best: dict[str, Any], state: str, seconds: float) -> dict[str, Any]:
    final = {k: v for k, v in (history[-1] if history else {}).items() if not k.startswith("perf/")}
    return {
        **final,
        "state": state,
        "epochs_run": len(history),
        BEST_VAL_ACC: best[VAL_ACC] if history else None,
        BEST_EPOCH: best["epoch"] if history else None,
        PERF_RUN_SECONDS: seconds,
    }


def _log_files(logger: RunLogger, config: TrainConfig, weights: dict, best: dict[str, Any], history) -> None:
    """Final and best checkpoints as one ``model`` artifact, and the curves figure."""
    import torch

    from lrtrack.charts import curves_figure

    folder = logger.files_dir
    final_path, best_path = folder / "final.pt", folder / "best.pt"
    torch.save(weights, final_path)
    torch.save(best["weights"] or weights, best_path)
    metadata = {"config": config.model_dump(), "best_epoch": best["epoch"], "best_val_acc": best[VAL_ACC]}
    logger.log_checkpoints({"final": final_path, "best": best_path}, metadata)
    logger.log_figure("curves", curves_figure(history, folder / "curves.png", title=config.label()))

"""The training loop of every run of the paper (Sec. 4.4, 5.2, 5.3): :func:`fit`.

One epoch is: Algorithm 1 sets Dspike's temperature by matching the FDG on one minibatch (the
adaptive surrogate only; rank 0 computes, every rank gets its b); SGD over the training split;
one step of the schedule; evaluation on the test split (accuracy and firing rates, Fig. 4); the
tracker's metrics; a checkpoint. The final and the best test accuracy are both kept; tables use
``run.select`` ("final" by default: "best" selects on the test set, as the paper's peers do, and
is optimistic). Accuracies are in percent. With "best" the loop also keeps a CPU copy of the
weights and buffers right after the evaluation of the best epoch (:attr:`FitResult.best_state`,
also in the checkpoint, so a resumed run has it too); :meth:`FitResult.selected_state` gives the
weights that go with the selected accuracy. With "final" nothing extra is kept.

Resume: every epoch reseeds all generators from (seed, epoch, rank) and builds its loader from
(seed, epoch), so a run restarted from an epoch-end checkpoint replays exactly. On SIGTERM the
loop finishes its step, writes a mid-epoch checkpoint with every rank's generator states, and
raises :class:`TrainingInterrupted`; the restarted run replays that epoch's data stream up to the
step and goes on. On CPU either way ends bit-identical to an uninterrupted run (with
``data.workers = 0``, or any worker count: workers are reseeded with the loader every epoch).
SIGINT (Ctrl-C) is handled as SIGTERM: a mid-epoch checkpoint, then :class:`TrainingInterrupted`
(its ``signum`` says which signal came).
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..allocator import retain_freed_memory
from ..data import make_loader
from ..energy import measure_activity
from ..fdg import FIRST_LAYER, fdg
from ..models import SpikingNet
from ..neurons import LIF, use_eager_if_short
from ..temperature import dspike_surrogates, set_temperature, update_temperature
from . import distributed
from .checkpoint import (
    CheckpointError,
    StopSignal,
    cpu_copy,
    derive_seed,
    get_rng_state,
    load_checkpoint,
    save_checkpoint,
    seed_everything,
    set_rng_state,
)
from .config import SELECTIONS, ConfigError, TrainConfig
from .factory import build_optimizer, build_scheduler
from .tracker import NullTracker, Tracker

__all__ = ["PLOT_COLUMNS", "FitResult", "NonFiniteLossError", "TrainingInterrupted", "fit"]

log = logging.getLogger(__name__)

# One row per epoch (DVC plots); cos_sim_* are Algorithm 1's candidates b-db, b, b+db.
PLOT_COLUMNS = (
    "epoch",
    "lr",
    "train_loss",
    "train_acc",
    "test_acc",
    "temperature",
    "cos_sim_down",
    "cos_sim_stay",
    "cos_sim_up",
    "firing_rate",
)
_FDG_STREAM = 1_000_003  # generator key of Algorithm 1's minibatch, apart from every rank's


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; no weight was updated with it."""

    def __init__(self, epoch: int, step: int) -> None:
        self.epoch, self.step = epoch, step
        super().__init__(
            f"loss is NaN or infinite at epoch {epoch}, step {step}; stopped before updating "
            "the weights (the last epoch's checkpoint is kept)"
        )


class TrainingInterrupted(RuntimeError):
    """SIGTERM or SIGINT (``signum``) arrived; a checkpoint (if configured) holds the state after
    ``step`` of ``epoch``."""

    def __init__(
        self, epoch: int, step: int, checkpoint: str, signum: int = signal.SIGTERM
    ) -> None:
        self.epoch, self.step, self.checkpoint, self.signum = epoch, step, checkpoint, signum
        where = f"checkpoint {checkpoint}" if checkpoint else "no checkpoint configured"
        name = signal.Signals(signum).name
        super().__init__(f"{name}: interrupted at epoch {epoch}, step {step} ({where})")


@dataclass
class FitResult:
    """What :func:`fit` returns: the final model, one history row per epoch, the best epoch.

    ``best_state`` is, with ``run.select == "best"`` only, a CPU copy of the model's state_dict
    right after the evaluation of epoch ``best_epoch`` (test accuracy ``best_acc``); else ``None``.
    """

    model: SpikingNet
    history: list[dict[str, Any]]
    best_acc: float
    best_epoch: int
    seconds: float
    run_id: str | None
    best_state: dict[str, torch.Tensor] | None = None

    @property
    def final_acc(self) -> float:
        return self.history[-1]["test_acc"]

    @property
    def temperature(self) -> float | None:
        return self.history[-1]["temperature"]

    def selected_state(self, select: str) -> dict[str, torch.Tensor]:
        """The weights to ship for ``run.select``: the final model's ("final") or the best
        epoch's ("best", which needs a fit run with ``run.select == "best"``)."""
        if select not in SELECTIONS:
            raise ValueError(f"unknown selection {select!r}; expected one of {list(SELECTIONS)}")
        if select == "final":
            return self.model.state_dict()
        if self.best_state is None:
            raise ValueError('no best-epoch weights: fit ran with run.select = "final"')
        return self.best_state


def fit(
    config: TrainConfig,
    model: SpikingNet,
    train_set: Dataset,
    test_set: Dataset,
    *,
    tracker: Tracker | None = None,
) -> FitResult:
    """Train ``model`` as ``config`` (a validated :class:`~dspike.engine.TrainConfig`) says.

    Resumes from ``config.run.checkpoint`` when that file exists. Under torchrun every process
    calls this; only rank 0 writes the checkpoint and talks to ``tracker``. On the CPU, freed
    tensor memory stays with the process for the next step (:mod:`dspike.allocator`).
    """
    config.validate()
    info = distributed.setup()
    if info.device.type == "cpu":
        retain_freed_memory()
    return _Trainer(config, model, train_set, test_set, tracker, info).run()


class _Trainer:
    def __init__(self, config, model, train_set, test_set, tracker, info) -> None:
        self.config, self.info = config, info
        self.train_set, self.test_set = train_set, test_set
        self.tracker: Tracker = tracker if tracker is not None and info.is_main else NullTracker()
        run = config.run
        if config.data.batch_size % info.world_size:
            raise ConfigError(
                "data.batch_size",
                f"{config.data.batch_size} is not divisible by the {info.world_size} processes",
            )
        self.batch = config.data.batch_size // info.world_size
        self.keep_best = run.select == "best"
        self.bf16 = run.bf16 and info.device.type == "cuda"
        if run.bf16 and not self.bf16:
            warnings.warn("run.bf16 applies on GPUs only; training in float32", stacklevel=3)
        self.state = load_checkpoint(run.checkpoint) if run.checkpoint else None
        if self.state is not None:
            self._check_checkpoint(model)
        self.net = distributed.wrap_model(model, info)
        self.model: SpikingNet = distributed.unwrap(self.net)
        self.optimizer = build_optimizer(self.model, config.optim)
        self.scheduler = build_scheduler(self.optimizer, config.optim, run.epochs)
        self.history: list[dict[str, Any]] = []
        self.best_acc, self.best_epoch, self.seconds, self.run_id = -1.0, 0, 0.0, None
        self.best_state: dict[str, torch.Tensor] | None = None
        if self.state is not None:
            self._restore()
        shard = distributed.shard(test_set, info)
        self.test_loader = make_loader(shard, self.batch, False, workers=config.data.workers)
        self.stop = StopSignal()
        self._short_run_eager()

    def _short_run_eager(self) -> None:
        """A run of fewer steps than ``spec.compile_min_steps`` runs its ``compiled`` LIFs on
        the eager kernels: no kernel build for a run too short to repay it."""
        spec, batch = self.config.model.spec, self.config.data.batch_size
        steps = self.config.run.epochs * math.ceil(len(self.train_set) / batch)
        if use_eager_if_short(self.model, steps, spec):
            log.info("%d optimiser steps < neuron.compile_min_steps (%d): the LIFs run their "
                     "eager kernels", steps, spec.compile_min_steps)  # fmt: skip

    # --- checkpoints --------------------------------------------------------------------------

    def _network(self) -> dict[str, Any]:
        """The network a checkpoint must have been written for: name, mode, T and options."""
        m = self.config.model
        return {"name": m.name, "mode": m.mode, "time_steps": m.time_steps, **m.options}

    def _check_checkpoint(self, model: SpikingNet) -> None:
        path, state = self.config.run.checkpoint, self.state
        if state.get("network") != self._network():  # None: written by an older dspike
            raise CheckpointError(
                f"{path} was written for {state.get('network')}, not {self._network()}; "
                "delete it or use another checkpoint path"
            )
        if state["step"] and state["world_size"] != self.info.world_size:
            raise CheckpointError(
                f"{path} stopped mid-epoch with {state['world_size']} processes; resume it "
                f"with that many (got {self.info.world_size})"
            )
        if self.keep_best and state["best_epoch"] and state.get("best_state") is None:
            raise CheckpointError(
                f"{path} keeps no best epoch's weights (written with run.select 'final', or "
                "by an older dspike); resume it with select 'final', or delete it"
            )
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as err:
            raise CheckpointError(f"{path} does not fit the model: {err}") from None

    def _restore(self) -> None:
        s = self.state
        self.optimizer.load_state_dict(s["optimizer"])
        self.scheduler.load_state_dict(s["scheduler"])
        if s["temperature"] is not None:
            set_temperature(self.model, s["temperature"])
        self.history = list(s["history"])
        self.best_acc, self.best_epoch = s["best_acc"], s["best_epoch"]
        self.best_state = s.get("best_state") if self.keep_best else None
        self.seconds, self.run_id = s["seconds"], s["run_id"]
        log.info(
            "resuming %s at epoch %d, step %d",
            self.config.run.checkpoint,
            s["epoch"] + 1,
            s["step"],
        )

    def _save(self, epoch: int, step: int = 0, ranks: list | None = None, extra=None) -> None:
        if not (self.config.run.checkpoint and self.info.is_main):
            return
        save_checkpoint(
            self.config.run.checkpoint,
            {
                "network": self._network(),
                "epoch": epoch,
                "step": step,
                "ranks": ranks or [],
                "epoch_extra": extra or {},
                "world_size": self.info.world_size,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "temperature": self._temperature(),
                "history": self.history,
                "best_acc": self.best_acc,
                "best_epoch": self.best_epoch,
                "best_state": self.best_state,
                "seconds": self.seconds + time.perf_counter() - self.started,
                "run_id": self.tracker.run_id,
            },
        )

    # --- the run ------------------------------------------------------------------------------

    def run(self) -> FitResult:
        cfg = self.config
        self.started = time.perf_counter()
        self.tracker.start(self.run_id)
        self.tracker.log_params(cfg.flat())
        status = "FAILED"
        try:
            with self.stop:
                first = self.state["epoch"] if self.state else 0
                mid_epoch = self.state if self.state and self.state["step"] else None
                for epoch in range(first, cfg.run.epochs):
                    self._epoch(epoch, mid_epoch if epoch == first else None)
            status = "FINISHED"
        except TrainingInterrupted:
            status = "KILLED"
            raise
        finally:
            self.tracker.finish(status)
        self.seconds += time.perf_counter() - self.started
        return FitResult(
            self.model,
            self.history,
            self.best_acc,
            self.best_epoch,
            self.seconds,
            self.tracker.run_id,
            self.best_state,
        )

    def _epoch(self, epoch: int, resume: dict | None) -> None:
        t0 = time.perf_counter()
        if resume is not None:
            extra = dict(resume["epoch_extra"])
        elif self.config.surrogate.name == "dspike_adaptive":
            extra = self._adapt_temperature(epoch)
        else:
            extra = {"temperature": self._temperature()}
        lr = self.optimizer.param_groups[0]["lr"]
        train_loss, train_acc = self._train_epoch(epoch, resume, extra)
        self.scheduler.step()
        test_acc, rate, layer_rates = self._evaluate()
        row = {
            "epoch": epoch + 1,
            "lr": lr,
            "train_loss": train_loss,
            "train_acc": train_acc,
            "test_acc": test_acc,
            "cos_sim_down": None,
            "cos_sim_stay": None,
            "cos_sim_up": None,
            **extra,
            "firing_rate": rate,
            **{f"firing_rate.{k}": v for k, v in layer_rates.items()},
        }
        self.history.append(row)
        if test_acc > self.best_acc:
            self.best_acc, self.best_epoch = test_acc, epoch + 1
            if self.keep_best:  # every rank: test_acc is all-reduced, so all agree on the best
                self.best_state = cpu_copy(self.model.state_dict())
        seconds = time.perf_counter() - t0
        metrics = {k: v for k, v in row.items() if k != "epoch" and v is not None}
        self.tracker.log_metrics({**metrics, "epoch_seconds": seconds}, step=epoch + 1)
        self._save(epoch + 1)
        if self.info.is_main:
            b = row["temperature"]
            log.info(
                "epoch %d/%d  loss %.4f  train %.2f%%  test %.2f%%  lr %.3g%s  %.1fs",
                epoch + 1,
                self.config.run.epochs,
                train_loss,
                train_acc,
                test_acc,
                lr,
                f"  b {b:.2f}" if b is not None else "",
                seconds,
            )

    def _train_epoch(self, epoch: int, resume: dict | None, extra: dict) -> tuple[float, float]:
        cfg, info = self.config, self.info
        seed_everything(cfg.run.seed, epoch, info.rank)
        loader = self._train_loader(epoch)
        own = resume["ranks"][info.rank] if resume else None
        start = resume["step"] if resume else 0
        sums = list(own["sums"]) if own else [0.0, 0.0, 0.0]  # loss * n, correct, n
        batches = iter(loader)
        for _ in range(start):  # replay the data stream (order and augmentation) up to the stop
            next(batches)
        if own:
            set_rng_state(own["rng"])
        self.net.train()
        bar = tqdm(
            total=len(loader.sampler),
            initial=int(sums[2]),
            unit="img",
            unit_scale=True,
            desc=f"epoch {epoch + 1}/{cfg.run.epochs}",
            leave=False,
            dynamic_ncols=True,
            disable=not (info.is_main and cfg.run.progress and sys.stderr.isatty()),
        )
        with bar:
            for step, (x, y) in enumerate(batches, start=start):
                x = x.to(info.device, non_blocking=True)
                y = y.to(info.device, non_blocking=True)
                with self._autocast():
                    out = self.net(x)
                    loss = F.cross_entropy(out, y)
                hits = (out.argmax(1) == y).sum()
                loss_v, correct = torch.stack([loss.detach().float(), hits.float()]).tolist()
                stop, bad = distributed.any_rank(
                    [self.stop.requested, not math.isfinite(loss_v)], info
                )
                if bad:
                    raise NonFiniteLossError(epoch + 1, step + 1)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                n = y.shape[0]
                sums = [sums[0] + loss_v * n, sums[1] + correct, sums[2] + n]
                bar.update(n)
                if step % 10 == 0:
                    bar.set_postfix(
                        loss=f"{sums[0] / sums[2]:.3f}", acc=f"{100 * sums[1] / sums[2]:.1f}"
                    )
                if stop:
                    self._interrupt(epoch, step + 1, sums, extra)
        loss_sum, correct_sum, count = distributed.all_reduce_sum(sums, info)
        return loss_sum / count, 100.0 * correct_sum / count

    def _interrupt(self, epoch: int, step: int, sums: list[float], extra: dict) -> None:
        ranks = distributed.gather_objects({"sums": sums, "rng": get_rng_state()}, self.info)
        self._save(epoch, step, ranks, extra)
        raise TrainingInterrupted(epoch + 1, step, self.config.run.checkpoint, self.stop.signum)

    def _train_loader(self, epoch: int) -> DataLoader:
        """This epoch's loader: order from (seed, epoch), the same on every rank; its workers'
        augmentation from (seed, epoch, rank)."""
        cfg, info = self.config, self.info
        shared = derive_seed(cfg.run.seed, epoch)
        loader = make_loader(
            self.train_set,
            self.batch,
            True,
            workers=cfg.data.workers,
            distributed=info.distributed,
            seed=shared,
        )
        if loader.generator is not None:
            loader.generator.manual_seed(derive_seed(cfg.run.seed, epoch, info.rank))
        return loader

    def _autocast(self):
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.info.device.type, dtype=torch.bfloat16)

    @torch.no_grad()
    def _evaluate(self) -> tuple[float, float | None, dict[str, float]]:
        """Test accuracy (%), overall firing rate (spikes per neuron per step) and per LIF layer."""
        with self._autocast():
            report = measure_activity(self.model, self.test_loader, self.info.device, layers=[])
        lifs = dict(self.model.named_modules())
        names = list(report.firing_rates)
        counts = [float(report.correct), float(report.samples)]
        for name in names:
            m: LIF = lifs[name]
            counts += [m.spike_count, float(m.neuron_steps)]
        totals = distributed.all_reduce_sum(counts, self.info)
        acc = 100.0 * totals[0] / max(totals[1], 1.0)
        spikes, steps = totals[2::2], totals[3::2]
        rates = {n: s / max(k, 1.0) for n, s, k in zip(names, spikes, steps, strict=True)}
        overall = sum(spikes) / max(sum(steps), 1.0) if names else None
        return acc, overall, rates

    # --- Algorithm 1 ----------------------------------------------------------------------------

    def _temperature(self) -> float | None:
        surrogates = dspike_surrogates(self.model)
        return surrogates[0].temperature if surrogates else None

    def _adapt_temperature(self, epoch: int) -> dict[str, float]:
        """Algorithm 1 on rank 0's minibatch of ``surrogate.fdg_batch_size`` training samples.

        Under torchrun every rank gets that minibatch and computes every W-th coordinate of the
        FDG (Eq. 10); their sum is the whole FDG, so Algorithm 1 costs 1/W of its time on one
        process. Every rank then takes rank 0's new b.
        """
        s, info = self.config.surrogate, self.info
        b = self._temperature()
        batch = None
        if info.is_main:
            seed_everything(self.config.run.seed, epoch, _FDG_STREAM)
            pick = torch.randperm(len(self.train_set))[: s.fdg_batch_size].tolist()
            xs, ys = zip(*(self.train_set[i] for i in pick), strict=True)
            batch = torch.stack(xs), torch.as_tensor(ys)
        inputs, targets = (t.to(info.device) for t in distributed.broadcast_object(batch, info))
        reference = None
        if info.distributed:
            numel = dict(self.model.named_parameters())[FIRST_LAYER].numel()
            mine = list(range(info.rank, numel, info.world_size))
            part = fdg(self.model, FIRST_LAYER, inputs, targets, s.fdg_epsilon, indices=mine)
            reference = distributed.all_reduce_tensor(part, info)
        update = update_temperature(
            self.model, inputs, targets, b, delta=s.delta, eps=s.fdg_epsilon, reference=reference
        )
        new_b, sims = distributed.broadcast_object((update.temperature, update.similarities), info)
        set_temperature(self.model, new_b)
        extra = {"temperature": new_b}
        for candidate, sim in sims.items():
            relation = "stay" if math.isclose(candidate, b) else "up" if candidate > b else "down"
            extra[f"cos_sim_{relation}"] = float(sim)
        return extra

"""The one training loop (core.training.fit) on a one-weight model: progress events, a non-finite loss, the best
epoch and resuming from the checkpoint."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
import torch

from core.errors import TrainingError
from core.progress import Progress, run
from core.training.checkpoints import CHECKPOINT, TrainingRun
from core.training.fit import Evaluation, Step, fit, train_one_epoch

STEPS = 3


class Tiny:
    """y = w x fitted to y = 2 x; ``scores`` are the validation scores of epochs 1, 2, ... in order."""

    def __init__(self, scores: list[float], bad_step: int | None = None) -> None:
        torch.manual_seed(0)
        self.model = torch.nn.Linear(1, 1, bias=False)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=1, gamma=0.5)
        self.scaler = torch.amp.GradScaler("cuda", enabled=False)
        self.scores, self.bad_step, self.trained_epochs = scores, bad_step, []

    def parts(self) -> dict:
        return {"model": self.model, "optimizer": self.optimizer, "scheduler": self.scheduler, "scaler": self.scaler}

    def batches(self) -> Iterator[torch.Tensor]:
        for step in range(1, STEPS + 1):
            yield torch.full((4, 1), float("nan") if step == self.bad_step else 1.0)

    def forward(self, x: torch.Tensor) -> Step:
        return Step(((self.model(x) - 2 * x) ** 2).mean(), len(x), {"mse": ((self.model(x) - 2 * x) ** 2).mean()})

    def train_one_epoch(self, epoch: int) -> Iterator[Progress]:
        self.trained_epochs.append(epoch)
        return train_one_epoch(self.model, self.batches(), STEPS, self.forward, self.optimizer, self.scheduler,
                               self.scaler, contextlib.nullcontext, epoch=epoch, epochs=len(self.scores), clip=1.0)

    def evaluate(self, epoch: int) -> Evaluation:
        return Evaluation({"score": self.scores[epoch]}, {"weight": self.model.weight.detach().clone()})

    def fit(self, work, resume: bool = False, stop_after: int | None = None) -> tuple[TrainingRun, list[Progress]]:
        training = TrainingRun(work, self.parts(), score="score", resume=resume)
        events: list[Progress] = []
        job = fit(training, self.train_one_epoch, self.evaluate, epochs=len(self.scores), settings={"lr": 0.1},
                  report=lambda epoch, metrics: Progress("validate", epoch + 1, len(self.scores), "", metrics))
        if stop_after is None:
            return run(job, events.append), events
        for event in job:
            events.append(event)
            if event.stage == "validate" and event.step == stop_after:
                job.close()
                break
        return training, events


def test_fit_trains_reports_each_step_and_epoch_and_keeps_the_best_epoch(tmp_path):
    tiny = Tiny([0.2, 0.9, 0.5])
    training, events = tiny.fit(tmp_path / "w")
    assert [(e.stage, e.step, e.total) for e in events] == [
        *[("train", s, STEPS) for s in (1, 2, 3)], ("validate", 1, 3),
        *[("train", s, STEPS) for s in (1, 2, 3)], ("validate", 2, 3),
        *[("train", s, STEPS) for s in (1, 2, 3)], ("validate", 3, 3)]
    train = [e for e in events if e.stage == "train"]
    assert train[0].message.startswith("epoch 1/3 loss") and train[-1].message.startswith("epoch 3/3 loss")
    assert {"loss", "lr", "epoch", "step_s", "data_s", "items", "items_per_s", "data_wait"} <= set(train[0].metrics)
    assert train[0].metrics["items"] == 4 and train[-1].metrics["epoch"] == 3
    assert train[0].metrics["lr"] == pytest.approx(0.1 * 0.5)  # the scheduler steps after every optimiser step
    assert train[-1].metrics["loss"] < train[0].metrics["loss"]  # it learns
    assert [m["epoch"] for m in training.history] == [1, 2, 3]
    assert training.best["epoch"] == 2 and training.best["score"] == 0.9
    # the best epoch's weights, not the last's, are kept, and they match what was kept with them
    assert torch.equal(training.best_state["weight"], training.best_extra["weight"])
    assert not torch.equal(training.best_state["weight"], tiny.model.weight.detach())
    assert (tmp_path / "w" / CHECKPOINT).is_file()


def test_a_non_finite_loss_raises_a_training_error_naming_the_epoch_and_step(tmp_path):
    tiny = Tiny([0.5, 0.6], bad_step=2)
    with pytest.raises(TrainingError, match=r"loss became nan at epoch 1, step 2 \(mse nan\)"):
        tiny.fit(tmp_path / "w")
    assert not (tmp_path / "w" / CHECKPOINT).exists()  # no epoch ended, nothing checkpointed


def test_a_stopped_run_resumes_after_its_last_checkpointed_epoch(tmp_path):
    first = Tiny([0.9, 0.1, 0.3])
    first.fit(tmp_path / "w", stop_after=1)
    assert first.trained_epochs == [0]
    weight_after_one = first.model.weight.detach().clone()

    again = Tiny([0.9, 0.1, 0.3])
    training, events = again.fit(tmp_path / "w", resume=True)
    assert training.resumed and again.trained_epochs == [1, 2]  # epoch 1 is not trained again
    assert [e.step for e in events if e.stage == "validate"] == [2, 3]
    assert [m["epoch"] for m in training.history] == [1, 2, 3]
    assert training.best["epoch"] == 1  # the best epoch before the stop is still the best
    assert torch.equal(training.best_state["weight"], weight_after_one)
    # the optimiser and the scheduler resumed too: the learning rate carries on from 3 steps in
    first_lr = next(e for e in events if e.stage == "train").metrics["lr"]
    assert first_lr == pytest.approx(0.1 * 0.5 ** 4)


def test_without_a_folder_nothing_is_written_and_ties_can_prefer_the_later_epoch(tmp_path):
    tiny = Tiny([0.5, 0.5])
    training = TrainingRun(None, tiny.parts(), score="score", resume=True, ties=True)
    run(fit(training, tiny.train_one_epoch, tiny.evaluate, epochs=2, settings={}))
    assert training.best["epoch"] == 2
    strict = Tiny([0.5, 0.5])
    training = TrainingRun(None, strict.parts(), score="score", resume=False)
    run(fit(training, strict.train_one_epoch, strict.evaluate, epochs=2, settings={}))
    assert training.best["epoch"] == 1
    assert list(tmp_path.iterdir()) == []

"""Stop conditions (``ExperimentSpec.stop``): stop at an epoch, when the test loss falls below a value, or
when it has not improved for a number of epochs (early stopping, optionally going back to the best weights).

Each play (and each REST train call) is one *run*: a condition fires when it becomes true during the run,
so pressing play again after a stop trains on instead of stopping at once. Conditions are checked between
chunks; the chunks of a run that watches the test loss last at most ``check_epochs`` epochs, so a stop comes
at most that late (and a stop at an epoch comes exactly there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from server.sessions.session import Session

CHECK_EPOCHS = 100  # the most epochs between two looks at the test loss
IMPROVEMENT = 1e-7  # relative: a smaller decrease of the test loss does not count as better


@dataclass
class Run:
    """What one run of a session watches: which conditions are armed, and the best test loss so far."""

    start_epoch: int
    below_armed: bool  # the test loss was not below the threshold when the run began
    best_loss: float | None = None
    best_epoch: int = 0
    best_state: Any = None  # TrainState of the best test loss (immutable arrays: kept by reference)
    best_cfg: Any = None  # the config the best state belongs to (an edit of the network starts the count anew)

    def keep(self, s: Session, loss: float) -> None:
        self.best_loss, self.best_epoch, self.best_state, self.best_cfg = loss, s.epoch, s.state, s.cfg


def begin(s: Session) -> Run:
    """A new run from where the session is: the reason of an earlier stop is forgotten."""
    s.stopped = None
    stop = s.spec.stop
    loss = s.metrics.get("test_loss")
    armed = stop.test_loss_below is None or loss is None or loss >= stop.test_loss_below
    run = Run(start_epoch=s.epoch, below_armed=armed)
    if stop.patience is not None and loss is not None:
        run.keep(s, loss)
    return run


def check_epochs(s: Session) -> int | None:
    """The most epochs the next chunk may train before the conditions are looked at; None = no limit."""
    stop = s.spec.stop
    if not stop.watches_test_loss:
        return None
    if stop.patience is None:
        return CHECK_EPOCHS
    return max(1, min(CHECK_EPOCHS, stop.patience // 10))


def cap(s: Session, run: Run, epochs: int) -> int:
    """``epochs`` cut so the chunk ends on the stop epoch and leaves time to look at the test loss."""
    stop = s.spec.stop
    if stop.at_epoch is not None and run.start_epoch < stop.at_epoch:
        epochs = min(epochs, max(1, stop.at_epoch - s.epoch))
    limit = check_epochs(s)
    return epochs if limit is None else max(1, min(epochs, limit))


def check(s: Session, run: Run) -> str | None:
    """After a chunk (worker thread, lock held): the reason to stop, in words, or None. Refreshes the
    session's metrics when a condition needs the test loss; with ``restore_best`` puts the best weights back."""
    stop = s.spec.stop
    if stop.at_epoch is not None and run.start_epoch < stop.at_epoch <= s.epoch:
        return f"stopped at epoch {stop.at_epoch:,}, as asked"
    if not stop.watches_test_loss:
        return None
    s.metrics = s.engine.metrics(s.cfg, s.state, s.data, s.spec.problem)
    loss = s.metrics.get("test_loss")
    if loss is None:
        return None
    threshold = stop.test_loss_below
    if threshold is not None and run.below_armed and loss < threshold:
        return f"the test loss {loss:.4g} fell below {threshold:g}"
    if stop.patience is None:
        return None
    if run.best_loss is None or run.best_cfg != s.cfg or loss < run.best_loss * (1 - IMPROVEMENT):
        run.keep(s, loss)
        return None
    if s.epoch - run.best_epoch < stop.patience:
        return None
    reason = (
        f"early stopping: the test loss has not improved for {s.epoch - run.best_epoch:,} epochs "
        f"(best {run.best_loss:.4g} at epoch {run.best_epoch:,})"
    )
    if stop.restore_best and run.best_state is not None and run.best_epoch != s.epoch:
        s.state = run.best_state
        s.metrics = s.engine.metrics(s.cfg, s.state, s.data, s.spec.problem)
        reason += f"; the weights of epoch {run.best_epoch:,} are back"
    return reason

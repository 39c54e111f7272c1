"""A one-line progress bar for training epochs (no dependency beyond the standard library)."""

from __future__ import annotations

import sys
import time


class EpochProgress:
    """``wine × residual [#####.....] epoch 12/50  loss 0.1234  diverged 0/100  3.2 s``.

    ``label`` (e.g. the cell, "dataset × block") starts the line. On a terminal the line
    is redrawn in place; otherwise (logs, CI) it is printed at about every 10% of the
    epochs and at the end, so logs stay short.
    """

    def __init__(self, epochs: int, members: int, stream=None, width: int = 24, label: str = ""):
        self.label = label
        self.epochs = epochs
        self.members = members
        self.stream = stream or sys.stdout
        self.width = width
        self.started = time.perf_counter()
        self.interactive = getattr(self.stream, "isatty", lambda: False)()
        self.every = max(1, epochs // 10)

    def update(self, epoch: int, mean_loss: float, diverged: int) -> None:
        done = epoch + 1
        filled = round(self.width * done / self.epochs)
        line = (
            f"    {self.label + ' ' if self.label else ''}[{'#' * filled}{'.' * (self.width - filled)}] "
            f"epoch {done}/{self.epochs}"
            f"  loss {mean_loss:.4f}  diverged {diverged}/{self.members}"
            f"  {time.perf_counter() - self.started:.1f} s"
        )
        if self.interactive:
            self.stream.write("\r" + line + ("\n" if done == self.epochs else ""))
        elif done % self.every == 0 or done == self.epochs:
            self.stream.write(line + "\n")
        self.stream.flush()

"""What a user sees while a run trains, and how it stops when asked to.

`Progress`: on a terminal, one line (step, loss, images/s, ETA) rewritten every few seconds;
elsewhere (a log file, a notebook, CI) a plain line every `config.log_every_steps` steps.

`StopRequest`: SIGTERM (a preempted job) or SIGINT (Ctrl-C) asks the loop to stop after the
current step; the loop then saves a checkpoint and raises `Preempted`. A second Ctrl-C stops
at once.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from typing import TextIO

from absl import logging


def format_duration(seconds: float) -> str:
    """'1h02m', '4m12s' or '37s'."""
    seconds = max(int(round(seconds)), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


class Progress:
    """Progress of steps start+1..num_steps of one phase.

    Args:
      name: the phase ('Training', 'Step II').
      images_per_step: the global batch size.
      stream: where the terminal line goes (stderr).
      refresh_sec: how often the terminal line is rewritten.
    """

    def __init__(
        self,
        name: str,
        *,
        start_step: int,
        num_steps: int,
        images_per_step: int,
        stream: TextIO | None = None,
        refresh_sec: float = 2.0,
    ):
        self.name = name
        self.start_step, self.num_steps = start_step, num_steps
        self.images_per_step = images_per_step
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.refresh_sec = refresh_sec
        self._first = None  # (time, step) after the first step (compilation excluded)
        self._excluded = 0.0  # seconds spent validating and saving, not stepping
        self._last_draw = 0.0
        self._line = False

    def rate(self, step: int) -> tuple[float, float] | None:
        """(images/s, seconds left) measured since the first step finished, or None."""
        now = time.time()
        if self._first is None:
            self._first = (now, step)
            return None
        t0, s0 = self._first
        stepping = now - t0 - self._excluded
        if step <= s0 or stepping <= 0:
            return None
        per_step = stepping / (step - s0)
        return self.images_per_step / per_step, per_step * (self.num_steps - step)

    def exclude(self, seconds: float) -> None:
        """Time spent on something else than steps (validation, checkpoints): not in img/s."""
        if self._first is not None:
            self._excluded += seconds

    def status(self, step: int, loss: float | None) -> str:
        parts = [f"{self.name} step {step}/{self.num_steps}"]
        if loss is not None:
            parts.append(f"loss {loss:.4g}")
        rate = self.rate(step)
        if rate:
            parts += [f"{rate[0]:.0f} img/s", f"ETA {format_duration(rate[1])}"]
        return " | ".join(parts)

    def update(self, step: int, loss_fn) -> None:
        """Called after every step; on a terminal redraws the line at most every refresh_sec.

        Args:
          loss_fn: () -> the step's loss as a float (read only when drawn: it waits for the
            device).
        """
        if self._first is None:
            self.rate(step)
        if not self.tty:
            return
        now = time.time()
        if now - self._last_draw < self.refresh_sec and step != self.num_steps:
            return
        self._last_draw = now
        self.stream.write("\r\033[K" + self.status(step, loss_fn()))
        self.stream.flush()
        self._line = True

    def clear(self) -> None:
        """Removes the terminal line (before a log message)."""
        if self._line:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._line = False

    def log(self, step: int, summary: dict[str, float]) -> None:
        """The periodic plain line: step, the mean loss and accuracy, images/s and ETA."""
        self.clear()
        parts = [f"{self.name} step {step}/{self.num_steps}"]
        for key in ("loss", "accuracy"):
            if key in summary:
                parts.append(f"{key} {summary[key]:.4g}")
        rate = self.rate(step)
        if rate:
            parts += [f"{rate[0]:.0f} img/s", f"ETA {format_duration(rate[1])}"]
        logging.info(" | ".join(parts))


class Preempted(Exception):
    """The run stopped on a signal after saving a checkpoint.

    Attributes:
      step: the step saved.
      signal_name: 'SIGTERM' or 'SIGINT'.
    """

    def __init__(self, step: int, signal_name: str, workdir: str):
        self.step, self.signal_name = step, signal_name
        super().__init__(
            f"{signal_name} received: stopped after step {step} and saved a checkpoint in "
            f"{workdir}; re-run the same command to resume from it."
        )

    @property
    def exit_code(self) -> int:
        return 128 + (signal.SIGTERM if self.signal_name == "SIGTERM" else signal.SIGINT)


class StopRequest:
    """Within `with StopRequest() as stop:`, SIGTERM/SIGINT set `stop.signal_name` instead of
    killing the process (main thread only; elsewhere it never fires)."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.signal_name: str | None = None
        self._previous = {}

    def _handle(self, signum, frame):
        if self.signal_name == "SIGINT" and signum == signal.SIGINT:
            raise KeyboardInterrupt  # A second Ctrl-C: stop now.
        self.signal_name = signal.Signals(signum).name
        logging.warning(
            "%s received: finishing the current step, then saving a checkpoint.", self.signal_name
        )

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

"""What every command shares: error mapping, progress on stderr, JSON on stdout, common options."""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from typer.core import TyperGroup

from hvg_cli.core.errors import HvgError, Interrupted

err_console = Console(stderr=True, highlight=False)

# Options shared by several commands -------------------------------------------------------
CacheDirOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--cache-dir", help="Stage cache folder (default: $HVG_CACHE_DIR or ~/.cache/hvg).", show_default=False
    ),
]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Compute every stage afresh and store nothing.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one machine-readable JSON result on stdout.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or notes on stderr.")]


class _Interrupt:
    """Ctrl-C, remembered: third-party code can swallow a KeyboardInterrupt (protobuf does, when it lands while
    mediapipe is being imported), so the next progress report raises it again and the command still exits 130."""

    pressed = False

    @classmethod
    def handler(cls, signum: int, frame: Any) -> None:
        cls.pressed = True
        raise KeyboardInterrupt

    @classmethod
    def check(cls) -> None:
        if cls.pressed:
            raise KeyboardInterrupt


def maps_errors(fn: Callable) -> Callable:
    """Turn hvg's typed errors into one clear line on stderr and their exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _Interrupt.pressed = False
        try:
            previous = signal.signal(signal.SIGINT, _Interrupt.handler)
        except ValueError:  # not the main thread: keep Python's own handling
            previous = None
        try:
            result = fn(*args, **kwargs)
            _Interrupt.check()  # pressed, swallowed, and nothing reported since
            return result
        except (typer.Exit, typer.BadParameter):  # usage errors: Typer prints them, exit 2
            raise
        except HvgError as e:
            _print_error(e.kind, e.message, e.hint)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            _print_error(
                Interrupted.kind, "stopped by the user", "re-run the same command: finished stages come from the cache"
            )
            raise typer.Exit(Interrupted.exit_code) from None
        except Exception as e:  # a bug: say so, keep the traceback behind HVG_DEBUG
            if os.environ.get("HVG_DEBUG"):
                raise
            _print_error(
                "internal error", f"{type(e).__name__}: {e}", "set HVG_DEBUG=1 for the traceback and report it"
            )
            raise typer.Exit(1) from None
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)

    return wrapper


class OneLineUsageErrors(TyperGroup):
    """The app's group: a usage error (unknown flag, bad value) is one line on stderr and exit 2, like every
    other error, instead of click's usage block. `--help` and a bare command still show the help."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            rv = super().main(
                args, prog_name, complete_var, standalone_mode=False, windows_expand_args=windows_expand_args, **extra
            )
        except typer.TyperException as e:  # click's exceptions (Typer vendors click)
            if type(e).__name__ == "NoArgsIsHelpError":  # a bare command: its help, as click shows it
                e.show()  # type: ignore[attr-defined]  # click's NoArgsIsHelpError has show(); its base does not
            else:
                ctx = getattr(e, "ctx", None)
                where = f"see `{ctx.command_path} --help`" if ctx is not None else "see `hvg --help`"
                _print_error("usage error", e.format_message().replace("\n", " "), where)
            rv = getattr(e, "exit_code", 2)
        except typer.Abort:
            _print_error(Interrupted.kind, "stopped by the user", None)
            rv = Interrupted.exit_code
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) else 0)


def _print_error(kind: str, message: str, hint: str | None) -> None:
    line = f"hvg: {kind}: {message}"
    if hint:
        line += f" — {hint}"
    err_console.print(line, markup=False, soft_wrap=True)


def emit_json(obj: Any) -> None:
    """One JSON document on stdout."""
    sys.stdout.write(json.dumps(obj, indent=2, default=_json_default) + "\n")
    sys.stdout.flush()


def emit_json_line(obj: Any) -> None:
    """One JSON document on one line of stdout (a stream of results: `hvg batch --json`)."""
    sys.stdout.write(json.dumps(obj, default=_json_default) + "\n")
    sys.stdout.flush()


def _json_default(o: Any) -> Any:
    from fractions import Fraction

    if isinstance(o, Path):
        return str(o)
    if isinstance(o, Fraction):
        return float(o)
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


class _RichTask:
    """One bar: advancing it also refreshes its rate column ("12.3 frames/s")."""

    def __init__(self, progress: Progress, task_id: TaskID, unit: str):
        self._progress = progress
        self._id = task_id
        self._unit = unit

    def advance(self, n: int = 1) -> None:
        _Interrupt.check()
        self._progress.advance(self._id, n)
        t = next(t for t in self._progress.tasks if t.id == self._id)
        speed = t.finished_speed or t.speed
        self._progress.update(self._id, rate=f"{speed:.1f} {self._unit}/s" if speed else "")


class RichReporter:
    """Progress bars with a rate column, and notes, on stderr.

    Tasks opened inside another task (a batch's current job inside its jobs bar) show as bars beneath it and
    go away when they end; the outermost bar stays on screen.
    """

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.notes: list[str] = []
        self._progress: Progress | None = None
        self._open = 0

    @contextmanager
    def task(self, description: str, total: int | None, unit: str = "frames") -> Iterator[_RichTask]:
        _Interrupt.check()
        if self._progress is None:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=err_console,
                disable=self.quiet,
                transient=False,
            )
            self._progress.start()
        progress = self._progress
        nested = self._open > 0
        tid = progress.add_task(description, total=total, rate="")
        self._open += 1
        try:
            yield _RichTask(progress, tid, unit)
        finally:
            self._open -= 1
            if nested:
                progress.remove_task(tid)
            if self._open == 0:
                progress.stop()
                self._progress = None

    def note(self, message: str) -> None:
        _Interrupt.check()
        self.notes.append(message)
        if not self.quiet:
            err_console.print(f"[dim]hvg:[/dim] {message}", soft_wrap=True)

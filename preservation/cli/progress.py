"""A progress bar on a terminal, nothing otherwise."""

from __future__ import annotations

import contextlib
import threading
from typing import Callable, Iterator

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn, TransferSpeedColumn

from .common import show_progress


@contextlib.contextmanager
def byte_progress(quiet: bool = False) -> Iterator[Callable[[str, int, int], None] | None]:
    """Yields ``update(phase, bytes, files)`` or None when no bar should be drawn."""
    if quiet or not show_progress():
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TextColumn("{task.fields[files]} files"), TimeElapsedColumn())
    with Progress(*columns, transient=True) as bar:
        tasks: dict[str, int] = {}
        lock = threading.Lock()  # copies after the first are written side by side, each reporting

        def update(phase: str, nbytes: int, files: int) -> None:
            with lock:
                if phase not in tasks:
                    tasks[phase] = bar.add_task(phase, total=None, files=0)
                task = bar.tasks[tasks[phase]]
                bar.update(tasks[phase], advance=nbytes, files=task.fields["files"] + files)

        yield update

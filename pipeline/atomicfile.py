"""Crash-safe file replacement: the one way we persist state (checkpoints, alert state).

`write_atomic` writes `<path>.tmp`, fsyncs it, optionally renames the current
file to a backup, renames the temp file over `path` and fsyncs the folder, so a
crash (SIGKILL, power loss) leaves the old content or the new, never a torn
file. Files are created owner-only (0600) and folders 0700: state files hold
paths and log positions, and dead-letter files hold raw log lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

FILE_MODE = 0o600
DIR_MODE = 0o700


def make_dirs(path: Path, mode: int) -> None:
    """Create `path` and every missing parent with `mode` (umask may only remove bits).

    `Path.mkdir(parents=True)` and `os.makedirs` give parents the default 0777 minus
    the umask: under umask 000 that is a world-writable folder above our files.
    Existing folders are left as they are."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=mode)
        except FileExistsError:
            pass  # created meanwhile (another thread or process)


def ensure_dir(path: Path) -> None:
    """Create `path` (and missing parents) owner-only; an existing folder is left as it is."""
    make_dirs(path, DIR_MODE)


def tmp_path(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


def write_atomic(path: Path, data: bytes, backup: Path | None = None) -> None:
    """Replace `path` with `data` atomically and durably (blocking: run it in a thread on the loop)."""
    directory = path.parent
    ensure_dir(directory)
    tmp = tmp_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    if backup is not None:
        with contextlib.suppress(FileNotFoundError):
            os.replace(path, backup)
    os.replace(tmp, path)
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the renames themselves must survive a power cut
    finally:
        os.close(dir_fd)


async def write_in_thread(fn: Callable[[T], None], arg: T) -> None:
    """`fn(arg)` (a file write) in a thread; if the caller is cancelled meanwhile, still wait for the
    thread to end before the cancellation goes on. Writers hold a lock around their write:
    releasing it while the thread still writes would let the next write (a final one at shutdown)
    run beside it on the same temporary file."""
    future = asyncio.ensure_future(asyncio.to_thread(fn, arg))
    try:
        await asyncio.shield(future)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await future
        raise

"""Artifact folders written atomically: a training that fails or is interrupted leaves the
previous artifacts exactly as they were, and the services still start on them."""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

__all__ = ["staged_directories"]


@contextlib.contextmanager
def staged_directories(*directories: Path) -> Iterator[tuple[Path, ...]]:
    """Write artifact folders atomically: yields an empty staging folder beside each target;
    when the block succeeds, each target is replaced by its staging folder, all at once and
    with SIGINT/SIGTERM held back; when it fails (or is interrupted), the targets stay as
    they were and the staging folders are removed."""
    for target in directories:
        _recover(target)
    staged = tuple(d.parent / f".{d.name}.staged-{os.getpid()}" for d in directories)
    for folder in staged:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    try:
        yield staged
    except BaseException:
        for folder in staged:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        retired = []
        for target, folder in zip(directories, staged):
            if target.exists():
                old = target.parent / f".{target.name}.old-{os.getpid()}"
                target.rename(old)
                retired.append(old)
            folder.rename(target)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
    for old in retired:
        shutil.rmtree(old, ignore_errors=True)


def _recover(target: Path) -> None:
    """Clean up after a training that was killed (SIGKILL cannot be held back): remove its
    staging folders, and put the previous artifacts back if it died in the middle of the swap."""
    for leftover in sorted(target.parent.glob(f".{target.name}.*-*")):
        kind, _, pid = leftover.name.rpartition("-")
        if not pid.isdigit() or _alive(int(pid)):
            continue
        if kind.endswith(".old") and not target.exists():
            leftover.rename(target)
        else:
            shutil.rmtree(leftover, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

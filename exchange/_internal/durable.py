"""Durability helpers shared by everything that keeps state in files. Unstable API."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["fsync_dir"]


def fsync_dir(directory: Path) -> None:
    """Flush ``directory``'s entries to disk.

    A file created, renamed or removed is durable only once its directory is: fsyncing the
    file itself does not persist the name that points at it (POSIX; ext4 and XFS honour it).
    """
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

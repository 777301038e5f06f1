"""Keys a development instance keeps under ``./var/`` when none is configured."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def kept_in(path: Path, generate: Callable[[], str]) -> tuple[str, bool]:
    """(the key stored in ``path``, whether it was made now). Of several workers starting at
    once, one writes the key (O_EXCL) and all read it."""
    try:
        return path.read_text(), False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = generate()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(), False
    with os.fdopen(fd, "w") as out:
        out.write(key + "\n")
    return key, True

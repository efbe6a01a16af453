"""Where a `langgraph.json` key points: ``./path/to/file.py:name`` or ``package.module:name``.

Checked when the file is read (the file must exist), imported later (``loader.import_target``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_MODULE = re.compile(r"^[A-Za-z_][\w.]*$")
_ATTR = re.compile(r"^[A-Za-z_]\w*$")


class ProjectError(ValueError):
    """The project cannot be served; the message names the file and the key."""


@dataclass(frozen=True)
class Target:
    """Where an object lives: a file (``./src/agent/graph.py:graph``) or a module (``pkg.mod:attr``)."""

    spec: str  # as written in langgraph.json
    attr: str
    file: Path | None = None
    module: str | None = None


def parse_target(value: Any, key: str, config_file: Path) -> Target:
    where = f"{config_file}: {key}"
    if not isinstance(value, str) or ":" not in value:
        raise ProjectError(
            f"{where}: must be 'path/to/file.py:attribute' or 'module:attribute', got {value!r}"
        )
    location, _, attr = value.rpartition(":")
    if not _ATTR.match(attr):
        raise ProjectError(f"{where}: {attr!r} after the ':' is not a Python name (in {value!r})")
    if location.endswith(".py") or "/" in location:
        file = (config_file.parent / location).resolve()
        if not file.is_file():
            raise ProjectError(f"{where}: file {location!r} not found (looked for {file})")
        return Target(value, attr, file=file)
    if not _MODULE.match(location):
        raise ProjectError(f"{where}: {location!r} is neither a .py file nor a module name (in {value!r})")
    return Target(value, attr, module=location)

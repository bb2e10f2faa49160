"""What a client sees of the server's file system: paths relative to the folders it knows.

A client names runs by their folder name and image folders by theirs (``/api/datasets``); the
server's own layout (its runs folder, its data folders, the home folder of the user it runs as)
is none of its business. Every JSON answer, error and job event passes through ``PublicPaths``
once, on its way out (``core/errors.JSONResponse`` and the job event stream), so no route has to
remember it: ``/srv/sightline/runs/mnist-1/report.html`` reaches the client as
``mnist-1/report.html``, "no run named 'x' in /srv/sightline/runs" as "... in the runs folder",
``/data/photos/cats/1.jpg`` as ``photos/cats/1.jpg``, anything else under the home folder as
``~/...``.
"""

from __future__ import annotations

import contextvars
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sightline.serve.core.jsonable import finite

RUNS_FOLDER = "the runs folder"


class PublicPaths:
    def __init__(self, runs_dir: Path, data_dirs: Iterable[Path] = ()) -> None:
        pairs: dict[str, str] = {}
        for folder, shown in (
            *((d, Path(d).resolve().name) for d in data_dirs),
            (runs_dir, None),
            (Path.home(), "~"),
        ):
            for form in {str(Path(folder).resolve()), str(Path(folder).absolute())}:
                if form not in pairs and len(form) > 1:  # never "/" itself
                    pairs[form] = shown if shown is not None else ""
        # Longest first: a data folder inside the runs folder keeps its own name.
        self._pairs = sorted(pairs.items(), key=lambda kv: -len(kv[0]))
        alternatives = "|".join(re.escape(p) for p, _ in self._pairs)
        # A known folder, then its separator (a path inside it) or the end of the name: not
        # "/srv/runs2" nor "/srv/runs.bak" for /srv/runs, but "/srv/runs." ending a sentence.
        sep = re.escape(os.sep)
        self._pattern = re.compile(f"({alternatives})(?:({sep})|(?![\\w-]|\\.\\w))")
        self._shown = dict(self._pairs)

    def text(self, text: str) -> str:
        """``text`` with every path under a known folder made relative to it."""
        if os.sep not in text:
            return text
        return self._pattern.sub(self._replace, text)

    def _replace(self, match: re.Match[str]) -> str:
        shown = self._shown[match.group(1)]
        if match.group(2):  # a path inside the folder
            return shown + os.sep if shown else ""
        return shown or RUNS_FOLDER

    def value(self, value: Any) -> Any:
        """``value`` (JSON-ready: dicts, lists, strings, numbers) with every string made public."""
        return finite(value, self.text)


# The paths of the app answering the current request (set by ``core.guards.ShowPublicPaths``).
current: contextvars.ContextVar[PublicPaths | None] = contextvars.ContextVar(
    "sightline_public_paths", default=None
)


def public_text() -> Callable[[str], str] | None:
    """What makes a string public for the current request's client (None outside a request):
    ``jsonable.finite`` applies it on the one walk over an answer."""
    paths = current.get()
    return None if paths is None else paths.text


class ShowPublicPaths:
    """ASGI middleware: every request of the app answers with ``paths`` (``public_text``)."""

    def __init__(self, app: Any, paths: PublicPaths) -> None:
        self.app, self.paths = app, paths

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        token = current.set(self.paths)
        try:
            await self.app(scope, receive, send)
        finally:
            current.reset(token)

"""One picture of one file of a data folder, as every page shows it: read without following a
link (``fileio.open_inside``: 403), decoded no larger than needed, small images enlarged with
nearest-neighbour, fitted within ``side``; a file that is no image answers 415 with why, one gone
since it was listed 404."""

from __future__ import annotations

import io
from pathlib import Path

from fastapi import HTTPException, Request
from fastapi.responses import Response

from sightline.errors import PathRefusedError, SightlineError
from sightline.serve.core.settings import settings_of
from sightline.serve.services.images import displayable, enlarge, fit_within, scale_for


async def file_picture(request: Request, root: Path, path: str, side: int, missing: str,
                       jpeg: bool = False, cache: str = "no-store") -> Response:  # fmt: skip
    """The picture of ``root/path``; ``missing``: the 404's message when it cannot be read."""
    from sightline.data import open_image
    from sightline.fileio import open_inside

    settings = settings_of(request)

    def draw() -> bytes:
        with open_inside(root, path) as f:  # no link followed at any step, even one made now
            img = displayable(open_image(f, path, max_side=side, max_pixels=settings.max_pixels))
        img = fit_within(enlarge(img, scale_for(img.size, side // 2)), side)
        out = io.BytesIO()
        img.save(out, format="JPEG", quality=85) if jpeg else img.save(out, format="PNG")
        return out.getvalue()

    try:
        body = await settings.cpu_work(draw)
    except PathRefusedError:
        raise
    except SightlineError as e:  # not an image (any more): the page shows the reason
        raise HTTPException(415, str(e)) from None
    except OSError as e:  # gone (moved meanwhile), or no regular file
        raise HTTPException(404, f"{missing} ({e.strerror or e})") from None
    media = "image/jpeg" if jpeg else "image/png"
    return Response(body, media_type=media, headers={"Cache-Control": cache})

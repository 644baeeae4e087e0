"""Data augmentation as pure JAX: random rotation, shift and erasing of a batch of images, so it runs inside
the compiled training loop (a fresh variant of every training image each epoch, no host round trip).

Each image gets its own draw: an angle uniform in [−rotate, rotate] degrees (bilinear, zero fill, counter-
clockwise as displayed with row 0 on top), integer offsets uniform in [−shift, shift] along each axis (zero
fill), and with probability ``erase`` one rectangle of ¼-½ the height and width set to 0 (random erasing).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp


def _sample(x: jax.Array, sy: jax.Array, sx: jax.Array) -> jax.Array:
    """Bilinear samples of images x (n, H, W, C) at source points (n, H, W); points off the image are 0."""
    n, h, w, _ = x.shape
    y0, x0 = jnp.floor(sy), jnp.floor(sx)
    fy, fx = (sy - y0)[..., None], (sx - x0)[..., None]
    y0, x0 = y0.astype(jnp.int32), x0.astype(jnp.int32)
    batch = jnp.arange(n)[:, None, None]
    out = jnp.zeros_like(x)
    for oy, ox, weight in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
        yi, xi = y0 + oy, x0 + ox
        inside = ((yi >= 0) & (yi < h) & (xi >= 0) & (xi < w))[..., None]
        out = out + jnp.where(inside, x[batch, jnp.clip(yi, 0, h - 1), jnp.clip(xi, 0, w - 1)] * weight, 0.0)
    return out


def rotate(x: jax.Array, degrees: jax.Array) -> jax.Array:
    """Rotate images (n, H, W, C) about their centres by ``degrees`` (n,) or one angle."""
    n, h, w, _ = x.shape
    theta = jnp.deg2rad(jnp.broadcast_to(jnp.asarray(degrees, jnp.float32), (n,)))[:, None, None]
    cos, sin = jnp.cos(theta), jnp.sin(theta)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    dy, dx = jnp.arange(h, dtype=jnp.float32)[:, None] - cy, jnp.arange(w, dtype=jnp.float32)[None, :] - cx
    # inverse map: each output pixel samples the source point that the turn carries onto it
    return _sample(x, cy + dx * sin + dy * cos, cx + dx * cos - dy * sin)


def shift(x: jax.Array, dy: jax.Array, dx: jax.Array) -> jax.Array:
    """Move image i down by dy[i] and right by dx[i] whole pixels, zero fill."""
    n, h, w, _ = x.shape
    src_y = jnp.arange(h)[None, :, None] - dy[:, None, None]  # (n, H, 1)
    src_x = jnp.arange(w)[None, None, :] - dx[:, None, None]  # (n, 1, W)
    inside = ((src_y >= 0) & (src_y < h) & (src_x >= 0) & (src_x < w))[..., None]
    moved = x[jnp.arange(n)[:, None, None], jnp.clip(src_y, 0, h - 1), jnp.clip(src_x, 0, w - 1)]
    return jnp.where(inside, moved, 0.0)


def erase_mask(key: jax.Array, n: int, h: int, w: int, probability: float) -> jax.Array:
    """(n, H, W, 1) booleans: True inside each erased image's rectangle."""
    k_hit, k_h, k_w, k_y, k_x = jax.random.split(key, 5)
    hit = jax.random.uniform(k_hit, (n,)) < probability
    eh = jax.random.randint(k_h, (n,), max(1, h // 4), max(1, h // 2) + 1)
    ew = jax.random.randint(k_w, (n,), max(1, w // 4), max(1, w // 2) + 1)
    y0 = jnp.floor(jax.random.uniform(k_y, (n,)) * (h - eh + 1)).astype(jnp.int32)
    x0 = jnp.floor(jax.random.uniform(k_x, (n,)) * (w - ew + 1)).astype(jnp.int32)
    rows = (jnp.arange(h) >= y0[:, None]) & (jnp.arange(h) < (y0 + eh)[:, None])  # (n, H)
    cols = (jnp.arange(w) >= x0[:, None]) & (jnp.arange(w) < (x0 + ew)[:, None])  # (n, W)
    return (hit[:, None, None] & rows[:, :, None] & cols[:, None, :])[..., None]


@partial(jax.jit, static_argnames=("shift_px", "rotate_degrees", "erase"))
def augment(
    key: jax.Array, x: jax.Array, shift_px: int = 0, rotate_degrees: float = 0.0, erase: float = 0.0
) -> jax.Array:
    """A random variant of every image of x (n, H, W, C): rotated, then shifted, then erased. The settings
    are static (each distinct setting is its own compiled program); all zero returns x."""
    n, h, w, _ = x.shape
    k_rot, k_dy, k_dx, k_erase = jax.random.split(key, 4)
    if rotate_degrees > 0:
        x = rotate(x, jax.random.uniform(k_rot, (n,), minval=-rotate_degrees, maxval=rotate_degrees))
    if shift_px > 0:
        dy = jax.random.randint(k_dy, (n,), -shift_px, shift_px + 1)
        x = shift(x, dy, jax.random.randint(k_dx, (n,), -shift_px, shift_px + 1))
    if erase > 0:
        x = jnp.where(erase_mask(k_erase, n, h, w, erase), 0.0, x)
    return x

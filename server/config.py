"""Settings from environment variables prefixed NEUROGLASS_ (e.g. NEUROGLASS_MAX_SESSIONS=50)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Limits and locations. Every limit answers a clear 422/429, never a hang."""

    model_config = SettingsConfigDict(env_prefix="NEUROGLASS_", env_file=".env", extra="ignore")

    max_sessions: int = Field(200, ge=1)  # live sessions at once; more → the oldest idle one goes, or 429
    # live sessions one client address holds (a class behind one school NAT shares an address: keep it high)
    max_sessions_per_client: int = Field(100, ge=1)
    max_points: int = Field(5000, ge=10, le=5000)  # dataset.n cap; more → 422
    max_image_pixels: int = Field(5000 * 28 * 28, ge=1)  # CNN: images × pixels per session (float32: ×4 bytes)
    max_cnn_parameters: int = Field(2_000_000, ge=1)  # CNN: weights and biases per network
    max_train_epochs: int = Field(100_000, ge=1)  # epochs per POST .../train; more → 422
    max_predict_points: int = Field(10_000, ge=1)  # inputs per POST .../predict
    session_idle_seconds: float = Field(3600.0, gt=0)  # untouched and unwatched this long → removed
    unwatched_pause_seconds: float = Field(60.0, gt=0)  # a page's playing session with no socket this long → paused
    frame_rate: float = Field(30.0, gt=0, le=120)  # target frames per second while playing
    # per-message deflate on the websockets when a browser offers it (they all do): each socket compresses each
    # frame again, so 200 viewers cost 200 compressions of one frame (bench: 200 viewers on 2 cores get 11
    # frames/s with it, 32 without; a frame is 3.3x smaller with it). Off: every socket sends the same bytes.
    ws_compression: bool = False
    # who may frame an embed view (?embed=1): a CSP frame-ancestors source list ("*": any site, for slides and
    # course pages; e.g. "https://course.example.org"); every other page is framed only by this server's own
    embed_frame_ancestors: str = Field("*", pattern=r"^[^;,\r\n]+$")
    history_limit: int = Field(4000, ge=100)  # history records kept per session (older ones thinned)
    max_checkpoints: int = Field(100, ge=0, le=10_000)  # moments kept per session to go back to (thinned); 0: off
    checkpoint_bytes: int = Field(64_000_000, ge=1)  # and at most this much state per session (big networks keep fewer)
    worker_threads: int = Field(default_factory=lambda: os.cpu_count() or 2)  # concurrent training calls
    # playing sessions of one network on one dataset take their turns together, in one compiled call (a class)
    cohorts: bool = True
    warm_start: bool = True  # compile a session's training program in the background as soon as it exists
    compile_cache_dir: Path | None = Path(".cache/jax")  # JAX's persistent compilation cache; None = off
    data_dir: Path = Path(".cache/data")  # IDX image sets: data_dir/mnist/, data_dir/fashion_mnist/
    allow_download: bool = True  # fetch a missing IDX set into data_dir on first use (when the network allows)
    # The store: an embedded SQLite file by default (created on first run), or e.g.
    # postgresql+asyncpg://user:password@host/neuroglass
    database_url: str = "sqlite+aiosqlite:///data/neuroglass.sqlite"
    live_write_seconds: float = Field(30.0, gt=0)  # a changed live session is written to the store this often
    max_upload_bytes: int = Field(50_000_000, ge=1000)  # an imported file; bigger → 413
    # sweeps (POST /api/v1/sweeps)
    max_sweep_configurations: int = Field(1024, ge=1)  # configurations per sweep; more → 422
    max_sweep_work: int = Field(10_000_000, ge=1)  # configurations × epochs per sweep; more → 422
    max_sweeps_per_client: int = Field(2, ge=1)  # sweeps one client address has running at once; more → 429
    sweep_worker_share: float = Field(0.5, gt=0, le=1)  # of worker_threads a sweep's compiled calls may hold
    sweep_chunk_seconds: float = Field(0.5, gt=0)  # compiled calls about this long: cancel and yield between
    kept_sweeps: int = Field(20, ge=1)  # finished sweeps kept in memory (their weights, to open); all are stored
    sweep_state_bytes: int = Field(256_000_000, ge=0)  # weights a sweep keeps to open its configurations
    sweep_backend: str = Field("local", pattern="^(local|ray)$")  # ray: each group as a Ray task
    sweep_ray_groups: int = Field(0, ge=0)  # on Ray, a sweep's groups training at once; 0 = the cluster's CPUs
    ray_address: str | None = None  # the Ray cluster's address (ray://host:10001, or "auto"); None: a local Ray
    # classes (a presenter and their students: /api/v1/classes)
    class_hours: float = Field(12.0, gt=0, le=24 * 30)  # a class's join code expires this long after it opens
    max_class_students: int = Field(200, ge=1)  # students one class holds; more → 409
    max_classes_per_client: int = Field(5, ge=1)  # open classes one client address runs at once; more → 429
    # wrong join codes one client address may type per minute; more → 429 (all its join attempts, right or wrong,
    # are capped at twice this or twice max_class_students, whichever is more: a class behind one NAT joins)
    joins_per_minute: int = Field(30, ge=1)


def enable_compile_cache(path: Path | None) -> None:
    """Point JAX's persistent compilation cache at ``path`` so a known architecture starts fast."""
    if path is None:
        return
    import jax

    path.mkdir(parents=True, exist_ok=True)
    update: Callable[[str, object], None] = jax.config.update  # jax leaves Config.update unannotated
    update("jax_compilation_cache_dir", str(path))
    update("jax_persistent_cache_min_compile_time_secs", 0.0)
    update("jax_persistent_cache_min_entry_size_bytes", -1)

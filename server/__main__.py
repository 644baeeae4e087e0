"""`python -m server` → uvicorn serving Neuroglass (default http://127.0.0.1:8000)."""

from __future__ import annotations

import argparse
import asyncio
import sys

import uvicorn

from server.config import Settings
from server.store import Store, StoreError


async def _check_store(url: str) -> None:
    store = Store(url)
    try:
        await store.start()
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m server", description="Run the Neuroglass server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--reload", action="store_true", help="restart when the code changes (development)")
    args = parser.parse_args()
    settings = Settings()
    try:
        asyncio.run(_check_store(settings.database_url))  # creates the SQLite file and applies migrations
    except StoreError as exc:
        print(f"neuroglass: {exc}", file=sys.stderr)
        sys.exit(2)
    uvicorn.run(
        "server.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        reload=args.reload,
        ws_per_message_deflate=settings.ws_compression,
    )


if __name__ == "__main__":
    main()

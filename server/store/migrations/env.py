"""Alembic's entry point. The store runs migrations on its own connection (``Store.start`` hands it over in
``config.attributes["connection"]``); offline SQL generation is not used."""

from __future__ import annotations

from alembic import context

from server.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through server.store.Store.start (it passes the connection)")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()

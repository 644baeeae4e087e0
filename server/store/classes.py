"""The store's classes: each class's join code, presenter and status as columns, its roster and challenge
results as one JSON text (written whole by the sessions layer's class, which made it off the event loop)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.store.models import ClassRow, aware, now


@dataclass(frozen=True)
class ClassRecord:
    id: str
    code: str
    name: str
    owner_hash: str  # sha256 of the teacher's token
    status: str
    presenter_id: str
    experiment_id: str | None
    data: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    expires_at: datetime


_COLUMNS = (
    ClassRow.id,
    ClassRow.code,
    ClassRow.name,
    ClassRow.owner_hash,
    ClassRow.status,
    ClassRow.presenter_id,
    ClassRow.experiment_id,
    ClassRow.data,
    ClassRow.created_at,
    ClassRow.updated_at,
    ClassRow.expires_at,
)


class ClassRecords:
    """Mixed into ``Store``: it supplies ``_db`` (a database session, one transaction when writing) and
    ``_one`` (the first row of a statement, made into a record)."""

    _db: Callable[..., AbstractAsyncContextManager[AsyncSession]]
    _one: Callable[..., Any]

    async def put_class(self, record: ClassRecord) -> None:
        """Write (or overwrite) a class whole: its columns and its data."""
        async with self._db(f"write class {record.id}", write=True) as db:
            row = await db.get(ClassRow, record.id)
            values = {
                "code": record.code,
                "name": record.name,
                "status": record.status,
                "presenter_id": record.presenter_id,
                "experiment_id": record.experiment_id,
                "data": json.dumps(record.data, separators=(",", ":")),
                "expires_at": record.expires_at,
                "updated_at": now(),
            }
            if row is None:
                db.add(ClassRow(id=record.id, owner_hash=record.owner_hash, created_at=record.created_at, **values))
            else:
                for name, value in values.items():
                    setattr(row, name, value)

    async def class_record(self, id_: str) -> ClassRecord | None:
        found: ClassRecord | None = await self._one(select(*_COLUMNS).where(ClassRow.id == id_), _class)
        return found

    async def open_classes(self) -> AsyncIterator[ClassRecord]:
        """Classes a previous run of the server left open (brought back at start-up)."""
        async with self._db("read the open classes") as db:
            rows = (await db.execute(select(*_COLUMNS).where(ClassRow.status == "open"))).all()
        for row in rows:
            yield _class(row)

    async def delete_class(self, id_: str) -> None:
        async with self._db(f"delete class {id_}", write=True) as db:
            await db.execute(delete(ClassRow).where(ClassRow.id == id_))


def _class(r: Any) -> ClassRecord:
    values = list(r)
    values[7] = json.loads(values[7])
    values[8:] = [aware(t) for t in values[8:]]
    return ClassRecord(*values)

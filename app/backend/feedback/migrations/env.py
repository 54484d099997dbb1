"""Alembic's environment: run on the connection `schema.upgrade` hands over (inside its one transaction)."""

from __future__ import annotations

from alembic import context

from app.backend.feedback.store import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()

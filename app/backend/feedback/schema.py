"""The feedback database's schema, migrated by Alembic before a release serves.

A new release's replicas migrate at start, while the previous release's replicas still serve (blue/green), and a
rollback runs older code against the newer schema: so every migration is additive (tests/unit check it), and a
database whose revision this code does not know is served as it is, not refused.
"""

from __future__ import annotations

import logging

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from app.backend.feedback.store import MIGRATIONS, make_engine, prepare_sqlite_directory

log = logging.getLogger("mnist.feedback")
logging.getLogger("alembic").setLevel(logging.WARNING)  # its "Context impl SQLiteImpl" at every start says nothing


MIGRATION_LOCK = 20261206  # PostgreSQL advisory lock key: the replicas of a release migrate one after the other


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head() -> str:
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert revision is not None, f"no migration in {MIGRATIONS}"
    return revision


def upgrade(url: str) -> tuple[str | None, str]:
    """Bring the database at URL to this code's head, in one transaction (on SQLite, one migrator at a time).
    Returns (revision before, revision after)."""
    prepare_sqlite_directory(url)
    engine = make_engine(url)
    config = alembic_config()
    known = {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":  # one migrator at a time, until this transaction ends
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            before = MigrationContext.configure(connection).get_current_revision()
            if before is not None and before not in known:
                log.warning(
                    "feedback database at a newer revision than this release knows: served as it is",
                    extra={"fields": {"revision": before}},
                )
                return before, before
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            after = MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
    assert after is not None
    return before, after

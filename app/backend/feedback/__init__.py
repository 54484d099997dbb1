"""User corrections of predictions, stored through SQLAlchemy with Alembic migrations (see store.py)."""

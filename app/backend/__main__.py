"""`python -m app.backend`: see app/backend/serve.py (the worker processes import what they need from there)."""

from app.backend.serve import main

main()

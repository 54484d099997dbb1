"""The deployment toolkit behind `tasks.py`: every task is a thin call into this package."""

"""Nothing phones home by default: kedro's usage-data plugin is removed wherever the pipeline runs."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_kedro_telemetry_is_not_installed_in_the_project_venv():
    assert importlib.util.find_spec("kedro_telemetry") is None, "make venv removes it; run `make venv` again"


def test_the_training_image_removes_kedro_telemetry_and_opts_out():
    dockerfile = (ROOT / "docker" / "training.Dockerfile").read_text()
    assert "pip uninstall --yes kedro-telemetry" in dockerfile
    assert "KEDRO_DISABLE_TELEMETRY=1" in dockerfile


def test_streamlit_sends_no_usage_stats():
    launcher = (ROOT / "app" / "frontend" / "__main__.py").read_text()
    assert '"browser.gatherUsageStats": "false"' in launcher

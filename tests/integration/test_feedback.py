"""Corrections on the real stack: through the backend's container to its database on the volume feedback-data,
kept when the container is replaced, gathered and restored through the fleet layer (`invoke backup`/`restore`)."""

from __future__ import annotations

import io
import subprocess
import time

import httpx
import pytest
from PIL import Image

from mnist_deploy import operations
from mnist_deploy.fleet import Fleet
from tests.integration.conftest import OUT

pytestmark = pytest.mark.integration


def correct(stack, digit) -> str:
    picture = io.BytesIO()
    Image.fromarray(255 - digit).resize((112, 112)).save(picture, format="PNG")
    answer = httpx.post(
        f"{stack.backend}/api/v1/predict/image",
        files={"file": ("d.png", picture.getvalue(), "image/png")},
        timeout=stack.timeout,
    )
    assert answer.status_code == 200, answer.text
    predicted = answer.json()
    sent = {"prediction_id": predicted["id"], "digit": (predicted["digit"] + 1) % 10}
    stored = httpx.post(f"{stack.backend}/api/v1/feedback", json=sent, timeout=stack.timeout)
    assert stored.status_code == 201, stored.text
    return str(predicted["id"])


def wait_ready(stack, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{stack.backend}/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(1)
    pytest.fail("the backend did not come back ready")


def test_a_correction_outlives_its_container_and_is_backed_up_and_restored(stack, mnist_sample):
    if stack.project is None:
        pytest.skip("replacing the backend's container needs the stack this suite starts")
    prediction_id = correct(stack, mnist_sample[0][5])
    compose = OUT / "dev" / "localhost" / "compose.yaml"
    subprocess.run(
        ["docker", "compose", "-f", str(compose), "up", "-d", "--force-recreate", "--no-deps", "backend"],
        check=True,
        capture_output=True,
    )
    wait_ready(stack)

    fleet = Fleet("dev", extra={"mnist_stack_project": stack.project}, out_root=OUT)
    kept, problems = operations.backup_feedback(fleet)
    assert problems == [] and prediction_id in {item.prediction_id for item in kept.items}
    done, problems = operations.restore_feedback(fleet, kept.dumps())
    assert problems == [] and done == {
        "localhost": "restored: 0 corrections added (those already present kept as they were)"
    }

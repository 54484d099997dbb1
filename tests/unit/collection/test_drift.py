"""Drift (module_utils/drift.py): a host against its last deploy's record, from a stack folder and a /proc made here,
and the record step that writes what it is compared with (module_utils/releases.py)."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import httpx
from ansible_collections.mnist.deploy.plugins.module_utils import drift, releases

from tests.servers import free_port, running

RELEASE, OTHER = "0123456789ab", "ba9876543210"  # pragma: allowlist secret (release ids)
BACKEND, PROXY, BYHAND = "a" * 64, "b" * 64, "c" * 64
FILES = {
    "compose.yaml": "services: {}\n",
    "prometheus/fingerprint": "f00d\n",
    "prometheus/rules.yml": "groups: []\n",
}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def fake_proc(root: Path, cgroups: dict[int, str]) -> Path:
    """A /proc with a `cgroup` file per pid (and entries that are no process)."""
    proc = root / "proc"
    proc.mkdir(parents=True, exist_ok=True)
    for pid, line in cgroups.items():
        (proc / str(pid)).mkdir(parents=True)
        (proc / str(pid) / "cgroup").write_text(line + "\n")
    (proc / "self").mkdir(exist_ok=True)
    (proc / "meminfo").write_text("")
    return proc


def deployed(root: Path) -> Path:
    """A stack folder as a deploy leaves it: the release's folder and record, the mounted Prometheus folder, and
    serving.json written by the record step with the backend and the proxy running."""
    home = root / "home"
    folder = home / "releases" / RELEASE
    for path, content in FILES.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text(content)
    (home / "prometheus" / "f00d").mkdir(parents=True)
    (home / "prometheus" / "f00d" / "rules.yml").write_text(FILES["prometheus/rules.yml"])
    record = {
        "id": RELEASE,
        "model_version": "9" * 64,
        "git_sha": "abc1234",
        "files": {p: sha(c) for p, c in FILES.items()},
    }
    (folder / "release.json").write_text(json.dumps(record))
    line = releases.audit_line("2026-12-03T00:00:00Z", "deploy", RELEASE, "alice@ci", "web-1", "")
    running = releases.container_names(
        [
            {"Id": BACKEND, "Names": ["/mnist-production-backend-1"]},
            {"Id": PROXY, "Names": ["/mnist-production-proxy-1"]},
        ]
    )
    releases.record(str(home), RELEASE, "", "deploy", line, running=running)
    return home


def test_the_containers_that_run_are_read_from_every_process_cgroup(tmp_path):
    proc = fake_proc(
        tmp_path,
        {
            1: "0::/init.scope",
            10: f"0::/system.slice/docker-{BACKEND}.scope",  # systemd's cgroup driver
            11: f"0::/docker/{PROXY}",  # cgroupfs, as in a Docker-in-Docker host
            12: f"0::/../../docker-{BACKEND}.scope",  # seen from another cgroup namespace
        },
    )
    assert drift.running_containers(str(proc)) == {BACKEND, PROXY}
    # A host that is itself a container: its own id is in every path, its init's too.
    host = "d" * 64
    nested = fake_proc(
        tmp_path / "nested",
        {1: f"0::/docker/{host}", 5: f"0::/docker/{host}", 10: f"0::/docker/{host}/docker/{BACKEND}"},
    )
    assert drift.running_containers(str(nested)) == {BACKEND}


def test_a_host_as_the_deploy_left_it_has_no_drift(tmp_path):
    home = deployed(tmp_path)
    proc = fake_proc(tmp_path, {10: f"0::/docker/{BACKEND}", 11: f"0::/docker/{PROXY}"})
    state = drift.inspect(str(home), str(proc))
    assert state["release"] == RELEASE and state["drift"] == [] and state["in_progress"] is False
    assert state["recorded_at"] > 0
    text = drift.metrics("web-1", state)
    assert 'mnist_release_drift{host="web-1"} 0' in text
    assert (
        f'mnist_release_info{{host="web-1",release="{RELEASE}",model_version="999999999999",git_sha="abc1234"}} 1'
        in text
    )


def test_a_container_started_or_stopped_by_hand_and_an_edited_file_are_drift(tmp_path):
    home = deployed(tmp_path)
    (home / "prometheus" / "f00d" / "rules.yml").write_text("groups: [edited]\n")  # the folder Prometheus mounts
    (home / "releases" / RELEASE / "compose.yaml").unlink()
    proc = fake_proc(tmp_path, {10: f"0::/docker/{BACKEND}", 12: f"0::/docker/{BYHAND}"})  # proxy stopped
    found = drift.inspect(str(home), str(proc))["drift"]
    assert found == [
        "container cccccccccccc runs but no deploy started it",
        "container mnist-production-proxy-1 (bbbbbbbbbbbb) no longer runs",
        f"file releases/{RELEASE}/compose.yaml is missing",
        "file prometheus/f00d/rules.yml differs from the release",
    ]
    text = drift.metrics("web-1", drift.inspect(str(home), str(proc)))
    assert 'mnist_release_drift{host="web-1"} 1' in text
    assert (
        'mnist_release_drift_item{host="web-1",item="container cccccccccccc runs but no deploy started it"} 1' in text
    )


def test_a_deploy_in_progress_is_said_and_a_host_never_deployed_reports_nothing(tmp_path):
    home = deployed(tmp_path)
    (home / "deploy.lock").mkdir()
    state = drift.inspect(str(home), str(fake_proc(tmp_path, {})))
    assert state["in_progress"] is True and state["drift"]  # both containers gone, but a deploy is under way
    assert 'mnist_deploy_in_progress{host="web-1"} 1' in drift.metrics("web-1", state)
    empty = drift.inspect(str(tmp_path / "nothing"), str(tmp_path / "proc"))
    assert empty["release"] == "" and empty["drift"] == []
    assert "mnist_release_info{" not in drift.metrics("web-1", empty)


def test_a_failed_deploy_leaves_the_record_of_what_serves_alone(tmp_path):
    home = deployed(tmp_path)
    before = (home / drift.SERVING_FILE).read_text()
    releases.record(str(home), OTHER, RELEASE, "failed", "a line", running={BYHAND: "other"})
    assert (home / drift.SERVING_FILE).read_text() == before


def test_the_exporter_serves_the_metrics_over_http(tmp_path):
    """The script as the image runs it: beside lock.py, with no package around it."""
    home = deployed(tmp_path)
    port = free_port()
    command = [sys.executable, "-B", drift.__file__, "--home", str(home), "--host", "web-1", "--port", str(port)]
    with running(command, f"http://127.0.0.1:{port}/metrics", {}, tmp_path):
        body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert httpx.get(f"http://127.0.0.1:{port}/other", timeout=5).status_code == 404
    assert f'release="{RELEASE}"' in body and 'mnist_release_drift{host="web-1"} 1' in body  # nothing runs here

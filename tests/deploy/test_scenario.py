"""The deploy scenario on the sandbox, in order, as CI runs it (issue #6):

sandbox up (target-1 Debian 12 on the classic image store, target-2 Debian 13 with systemd on the containerd store)
→ bootstrap (target-2, whose engine and Compose came from Debian's packages: only live-restore set, same engine;
bootstrapped again, no host changes) → a dry run
(--check) of the first deploy → deploy A → verify → deploy A again (changed=0; `plan` says nothing changes, the
containerd host's other image ids notwithstanding), by an
operator who is not root (in the docker group, their own checkout and virtualenv: the audit log names them), and in
check mode → `plan` for B and a dry run of it → deploy B (a new model) while a concurrent deploy is refused by the
lock → a lock a killed deploy left on one host stops a rollback before any host changes, `invoke lock` names it and
releases it → a deploy killed while it copies images: the next one names its lock, which `invoke lock --release`
recovers → verify → rollback under a constant load through the proxy, not one request failing, removing what the
killed copy left → A is back → a second rollback is refused (history holds nothing before A) → deploy a model that
fails the gate → automatic rollback, A still serving → rollback to B by id (the failed release and its image are
removed: the sandbox keeps two releases) → a deploy of A whose second host fails its gate returns the first host
to B → B deployed again by id (`--release`: nothing changes) and the never-served killed release refused →
`invoke prune` keeps both releases and removes a stale controller archive → target-2's engine restarted under
load (no container stopped, no request failed) → target-1 rebooted (it
serves again, verify passes, no redeploy; `invoke status` reported it unreachable while it was off) → sandbox
down, nothing left. Before the engine restart, the fleet is operated through the bastion (status, audit, exec,
logs, a tunnel; unknown and changed host keys refused), and drift is made by hand on one host: its release exporter
and alert rule see it, `invoke verify` names it.

Every deploy and rollback posts to the sandbox's webhook, a receiver run here: deploy A, the failed deploy and the
rollback are checked as it got them, and a webhook answering 500 only warns.

The steps share one sandbox and run in file order; each asserts what the previous left behind.
"""

from __future__ import annotations

import http.server
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch
from PIL import Image

from app.mnist import corrections, store
from bench import rollout
from mnist_deploy import bastion, deploy, images, notify, render, sandbox, ssh, tls
from mnist_deploy.environment import Environment
from mnist_deploy.errors import DeployError
from tests.deploy import operator

pytestmark = pytest.mark.deploy
ENV = sandbox.ENV
ROOT = render.ROOT
MODELS_A = ROOT / "models"
RELEASE_MODELS = ROOT / "build" / "release-models"  # inside the build context (see .dockerignore)
HOME = "/opt/mnist/mnist-sandbox"
DROP = "/var/tmp/mnist-images"  # the role's mnist_stack_image_drop


@pytest.fixture(scope="module")
def sandbox_hosts():
    try:
        hosts = sandbox.up()
        engines = {host: dockerd_pid(host) for host in hosts}
        deploy.playbook(ENV, "bootstrap", {}, check=True)  # fresh hosts: check mode must not trip on them
        changed = deploy.playbook(ENV, "bootstrap", {})
        kept = sandbox.engine_from_elsewhere(hosts)
        # A host whose engine and Compose came from elsewhere: nothing installed, nothing copied, same engine (it
        # reloads its configuration: live-restore is the one change bootstrap makes there).
        assert changed[kept] == 1, changed
        assert {host: dockerd_pid(host) for host in hosts} == engines
        assert on_host(kept, "test -e /usr/local/lib/docker/cli-plugins/docker-compose").returncode == 1
        assert all(changed[host] > 1 for host in hosts if host != kept), changed  # they lacked Compose v2
        assert deploy.playbook(ENV, "bootstrap", {}) == {host: 0 for host in hosts}  # bootstrapped again: no change
        # `invoke known-hosts`: the keys it scans (the targets' through the bastion) are those SSH learned, keyed by
        # the same names (HostKeyAlias), so a team can pin them before the first connection.
        found = ssh.scan_host_keys(ENV, Environment.read(ENV).hostvars)
        assert set(found) == {f"mnist-bastion-{ENV}", *hosts}
        learned = [line for line in ssh.known_hosts_path(ENV).read_text().splitlines() if line.strip()]
        assert learned and all(line in found[line.split()[0]] for line in learned), (learned, found)
        yield hosts
    finally:
        sandbox.down()
        left = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label={sandbox.LABEL}"], capture_output=True, text=True, check=True
        )
        assert left.stdout.strip() == "", "sandbox containers left running"


@pytest.fixture(scope="module")
def state() -> dict[str, Any]:
    return {}


class Receiver(http.server.ThreadingHTTPServer):
    """The sandbox's webhook (inventories/sandbox/group_vars/all/notify.yml): keeps what deploys post; answers
    `status` (set 500 to play a broken webhook)."""

    def __init__(self, port: int) -> None:
        self.posted: list[dict[str, Any]] = []
        self.status = 200
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.posted.append({"path": self.path, **json.loads(body)})
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", port), Handler)


@pytest.fixture(scope="module")
def webhook():
    url = notify.webhooks(ENV)[0].url
    server = Receiver(int(url.split(":")[2].split("/")[0]))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def on_host(host: str, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh", "-F", str(ssh.config_path(ENV)), host, command],
        stdin=subprocess.DEVNULL,  # ssh sets a shared stdin non-blocking; Ansible in the other thread refuses it
        capture_output=True,
        text=True,
        check=False,
    )


def dockerd_pid(host: str) -> str:
    pid = on_host(host, "pgrep -xo dockerd").stdout.strip()
    assert pid.isdigit(), f"{host}: no dockerd running"
    return pid


def kept_containers(host: str = "target-1") -> dict[str, list[str]]:
    """The proxy's and Prometheus's containers: a release that changes neither (a new model) leaves both running."""
    ids = {}
    for service in ("proxy", "prometheus"):
        labels = ("com.docker.compose.project=mnist-sandbox", f"com.docker.compose.service={service}")
        filters = " ".join(f"--filter label={label}" for label in labels)
        ids[service] = on_host(host, f"sudo docker ps --quiet --no-trunc {filters}").stdout.split()
        assert len(ids[service]) == 1, (service, ids[service])
    return ids


def current_releases() -> dict[str, str]:
    deploy.releases(ENV)
    return {row["host"]: row["current"] for row in deploy.host_results(ENV)}


def verify() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/infra", "-m", "infra", f"--env={ENV}", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, "testinfra checks of the sandbox failed (output above)"


def one_epoch_store(trained: Path, model_dir: Path) -> str:
    """The session's one-epoch model (tests/conftest.py: trained once, the pipeline's test checks it too) in a
    store of its own inside the build context; its version."""
    shutil.rmtree(model_dir, ignore_errors=True)
    shutil.copytree(trained, model_dir, symlinks=True)
    return store.current_version(model_dir)


def register_untrained(model_dir: Path, padding_mb: int = 0) -> str:
    """A model that loads and answers but has learnt nothing: it must fail the gate. PADDING_MB of random weights
    the graph never reads make its image layer that big (a deploy ships a host only the layers it lacks)."""
    from app.training import nodes
    from app.training.model import DigitNet

    torch.manual_seed(0)
    dataset = {"x_test": torch.rand(8, 1, 28, 28), "checksums": {}}
    metrics = {"test_accuracy": 0.1, "per_class_accuracy": [0.1] * 10, "train_seconds": 0.0, "device": "cpu"}
    metrics["history"] = []
    params = {"opset": 17, "parity_images": 8, "parity_tolerance": 1e-4}
    exported = nodes.export({"model": DigitNet().eval()}, dataset, metrics, params, {"epochs": 0})
    onnx_bytes, metadata = exported["onnx"], exported["metadata"]
    if padding_mb:
        import numpy as np
        import onnx
        from onnx import numpy_helper

        graph = onnx.load_from_string(onnx_bytes)
        noise = np.random.default_rng(0).random(padding_mb * 2**18, dtype=np.float32)  # 4 bytes each
        graph.graph.initializer.append(numpy_helper.from_array(noise, "padding"))
        onnx_bytes = graph.SerializeToString()
        metadata = {**metadata, "version": store.sha256(onnx_bytes)}
    version = store.register(model_dir, onnx_bytes, metadata)
    store.set_current(model_dir, version)  # forced, as `invoke promote --reason` would: the gate must refuse it
    return version


def test_deploy_release_a_to_every_host(sandbox_hosts, state, webhook):
    dry = deploy.deploy(ENV, MODELS_A, check=True)  # a first deploy's dry run: it would change every host
    assert all(dry["changed"][host] > 0 for host in sandbox_hosts), dry["changed"]
    assert current_releases() == {host: "" for host in sandbox_hosts}, "the dry run changed a host"
    outcome = deploy.deploy(ENV, MODELS_A)
    state["a"] = outcome["release"]
    # Each replica was gated on the user's path too: drawn digits through the image endpoint, held to its model's
    # own record (the release's thresholds). (The deploy's results, before current_releases() reads others.)
    thresholds = state["a"]["gate_thresholds"]
    assert set(thresholds) == {"raw", "drawn"}, thresholds
    gated = [answer for row in deploy.host_results(ENV) for answer in row["gate"]]
    assert len(gated) == 2 * len(sandbox_hosts), gated
    assert all(a["drawn"] == 40 and a["drawn_accuracy"] >= thresholds["drawn"] for a in gated), gated
    assert current_releases() == {host: state["a"]["id"] for host in sandbox_hosts}
    # The team's webhook heard of it, once: who deployed what, the result, each host.
    (told,) = webhook.posted
    assert told["path"] == "/deploys" and told["result"] == "succeeded" and told["action"] == "deploy"
    assert told["release"] == state["a"]["id"] and told["model_version"] == state["a"]["model_version"]
    assert told["by"] == deploy.deployer() and {h["host"] for h in told["hosts"]} == set(sandbox_hosts)


def test_release_a_passes_the_testinfra_checks(sandbox_hosts, state):
    verify()


def test_deploying_the_same_release_again_changes_nothing(sandbox_hosts, state, webhook, capfd):
    webhook.status = 500  # a broken webhook: a warning, not a failed deploy
    try:
        outcome = deploy.deploy(ENV, MODELS_A)
    finally:
        webhook.status = 200
    assert "webhook sandbox-receiver answered HTTP 500 (the deploy's result stands)" in capfd.readouterr().out
    assert outcome["release"]["id"] == state["a"]["id"] and len(webhook.posted) == 2
    assert outcome["changed"] == {host: 0 for host in sandbox_hosts}
    table, anything = deploy.plan(ENV, MODELS_A)
    assert not anything, render_table(table)
    assert render_table(table).count("nothing changes") == len(sandbox_hosts)
    # The trixie host's engine is on the containerd image store, where every image got another id than on the
    # controller: it is recognised by its identity (module_utils/identity.py), so nothing was shipped to it again.
    trixie = sandbox.engine_from_elsewhere(sandbox_hosts)
    assert (
        "io.containerd.snapshotter.v1" in on_host(trixie, "sudo docker info --format '{{json .DriverStatus}}'").stdout
    )
    held = set(on_host(trixie, "sudo docker images --quiet --no-trunc").stdout.split())
    assert held and not held & {image["id"] for image in state["a"]["images"]}


def test_an_operator_who_is_not_root_deploys_from_their_own_checkout(sandbox_hosts, state, webhook):
    """`invoke deploy` as a team member runs it: not root, in the docker group, no sudo on the controller, a checkout
    and a virtualenv of their own, the access files the team hands out (SSH key and known hosts, the sandbox's CA
    and TLS values). The same release: every host keeps it, and each host's audit log names them."""
    access = [ssh.known_hosts_path(ENV).parent, tls.SANDBOX_DIR, tls.SANDBOX_VARS]
    with operator.operator(ROOT, access, bastion.wheelhouse()) as them:
        result = them.run("invoke", "deploy", f"--env={ENV}")
        assert result.returncode == 0, f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        # What each host reported to the operator's controller: A kept (no switch).
        reported = [json.loads(p.read_text()) for p in (them.checkout / "build" / ENV / "results").glob("*.json")]
        a = state["a"]["id"]
        assert {(row["host"], row["before"], row["release"]) for row in reported} == {(h, a, a) for h in sandbox_hosts}
        # Everything the deploy wrote is the operator's, in their checkout.
        made = [path for path in (them.checkout / "build").rglob("*") if path.owner() != them.name]
        assert not made, made[:5]
    assert webhook.posted[-1]["by"] == f"{operator.NAME}@{socket.gethostname()}"
    for host in sandbox_hosts:
        last = json.loads(on_host(host, f"sudo tail -n 1 {HOME}/audit.log").stdout)
        assert last["by"] == f"{operator.NAME}@{socket.gethostname()}", last
        assert last["event"] == "deploy (already active)" and last["release"] == state["a"]["id"], last
    assert current_releases() == {host: state["a"]["id"] for host in sandbox_hosts}


# Run on the bastion (its python3 has requests): a picture through the host's proxy, then a correction of the answer.
CORRECT = """
import json, sys, requests
url, ca = sys.argv[1], sys.argv[2]
png = sys.stdin.buffer.read()
files = {"file": ("d.png", png, "image/png")}
answer = requests.post(url + "/api/v1/predict/image", files=files, verify=ca, timeout=10)
answer.raise_for_status()
digit = answer.json()
sent = {"prediction_id": digit["id"], "digit": (digit["digit"] + 1) % 10}
stored = requests.post(url + "/api/v1/feedback", json=sent, verify=ca, timeout=10)
print(stored.status_code, json.dumps(stored.json()))
"""


def test_a_correction_sent_through_each_hosts_proxy_is_stored(sandbox_hosts, state):
    """A user's path: a picture to /api/v1/predict/image, then "the right digit is …" for its answer (they outlive
    deploy B and the rollback: checked after it)."""
    with np.load(ROOT / "tests" / "fixtures" / "mnist_test_500.npz") as npz:
        picture = io.BytesIO()
        Image.fromarray(255 - npz["images"][3]).resize((140, 140)).save(picture, format="PNG")  # dark ink on white
    subprocess.run(
        ["docker", "cp", str(tls.SANDBOX_DIR / "ca.pem"), f"{sandbox.BASTION}:/tmp/ca.pem"],
        check=True,
        capture_output=True,
    )
    state["corrections"] = {}
    for host in sandbox_hosts:
        sent = subprocess.run(
            ["docker", "exec", "-i", sandbox.BASTION, "python3", "-c", CORRECT, f"https://{host}", "/tmp/ca.pem"],
            input=picture.getvalue(),
            capture_output=True,
            check=False,
        )
        status, _, body = sent.stdout.decode().strip().partition(" ")
        assert sent.returncode == 0 and status == "201", (host, sent.stdout, sent.stderr[-2000:])
        state["corrections"][host] = json.loads(body)["prediction_id"]


def test_a_check_mode_deploy_runs_clean_and_changes_nothing(sandbox_hosts, state):
    outcome = deploy.deploy(ENV, MODELS_A, check=True)
    assert outcome["changed"] == {host: 0 for host in sandbox_hosts}
    assert current_releases() == {host: state["a"]["id"] for host in sandbox_hosts}


def test_deploy_release_b_while_a_concurrent_deploy_is_refused(sandbox_hosts, state, tmp_path, one_epoch_model):
    model_b = one_epoch_store(one_epoch_model, RELEASE_MODELS / "b")
    assert model_b != state["a"]["model_version"]
    state["kept"] = kept_containers()
    vars_a = tmp_path / "deploy-a-vars.json"  # planning and deploying B render build/sandbox/ afresh
    vars_a.write_text((render.BUILD / ENV / "deploy-vars.json").read_text())
    table, anything = deploy.plan(ENV, RELEASE_MODELS / "b")  # a new model: its backend image, compose.yaml
    shown = render_table(table)
    assert anything and shown.count(" MB)") == len(sandbox_hosts) and "compose.yaml" in shown, shown
    # Only the layers a host lacks, on both image stores (the trixie host's is containerd's).
    assert shown.count(" layers, ≤ ") == len(sandbox_hosts), shown
    assert "backend" in shown and "nothing changes" not in shown
    dry = deploy.deploy(ENV, RELEASE_MODELS / "b", check=True)  # a new release's dry run
    assert all(dry["changed"][host] > 0 for host in sandbox_hosts), dry["changed"]
    assert current_releases() == {host: state["a"]["id"] for host in sandbox_hosts}, "the dry run changed a host"
    outcome: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: outcome.update(b=deploy.deploy(ENV, RELEASE_MODELS / "b")))
    thread.start()
    deadline = time.monotonic() + 300
    while on_host("target-1", f"sudo test -d {HOME}/deploy.lock").returncode != 0:
        assert thread.is_alive() and time.monotonic() < deadline, "the deploy of B never took the lock"
        time.sleep(0.5)
    concurrent = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", f"inventories/{ENV}", "playbooks/deploy.yml"]
        + ["-e", f"@{vars_a}", "--limit", "target-1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")},
    )
    thread.join(timeout=900)
    assert concurrent.returncode != 0
    assert "target-1 is locked by another deploy" in concurrent.stdout
    assert f"invoke lock --env={ENV} --release" in concurrent.stdout
    state["b"] = outcome["b"]["release"]
    assert state["b"]["model_version"] == model_b
    assert current_releases() == {host: state["b"]["id"] for host in sandbox_hosts}
    assert kept_containers() == state["kept"], "a new model replaced the proxy or Prometheus"


def test_a_lock_left_on_one_host_stops_a_deploy_before_any_host_changes(sandbox_hosts, state):
    """A deploy killed on target-2 left its lock there: the next deploy changes no host and names the holder."""
    leftover = (
        f"sudo python3 -c \"import json, os; os.mkdir('{HOME}/deploy.lock'); json.dump({{'by': 'killed@ci', "
        f"'release': 'ffffffffffff', 'since': '2026-12-01T00:00:00Z', 'since_epoch': 0}}, "
        f"open('{HOME}/deploy.lock/owner.json', 'w'))\""
    )
    assert on_host("target-2", leftover).returncode == 0
    with pytest.raises(DeployError) as refused:
        deploy.rollback(ENV)  # would move every host back to A
    message = str(refused.value)
    assert "target-2 is locked by another deploy: killed@ci for release ffffffffffff" in message
    assert current_releases() == {host: state["b"]["id"] for host in sandbox_hosts}, "a host changed"
    assert on_host("target-1", f"sudo test -e {HOME}/deploy.lock").returncode == 1, "target-1 kept a lock"
    shown = render_table(deploy.lock(ENV))
    assert "killed@ci for release ffffffffffff" in shown and "free" in shown
    deploy.lock(ENV, release=True)
    assert on_host("target-2", f"sudo test -e {HOME}/deploy.lock").returncode == 1


def descendants(pid: int) -> list[int]:
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False).stdout.split()
    return [int(child) for child in children] + [d for child in children for d in descendants(int(child))]


def leftovers(host: str) -> list[str]:
    """What a deploy cut short left in the host's image drop folder: archives, and copies in transfer/."""
    found = on_host(host, f"sudo find {DROP} -mindepth 1 \\( -name '*.tar*' -o -path '{DROP}/transfer/*' \\) -prune")
    return found.stdout.split()


def test_a_deploy_killed_mid_ship_is_named_by_the_next_and_its_lock_released(sandbox_hosts, state):
    """The controller dies (SIGKILL to invoke, Ansible and ssh) while it copies a new release's images: no host
    changed what it serves, the next deploy is refused naming the dead one's lock and its age, `invoke lock
    --release` recovers, and the next deploy removes the partial archive (checked after the rollback below)."""
    killed_model = register_untrained(RELEASE_MODELS / "killed", padding_mb=200)  # a copy long enough to cut
    state["killed"] = deploy.assemble(ENV, RELEASE_MODELS / "killed")  # images built here: the kill lands in the copy
    invoke = subprocess.Popen(
        [str(Path(sys.executable).parent / "invoke"), "deploy", f"--env={ENV}"],
        cwd=ROOT,
        env={**os.environ, "INVOKE_MNIST_MODEL_DIR": str(RELEASE_MODELS / "killed")},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    try:
        while not any(on_host(host, f"sudo find {DROP}/transfer -type f -size +1M").stdout for host in sandbox_hosts):
            assert invoke.poll() is None and time.monotonic() < deadline, "the deploy never started copying"
            time.sleep(0.3)
    finally:
        for pid in [invoke.pid, *descendants(invoke.pid)]:  # ansible-runner starts Ansible in its own session
            subprocess.run(["kill", "-KILL", str(pid)], check=False)
        invoke.wait(timeout=30)
    assert any(leftovers(host) for host in sandbox_hosts), "the kill left no partial archive to clean up"
    assert current_releases() == {host: state["b"]["id"] for host in sandbox_hosts}, "a host changed"
    with pytest.raises(DeployError) as refused:
        deploy.deploy(ENV, RELEASE_MODELS / "b")
    message = str(refused.value)
    assert "is locked by another deploy" in message and f"{deploy.deployer()} for release" in message, message
    assert "since" in message and f"invoke lock --env={ENV} --release" in message, message
    assert killed_model[:12] not in current_releases().values()
    deploy.lock(ENV, release=True)
    for host in sandbox_hosts:
        assert on_host(host, f"sudo test -e {HOME}/deploy.lock").returncode == 1, f"{host} kept the lock"


def render_table(table: Any) -> str:
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(table)
    return console.export_text()


def test_release_b_passes_the_testinfra_checks(sandbox_hosts, state):
    verify()


def test_rollback_brings_release_a_back_without_failing_a_request(sandbox_hosts, state, webhook):
    deploy.rollback(ENV, check=True)
    assert current_releases() == {host: state["b"]["id"] for host in sandbox_hosts}, "check mode changed a host"
    # Constant load on target-1's proxy (HTTPS, from the bastion) while its replicas are replaced one at a time.
    load = rollout.start_load("target-1", connections=2, rate=20)
    try:
        deploy.rollback(ENV)
    finally:
        out, _ = load.communicate(input="", timeout=60)
    answers = [json.loads(line) for line in out.splitlines() if line.startswith("[")]
    failed = [answer for answer in answers if answer[2] != 200]
    assert len(answers) > 500 and not failed, (len(answers), failed[:10])
    assert current_releases() == {host: state["a"]["id"] for host in sandbox_hosts}
    told = webhook.posted[-1]
    assert (told["action"], told["result"], told["release"]) == ("rollback", "succeeded", state["a"]["id"])
    assert kept_containers() == state["kept"], "the rollback replaced the proxy or Prometheus"
    assert {host: leftovers(host) for host in sandbox_hosts} == {host: [] for host in sandbox_hosts}
    verify()


def test_corrections_outlive_a_deploy_and_a_rollback_and_are_backed_up_and_restored(sandbox_hosts, state, tmp_path):
    """Each host's correction, sent under release A, is still in its database after B came and went (the volume
    outlives releases); `invoke backup` gathers every host's, and `invoke restore` gives each host the others'."""
    backup = tmp_path / "feedback.json"
    done = invoke("backup", f"--env={ENV}", f"--out={backup}")
    assert done.returncode == 0, done.stdout + done.stderr
    kept = corrections.loads(backup.read_text())
    assert {item.prediction_id for item in kept.items} >= set(state["corrections"].values())
    restored = invoke("restore", str(backup), f"--env={ENV}")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    added = dict(line.split(": restored: ") for line in restored.stdout.splitlines() if ": restored: " in line)
    assert set(added) == set(sandbox_hosts), restored.stdout
    assert all(said.startswith(f"{len(kept) - 1} corrections added") for said in added.values()), added
    refused = invoke("restore", str(ROOT / "README.md"), f"--env={ENV}")
    assert refused.returncode == 2 and "restore refused" in refused.stderr


def test_a_second_rollback_goes_no_further_than_history_and_changes_nothing(sandbox_hosts, state):
    """The environment's history is now [A]: rollbacks walk back through it, so B does not come back."""
    with pytest.raises(DeployError) as refused:
        deploy.rollback(ENV)
    assert f"the environment's history holds no release before {state['a']['id']}" in str(refused.value)
    assert current_releases() == {host: state["a"]["id"] for host in sandbox_hosts}
    assert on_host("target-1", f"sudo test -e {HOME}/deploy.lock").returncode == 1, "the refused rollback kept a lock"


def test_a_release_failing_the_gate_is_rolled_back_automatically(sandbox_hosts, state, capfd, webhook):
    bad = register_untrained(RELEASE_MODELS / "bad")
    state["bad_backend"] = f"mnist-backend:{images.release_tag(bad)}"
    with pytest.raises(DeployError, match="deploy on sandbox failed"):
        deploy.deploy(ENV, RELEASE_MODELS / "bad")
    output = capfd.readouterr().out
    assert "gate failed" in output and bad[:12] in output
    assert f"Rolled back to release {state['a']['id']}" in output
    # The first host rolled back; the rollout stopped there, so the second never left A.
    assert current_releases() == {host: state["a"]["id"] for host in sandbox_hosts}
    audit = on_host("target-1", f"sudo tail -n 3 {HOME}/audit.log").stdout
    assert '"event": "failed"' in audit
    told = webhook.posted[-1]
    assert (told["action"], told["result"]) == ("deploy", "failed") and "gate failed" in told["error"], told
    assert told["model_version"] == bad and told["text"].startswith("❌")
    verify()
    state["bad_backend_id"] = images.image_id(state["bad_backend"])


def test_rollback_to_a_given_release_removes_releases_and_images_beyond_the_kept_two(sandbox_hosts, state):
    deploy.rollback(ENV, to=state["b"]["id"])
    assert current_releases() == {host: state["b"]["id"] for host in sandbox_hosts}
    # target-1 still had the failed release: keeping two (current and previous) removes it and its backend image.
    assert sorted(on_host("target-1", f"sudo ls {HOME}/releases").stdout.split()) == sorted(
        [state["a"]["id"], state["b"]["id"]]
    )
    present = on_host("target-1", "sudo docker images --quiet --no-trunc").stdout.split()
    assert state["bad_backend_id"] not in present
    # The kept releases' images stay: those of the services target-1 runs (never sent the database's).
    runs = Environment.read(ENV).hosts["target-1"].services
    kept = {image["id"] for image in state["a"]["images"] + state["b"]["images"] if image["service"] in runs}
    assert kept and kept <= set(present)
    assert not {image["id"] for image in state["b"]["images"] if image["service"] not in runs} & set(present)


def test_a_host_failing_its_gate_returns_the_hosts_already_switched(sandbox_hosts, state, capfd):
    """target-2 turns every release away (its gate asks for more than 100 %): the deploy of A switches the canary,
    target-1, then fails on target-2, which puts B back itself; invoke returns target-1 to B, so the environment
    ends on one release and its history is as before."""
    strict = ROOT / "inventories" / "sandbox" / "host_vars" / "target-2.yml"  # untracked: the release is still A
    strict.parent.mkdir(exist_ok=True)
    strict.write_text("mnist_stack_gate_min_accuracy: 1.01\n")
    try:
        with pytest.raises(DeployError, match="target-2: .*gate failed"):
            deploy.deploy(ENV, MODELS_A)
    finally:
        strict.unlink()
        strict.parent.rmdir()
    output = capfd.readouterr().out
    assert f"Returning target-1 to the release each ran before {state['a']['id']}" in output
    assert current_releases() == {host: state["b"]["id"] for host in sandbox_hosts}
    for host in sandbox_hosts:
        history = json.loads(on_host(host, f"sudo cat {HOME}/history.json").stdout)
        assert history == [state["a"]["id"], state["b"]["id"]], (host, history)
    assert '"event": "rollback"' in on_host("target-1", f"sudo tail -n 1 {HOME}/audit.log").stdout
    assert on_host("target-1", f"sudo test -e {HOME}/deploy.lock").returncode == 1, "the lock was kept"


def test_the_release_records_say_who_deployed_what_and_when(sandbox_hosts, state):
    deploy.releases(ENV)
    for row in deploy.host_results(ENV):
        ids = [record["id"] for record in row["releases"]]
        assert state["a"]["id"] in ids and state["b"]["id"] in ids
        record = next(r for r in row["releases"] if r["id"] == state["a"]["id"])
        assert record["by"] == deploy.deployer()
        assert datetime.fromisoformat(record["assembled"]) <= datetime.now(UTC)
        assert set(record["files"]) >= {"compose.yaml", "prometheus/prometheus.yml", "proxy/haproxy.cfg"}
        # The images of the services the host runs: the sandbox's keep corrections in SQLite, without the database.
        runs = Environment.read(ENV).hosts[row["host"]].services
        assert {image["service"] for image in record["images"]} == set(images.SERVICES) & set(runs)
        assert "database" not in runs
    result = json.loads(on_host("target-2", f"sudo cat {HOME}/current/release.json").stdout)
    assert result["id"] == state["b"]["id"]


def test_a_release_is_promoted_as_it_ran_and_refused_where_it_never_ran(sandbox_hosts, state):
    """`invoke deploy --release ID`: release B, which every host ran, deployed by id (its images as built, not
    rebuilt; the files rendered again) is the release that serves: nothing changes. The killed deploy's release
    was assembled but never served: refused, naming the hosts, with no host changed."""
    outcome = deploy.deploy(ENV, MODELS_A, release_id=state["b"]["id"])
    assert outcome["release"]["id"] == state["b"]["id"] and outcome["release"]["promoted_from"] == state["b"]["id"]
    assert outcome["changed"] == {host: 0 for host in sandbox_hosts}
    with pytest.raises(DeployError, match="target-1 never ran it; target-2 never ran it.*--force-reason"):
        deploy.deploy(ENV, MODELS_A, release_id=state["killed"]["id"])
    assert current_releases() == {host: state["b"]["id"] for host in sandbox_hosts}


def test_prune_keeps_the_current_and_previous_releases_and_removes_stale_archives(sandbox_hosts, state):
    """`invoke prune`, under the environment's lock: with two releases kept, both stay (B current, A previous) and
    their images with them; an image archive an interrupted deploy left on the controller hours ago goes."""
    stale = deploy.IMAGE_CACHE / "0123456789ab.tar"
    deploy.IMAGE_CACHE.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"left by a killed deploy")
    os.utime(stale, (time.time() - 2 * deploy.STALE_ARCHIVE_S,) * 2)
    table = render_table(deploy.prune(ENV, keep=2))
    assert not stale.exists() and "1 image archives" in table, table
    for row in deploy.host_results(ENV):
        assert sorted(row["kept"]) == sorted([state["a"]["id"], state["b"]["id"]]) and row["pruned"]["images"] == []
    assert current_releases() == {host: state["b"]["id"] for host in sandbox_hosts}
    assert on_host("target-1", f"sudo test -e {HOME}/deploy.lock").returncode == 1, "prune kept the lock"


def invoke(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`invoke ARGS` as an operator types it (this checkout, this virtualenv)."""
    command = [str(Path(sys.executable).parent / "invoke"), *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False, timeout=timeout)


def test_the_fleet_is_operated_through_the_bastion_with_pinned_host_keys(sandbox_hosts, state, tmp_path):
    """Fabric through the bastion: `invoke status` shows both hosts healthy on B, `audit` merges their logs, `exec`
    runs in a backend container on each host, `logs` merges the proxies' lines, `tunnel` reaches a Prometheus that
    publishes nothing on its host. A host key missing from the pinned known_hosts, then a changed one, is refused
    naming the host and what to do, and the other host still answers."""
    status = invoke("status", f"--env={ENV}")
    assert status.returncode == 0, status.stdout + status.stderr
    assert status.stdout.count(state["b"]["id"]) == len(sandbox_hosts) and "backends 2/2 in rotation" in status.stdout
    audit = invoke("audit", f"--env={ENV}", "--last", "0")
    assert audit.returncode == 0, audit.stderr
    assert all(event in audit.stdout for event in ("deploy", "rollback", "failed", deploy.deployer()))
    ran = invoke("exec", f"--env={ENV}", "--service", "backend", "--", "python", "-c", "print('answer', 6 * 7)")
    assert ran.returncode == 0 and sorted(ran.stdout.splitlines()) == [f"{h} | answer 42" for h in sandbox_hosts]
    assert invoke("exec", f"--env={ENV}", "--service", "backend", "--", "false").returncode == 1
    logs = invoke("logs", f"--env={ENV}", "--service", "proxy", "--tail", "5")
    assert logs.returncode == 0 and {line.split()[0] for line in logs.stdout.splitlines()} == set(sandbox_hosts)

    tunnel = subprocess.Popen(
        [str(Path(sys.executable).parent / "invoke"), "tunnel", f"--env={ENV}", "--service", "prometheus"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = tunnel.stdout.readline().split()[3]  # "prometheus on sandbox: URL  (Ctrl-C closes the tunnel)"
        up = httpx.get(f"{url}api/v1/query", params={"query": "up"}, timeout=10).json()
        assert up["status"] == "success" and up["data"]["result"], up
    finally:
        tunnel.terminate()
        assert tunnel.wait(timeout=30) == 0

    pinned = ssh.known_hosts_path(ENV)
    kept = pinned.read_text()
    other = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    changed = [
        f"target-2 {' '.join(other.with_suffix('.pub').read_text().split()[:2])}"
        if line.startswith("target-2 ")
        else line
        for line in kept.splitlines()
    ]
    try:
        pinned.write_text("\n".join(line for line in kept.splitlines() if not line.startswith("target-2 ")) + "\n")
        refused = invoke("status", f"--env={ENV}")
        assert refused.returncode == 1 and "target-1 " in refused.stdout, refused.stdout
        assert "target-2: refused: target-2's host key" in refused.stderr and "invoke known-hosts" in refused.stderr
        pinned.write_text("\n".join(changed) + "\n")
        refused = invoke("status", f"--env={ENV}")
        assert refused.returncode == 1 and "target-2: refused: the host key CHANGED" in refused.stderr, refused.stderr
    finally:
        pinned.write_text(kept)


def prometheus_value(host: str, expr: str) -> str:
    """EXPR's value on HOST's Prometheus (which publishes nothing): '' when it has no series."""
    container = on_host(host, "sudo docker ps --quiet --filter label=com.docker.compose.service=prometheus").stdout
    answer = on_host(
        host,
        f"sudo docker exec {container.split()[0]} promtool query instant -o json http://127.0.0.1:9090 '{expr}'",
    )
    assert answer.returncode == 0, answer.stderr
    found = json.loads(answer.stdout)
    return found[0]["value"][1] if found else ""


def wait_value(host: str, expr: str, value: str, timeout: float) -> float:
    started = time.monotonic()
    while (found := prometheus_value(host, expr)) != value:
        assert time.monotonic() - started < timeout, f"{host}: {expr} is {found!r}, not {value}, after {timeout} s"
        time.sleep(1)
    return time.monotonic() - started


def test_drift_on_a_host_is_exported_alerted_and_named_by_verify(sandbox_hosts, state, capsys):
    """On target-1, a container started by hand and a release file edited by hand: its release exporter sets
    mnist_release_drift to 1 within one scrape (15 s here), MnistReleaseDrift is pending (it fires after 2 min: a
    promtool case), and the nightly check fails naming the host and both differences; target-2 passes it. Undone,
    the drift is 0 again."""
    host = "target-1"
    listed = on_host(host, "sudo docker ps --filter label=com.docker.compose.service=prometheus --format '{{.Image}}'")
    image = listed.stdout.split()[0]
    compose = f"{HOME}/current/compose.yaml"
    assert wait_value(host, "mnist_release_drift", "0", 60) >= 0
    started = on_host(host, f"sudo docker run --detach --network none --entrypoint sleep {image} 600")
    assert started.returncode == 0, started.stderr
    intruder = started.stdout.strip()
    edited = on_host(host, f"sudo cp -p {compose} /tmp/compose.yaml.kept && echo '# by hand' | sudo tee -a {compose}")
    assert edited.returncode == 0, edited.stderr
    try:
        took = wait_value(host, "mnist_release_drift", "1", 15 + 10)
        wait_value(host, 'count(ALERTS{alertname="MnistReleaseDrift"})', "1", 60)
        with capsys.disabled():
            print(f"\ndrift on {host} exported {took:.0f} s after a container was started by hand (scrape: 15 s)")
        nightly = invoke("verify", f"--env={ENV}", "--pytest-args=-k the_host_runs_what -q", timeout=300)
        assert nightly.returncode != 0
        assert f"{host} differs from what its last deploy recorded" in nightly.stdout, nightly.stdout[-3000:]
        assert f"container {intruder[:12]} runs but no deploy started it" in nightly.stdout
        assert "compose.yaml differs from the release" in nightly.stdout
        assert "1 failed, 1 passed" in nightly.stdout, nightly.stdout[-1000:]  # target-2 has not drifted
    finally:
        on_host(host, f"sudo docker rm --force {intruder}")
        on_host(host, f"sudo mv /tmp/compose.yaml.kept {compose}")
    wait_value(host, "mnist_release_drift", "0", 15 + 10)


def test_ansible_on_the_bastion_deploys_a_release_handed_over_and_verifies(sandbox_hosts, state):
    """`invoke bastion.setup --release A` hands release A, built here, to the bastion (wheels, a virtualenv, the
    checkout at A's commit, A's bundle of image archives); then, on the bastion, `invoke deploy --release A` runs
    Ansible there with no engine, shipping target-2 the backend image it no longer holds from the bundle, and
    `invoke verify` passes there. The audit log names the operator the run was for."""
    a = state["a"]["id"]
    backend = next(image["ref"] for image in state["a"]["images"] if image["service"] == "backend")
    removed = on_host("target-2", f"sudo docker image rm {backend}")
    assert removed.returncode == 0, removed.stderr
    setup = invoke("bastion.setup", f"--env={ENV}", "--release", a, "--copy-key", timeout=900)
    assert setup.returncode == 0, setup.stdout[-2000:] + setup.stderr[-2000:]
    assert "bastion ready" in setup.stdout and not (ROOT / "build" / "bundles" / a).exists()
    ran = invoke(
        "bastion.run", f"--env={ENV}", "--as", "alice", "--", "deploy", f"--env={ENV}", "--release", a, timeout=900
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-2000:]
    assert "Load the images into the host's engine" in ran.stdout  # target-2 got its backend from the bundle
    assert current_releases() == {host: a for host in sandbox_hosts}
    for host in sandbox_hosts:
        line = json.loads(on_host(host, f"sudo tail -n 1 {HOME}/audit.log").stdout)
        assert (line["event"], line["release"]) == ("deploy", a) and line["by"].startswith("alice@"), line
    checked = invoke("bastion.run", f"--env={ENV}", "--", "verify", f"--env={ENV}", timeout=600)
    assert checked.returncode == 0, checked.stdout[-3000:]
    state["serving"] = a


def stack_containers(host: str) -> dict[str, str]:
    """{container id: when it started} for the stack's running containers on HOST."""
    project = "--filter label=com.docker.compose.project=mnist-sandbox"
    ids = on_host(host, f"sudo docker ps --quiet --no-trunc {project}").stdout.split()
    assert ids, f"{host}: no container of the stack runs"
    out = on_host(host, "sudo docker inspect --format '{{.Id}} {{.State.StartedAt}}' " + " ".join(ids)).stdout
    return dict(line.split() for line in out.splitlines())


def wait_healthy(host: str, timeout: float = 180) -> list[str]:
    """Wait until every container of the stack on HOST runs and is healthy; their names and states otherwise."""
    project = "--filter label=com.docker.compose.project=mnist-sandbox"
    deadline = time.monotonic() + timeout
    while True:
        listing = on_host(host, f"sudo docker ps --all {project} --format '{{{{.Names}}}} {{{{.Status}}}}'")
        states = listing.stdout.splitlines()
        waiting = [line for line in states if "(healthy)" not in line]
        if listing.returncode == 0 and states and not waiting:
            return []
        if time.monotonic() > deadline:
            return waiting or [listing.stderr.strip() or "no container"]
        time.sleep(2)


def test_an_engine_restart_under_load_stops_no_container(sandbox_hosts, state, capsys):
    """target-2's engine is restarted by systemd (what a package upgrade does) under constant load through its
    proxy. With live-restore (bootstrap sets it) every container runs on, the same ones, and the proxy keeps the
    replicas' addresses while Docker's DNS is away; the failed requests are counted and stated."""
    host = "target-2"
    before, engine = stack_containers(host), dockerd_pid(host)
    assert on_host(host, "sudo docker info --format '{{.LiveRestoreEnabled}}'").stdout.strip() == "true"
    load = rollout.start_load(host, connections=2, rate=20)
    try:
        time.sleep(3)
        restart = on_host(host, "sudo systemctl restart docker")
        assert restart.returncode == 0, restart.stderr
        time.sleep(5)
    finally:
        out, _ = load.communicate(input="", timeout=60)
    answers = [json.loads(line) for line in out.splitlines() if line.startswith("[")]
    failed = [answer for answer in answers if answer[2] != 200]
    with capsys.disabled():
        print(f"\nengine restart on {host} under load: {len(answers)} requests, {len(failed)} failed {failed[:5]}")
    assert dockerd_pid(host) != engine, "the engine did not restart"
    assert stack_containers(host) == before, "containers were stopped or replaced by the engine's restart"
    assert len(answers) > 100 and not failed, (len(answers), failed[:10])
    assert wait_healthy(host) == []


def test_a_rebooted_host_serves_again_without_a_redeploy(sandbox_hosts, state):
    """target-1 restarts as a server reboots (every process gone, /run fresh): its engine comes back, and with it
    every container of the stack (restart: unless-stopped), and `invoke verify` passes with no deploy."""
    host = "target-1"
    subprocess.run(["docker", "stop", "--time", "10", sandbox.container(host)], check=True, capture_output=True)
    down = invoke("status", f"--env={ENV}")  # while it is off: reported, and the other host still answers
    assert down.returncode == 1 and f"{host}: unreachable from the bastion" in down.stderr, down.stderr
    assert "target-2 " in down.stdout and state["serving"] in down.stdout
    subprocess.run(["docker", "start", sandbox.container(host)], check=True, capture_output=True)
    deadline = time.monotonic() + 90
    while on_host(host, "true").returncode != 0:
        assert time.monotonic() < deadline, f"{host} does not answer SSH after its restart"
        time.sleep(1)
    assert wait_healthy(host) == []
    assert current_releases() == {host: state["serving"] for host in sandbox_hosts}
    verify()

"""testinfra on every host of an inventory: what runs is the recorded release, hardened, healthy and correct."""

from __future__ import annotations

import base64
import ipaddress
import json
import time

import numpy as np
import pytest

from mnist_deploy.collection import alerting, identity, services
from mnist_deploy.environment import Host
from tests.infra.conftest import SERVICES, find_secrets, host_drift

pytestmark = pytest.mark.infra


def test_the_recorded_release_is_current_and_complete(remote, release):
    record = release["record"]
    assert remote.file(f"{release['home']}/current").linked_to == f"{release['home']}/releases/{record['id']}"
    assert record["env"] == release["vars"]["mnist_stack_env"]
    # The images of the services the host runs, no other (a host without the database is not sent its image).
    assert {image["service"] for image in record["images"]} == set(SERVICES) & set(release["host"].services)


def test_the_host_runs_what_its_last_deploy_recorded(env, hostname, release):
    """No drift (module_utils/drift.py, what the release exporter reports): no container started, stopped or replaced
    by hand since the last deploy, no file of the release edited."""
    found = host_drift(env, hostname, release["home"])
    assert found["release"] == release["record"]["id"]
    assert not found["drift"], f"{hostname} differs from what its last deploy recorded: {'; '.join(found['drift'])}"


def expected_containers(host: Host, service: str) -> int:
    running = host.services.get(service)
    return running.replicas if running else 0


@pytest.mark.parametrize("service", SERVICES)
def test_service_containers_are_running_and_healthy(containers, release, service):
    expected = expected_containers(release["host"], service)
    running = containers.get(service, [])
    assert len(running) == expected
    for info in running:
        assert info["State"]["Status"] == "running", info["Name"]
        assert info["State"]["Health"]["Status"] == "healthy", info["Name"]


@pytest.mark.parametrize("service", SERVICES)
def test_containers_run_the_recorded_release_images(containers, remote, release, service):
    """By identity (the collection's identity.py): the id a host gives an image differs between image stores."""
    recorded = [i for i in release["record"]["images"] if i["service"] == service]  # none if the host runs none
    expected = {identity.of(i) for i in recorded} if expected_containers(release["host"], service) else set()
    running = sorted({info["Image"] for info in containers.get(service, [])})
    found = json.loads(remote.check_output(f"docker image inspect {' '.join(running)}")) if running else []
    assert recorded or not found, f"{service} runs, but the release record lists no image of it"
    assert {identity.identity(info) if "identity" in recorded[0] else info["Id"] for info in found} == expected


@pytest.mark.parametrize("service", SERVICES)
def test_containers_are_non_root_read_only_and_limited(containers, in_container, service):
    for info in containers.get(service, []):
        config = info["HostConfig"]
        assert in_container(info["Id"], "id -u") != "0", info["Name"]
        assert config["ReadonlyRootfs"] is True
        assert config["CapDrop"] == ["ALL"]
        assert "no-new-privileges:true" in config["SecurityOpt"]
        assert config["Memory"] > 0 and config["NanoCpus"] > 0 and config["PidsLimit"] > 0
        assert config["LogConfig"]["Config"]["max-size"]


def on_loopback(socket: str) -> bool:
    """Whether a listening socket (testinfra's "tcp://ADDRESS:PORT") is bound to a loopback address."""
    return ipaddress.ip_address(socket.removeprefix("tcp://").rsplit(":", 1)[0]).is_loopback


def test_only_intended_ports_listen(remote, release):
    """Every port the stack publishes listens, and beyond the loopback nothing else but the system's own listeners
    the inventory declares (mnist_stack_system_listeners: sshd by default). What a host binds to a loopback address
    is no exposure: systemd-resolved's 127.0.0.53 and containerd's 127.0.0.1 on a real server, Docker's embedded DNS
    (127.0.0.11) when the host is itself a container (the sandbox)."""
    published = set()
    for service in release["host"].services.values():
        published |= {f"tcp://{address}:{port}" for address, port in service.published}
    listening = {s for s in remote.socket.get_listening_sockets() if s.startswith("tcp://")}
    assert published <= listening, f"published but not listening: {sorted(published - listening)}"
    system = set(release["vars"]["mnist_stack_system_listeners"])
    assert {s for s in listening - published if not on_loopback(s)} <= system, f"declared: {sorted(system)}"


def test_predictions_through_the_app_network_are_correct(in_container, containers, mnist_sample):
    """From the frontend container, as the app calls it: the backend service name, real test digits."""
    images, labels = mnist_sample
    pixels = base64.b64encode(images[:20].tobytes()).decode()
    script = (
        "import base64, sys, httpx; p = base64.b64decode(sys.argv[1]); "
        "images = [[b / 255 for b in p[i * 784:(i + 1) * 784]] for i in range(20)]; "
        "r = httpx.post('http://backend:8000/api/v1/predict/batch', json={'images': images}, timeout=30); "
        "r.raise_for_status(); print(r.text)"
    )
    frontend = containers["frontend"][0]["Id"]
    answer = in_container(frontend, f'python3 -c "{script}" {pixels}')
    predictions = [p["digit"] for p in json.loads(answer)["predictions"]]
    assert np.mean(np.array(predictions) == labels[:20]) >= 0.9


def test_every_replica_serves_the_recorded_model(in_container, containers, release):
    port = release["vars"]["mnist_stack_backend_port"]
    script = f"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{port}/ready').read().decode())"
    for info in containers["backend"]:
        ready = json.loads(in_container(info["Id"], f'python3 -c "{script}"'))
        assert ready["model_version"] == release["record"]["model_version"], info["Name"]


def test_prometheus_scrapes_every_replica_and_nothing_else(in_container, containers, release):
    """Prometheus's active targets, as its API lists them (asked from the frontend, over the stack's network).

    Not the `up` series: a replica removed just before Prometheus restarted keeps its last sample for 5 minutes.
    """
    variables = release["vars"]
    project, port = variables["mnist_stack_project"], variables["mnist_stack_backend_port"]
    replicas = sorted(
        f"{info['NetworkSettings']['Networks'][f'{project}_internal']['IPAddress']}:{port}"
        for info in containers["backend"]
    )
    url = f"http://prometheus:{variables['mnist_stack_prometheus_port']}/api/v1/targets?state=active"
    script = f"import urllib.request; print(urllib.request.urlopen('{url}', timeout=10).read().decode())"
    frontend = containers["frontend"][0]["Id"]
    deadline = time.monotonic() + 60  # DNS discovery every 5 s, then a scrape within one interval (15 s)
    while True:
        targets = json.loads(in_container(frontend, f'python3 -c "{script}"'))["data"]
        health = {(t["labels"]["job"], t["labels"]["instance"]): t["health"] for t in targets["activeTargets"]}
        backends = sorted(instance for job, instance in health if job == "backend")
        if backends == replicas and set(health.values()) == {"up"}:
            break
        if time.monotonic() > deadline:
            errors = {t["labels"]["instance"]: t["lastError"] for t in targets["activeTargets"] if t["lastError"]}
            raise AssertionError(f"targets {health}, errors {errors}; the replicas are {replicas}")
        time.sleep(3)
    assert ("prometheus", f"localhost:{variables['mnist_stack_prometheus_port']}") in health
    running = release["host"].services
    assert {job for job, _ in health} == {"backend", "prometheus"} | {
        job for service, job in SCRAPE_JOBS.items() if service in running
    }


# The scrape job of each service Prometheus scrapes when the host runs it (templates/prometheus/prometheus.yml.j2).
SCRAPE_JOBS = {
    "alertmanager": "alertmanager",
    "node_exporter": "node",
    "release_exporter": "release",
    "grafana": "grafana",
}


def test_prometheus_sends_its_alerts_to_the_hosts_alertmanager(in_container, containers, release):
    if "alertmanager" not in release["host"].services:
        pytest.skip("this host runs no Alertmanager")
    variables = release["vars"]
    url = f"http://prometheus:{variables['mnist_stack_prometheus_port']}/api/v1/alertmanagers"
    script = f"import urllib.request; print(urllib.request.urlopen('{url}', timeout=10).read().decode())"
    found = json.loads(in_container(containers["frontend"][0]["Id"], f'python3 -c "{script}"'))
    active = [entry["url"] for entry in found["data"]["activeAlertmanagers"]]
    assert active == [f"http://alertmanager:{variables['mnist_stack_alertmanager_port']}/api/v2/alerts"]


# The proxy, seen from the host as a client sees it: TLS with the environment's certificate, HTTP sent to HTTPS,
# metrics not exposed. The request runs on the host itself (to its own published ports), with its python3.
PROXY_PROBE = """
import base64, json, ssl, sys, urllib.error, urllib.request
ca, https_port, http_port = base64.b64decode(sys.argv[1]).decode(), sys.argv[2], sys.argv[3]
context = ssl.create_default_context(cadata=ca) if ca else ssl.create_default_context()
def get(url, **kw):
    try:
        with urllib.request.urlopen(url, timeout=10, **kw) as answer:
            return answer.status, dict(answer.headers), answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()
class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args):
        return None
opener = urllib.request.build_opener(NoRedirect)
try:
    opener.open(f"http://localhost:{http_port}/api/v1/model?x=1", timeout=10)
    redirect = None
except urllib.error.HTTPError as error:
    redirect = [error.code, error.headers["location"]]
print(json.dumps({
    "ready": get(f"https://localhost:{https_port}/ready", context=context),
    "metrics": get(f"https://localhost:{https_port}/metrics", context=context)[0],
    "ui": get(f"https://localhost:{https_port}/", context=context)[0],
    "redirect": redirect,
}))
"""


def test_the_proxy_sends_to_every_replica_and_holds_no_slot_in_maintenance(in_container, containers, release):
    """Capacity a rollout could lose: a slot left in forced maintenance, or a replica the proxy does not use."""
    variables = release["vars"]
    if not variables["mnist_stack_proxy_enabled"]:
        pytest.skip("no proxy in this environment")
    project = variables["mnist_stack_project"]
    replicas = {
        info["NetworkSettings"]["Networks"][f"{project}_internal"]["IPAddress"] for info in containers["backend"]
    }
    proxy = containers["proxy"][0]["Id"]
    deadline = time.monotonic() + 20  # health checks every second; a just-started replica needs two to count as up
    while True:
        # show servers state: be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state ...
        rows = [row.split() for row in in_container(proxy, "proxy-ctl show").splitlines()]
        slots = [row for row in rows if len(row) > 7 and row[1] == "api"]
        in_maintenance = sorted(row[3] for row in slots if int(row[6]) & 1)
        up = {row[4] for row in slots if row[5] == "2"}
        if (not in_maintenance and up == replicas) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert not in_maintenance, f"proxy slots left in maintenance: {in_maintenance}"
    assert up == replicas, f"the proxy sends to {sorted(up)}, the replicas are {sorted(replicas)}"


def test_the_proxy_serves_tls_redirects_http_and_hides_metrics(remote, release, tls_ca):
    variables = release["vars"]
    if not variables["mnist_stack_proxy_enabled"]:
        pytest.skip("no proxy in this environment")
    https_port = variables["mnist_stack_proxy_https_host_port"]
    http_port = variables["mnist_stack_proxy_http_host_port"]
    encoded = base64.b64encode(PROXY_PROBE.encode()).decode()
    command = f"python3 -c \"import base64; exec(base64.b64decode('{encoded}'))\" '{tls_ca}' {https_port} {http_port}"
    result = json.loads(remote.check_output(command))
    status, headers, body = result["ready"]
    assert status == 200 and json.loads(body)["model_version"] == release["record"]["model_version"]
    assert headers.get("strict-transport-security", "").startswith("max-age=")
    assert result["metrics"] == 404
    assert result["ui"] == 200
    suffix = "" if https_port == 443 else f":{https_port}"
    assert result["redirect"] == [301, f"https://localhost{suffix}/api/v1/model?x=1"]


SECRET_VARIABLES = ("mnist_stack_tls_private_key", *(service.vault_variable for service in services.WITH_PASSWORD))


def test_secrets_are_in_no_container_log_and_no_release_file(env, hostname, release, containers):
    """The vault's values reach only their own files (secrets/ in a release or Alertmanager's folder, the proxy's
    folder), never a log or a rendered config.

    The search runs on the host with the secrets on stdin (find_secrets.py): a secret never goes on a command line.
    """
    needles = []
    for name in SECRET_VARIABLES:
        value = str(release["vars"].get(name) or "").strip()
        if value:  # a PEM key is searched by its first line of base64, a password whole
            lines = [line for line in value.splitlines() if line and not line.startswith("-----")]
            needles.append(lines[0] if lines else value)
    if "alertmanager" in release["host"].services:  # the receivers' webhook URLs and the e-mail relay's password
        needles += list(alerting.secret_files(release["vars"]).values())
    if not needles:
        pytest.skip("no secret is set for this environment")
    home = release["home"]
    ids = [info["Id"] for infos in containers.values() for info in infos]
    roots = [f"{home}/releases", f"{home}/alertmanager", f"{home}/audit.log"]
    found = find_secrets(env, hostname, needles, ids, roots)
    assert not found["errors"], found["errors"]
    assert not found["logs"], f"a secret is in the logs of {found['logs']}"
    leaked = [path for path in found["files"] if "/secrets/" not in path]
    assert not leaked, f"a secret is in {leaked}"

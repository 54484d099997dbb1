"""Hosts of one inventory, reached over SSH through the bastion with the ssh_config `invoke verify` writes.

Expected values come from the release recorded on each host and from the inventory (as the renderer reads it).
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import testinfra

from mnist_deploy import images, ssh, tls
from mnist_deploy.environment import Environment

SERVICES = images.SERVICES  # the services a release has images for (the collection's services.py)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "hostname" in metafunc.fixturenames:
        env = metafunc.config.getoption("--env")
        metafunc.parametrize("hostname", sorted(Environment.read(env).hosts), scope="session")


@pytest.fixture(scope="session")
def env(request: pytest.FixtureRequest) -> str:
    return str(request.config.getoption("--env"))


@pytest.fixture(scope="session")
def remote(env: str, hostname: str) -> Any:
    config = ssh.config_path(env)
    if not config.is_file():
        pytest.fail(f"{config} is missing: run `invoke verify --env={env}`, which writes it")
    return testinfra.get_host(f"ssh://{hostname}", ssh_config=str(config), sudo=True)


# `docker exec` can fail before its command runs: runc's "OCI runtime exec failed: … read init-p: connection reset
# by peer" (exit 126), seen once in CI on a replica a rollback had started a minute before, on a machine whose two
# cores run every host. The runtime failed to start a process; the check never ran. Such an exec is tried again
# (RUNTIME_TRIES in all, 2 s apart, each retry printed); any other failure is the check's own.
RUNTIME_TRIES = 3


def exec_in(remote: Any, container: str, command: str, pause: float = 2.0) -> str:
    """Run COMMAND in the container ID on REMOTE's host (`docker exec`): its output, or an AssertionError naming why."""
    for attempt in range(1, RUNTIME_TRIES + 1):
        result = remote.run(f"docker exec {container} {command}")
        said = (result.stdout + result.stderr).strip()
        if result.rc == 126 and "OCI runtime exec failed" in said and attempt < RUNTIME_TRIES:
            print(f"docker exec in {container[:12]}: the runtime did not start it ({said[:200]}); trying again")
            time.sleep(pause)
            continue
        assert result.rc == 0, f"docker exec {container[:12]} {command[:80]} exited {result.rc}: {said[-800:]}"
        return str(result.stdout).rstrip("\r\n")
    raise AssertionError("unreachable: the last try returns or fails")


@pytest.fixture(scope="session")
def in_container(remote: Any) -> Callable[[str, str], str]:
    """exec_in on this host."""
    return lambda container, command: exec_in(remote, container, command)


@pytest.fixture(scope="session")
def environment(env: str) -> Environment:
    """Every host as the renderer reads it (one inventory read for the whole run).

    The image tag is required to resolve them but none of the checked values depends on it: the images a host
    must run come from its release record.
    """
    return Environment.read(env, {"mnist_stack_image_tag": "from-the-release-record"}).checked()


@pytest.fixture(scope="session")
def release(remote: Any, environment: Environment, hostname: str) -> dict[str, Any]:
    host = environment.hosts[hostname]
    variables = host.variables
    home = f"{variables['mnist_stack_root']}/{variables['mnist_stack_project']}"
    record = json.loads(remote.check_output(f"cat {home}/current/release.json"))
    return {"record": record, "vars": variables, "home": home, "host": host}


@pytest.fixture(scope="session")
def containers(remote: Any, release: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Each service's containers on the host, as `docker inspect` describes them."""
    project = release["vars"]["mnist_stack_project"]
    ids = remote.check_output(f"docker ps -aq --filter label=com.docker.compose.project={project}").split()
    assert ids, f"no container of {project} on the host"
    result: dict[str, list[dict[str, Any]]] = {}
    for info in json.loads(remote.check_output(f"docker inspect {' '.join(ids)}")):
        result.setdefault(info["Config"]["Labels"]["com.docker.compose.service"], []).append(info)
    return result


@pytest.fixture(scope="session")
def tls_ca(env: str, request: pytest.FixtureRequest) -> str:
    """The CA the proxy's certificate must verify against, base64 PEM ('' for the system's trust store)."""
    path = request.config.getoption("--ca-file") or (str(tls.SANDBOX_DIR / "ca.pem") if env == "sandbox" else "")
    return base64.b64encode(Path(path).read_bytes()).decode() if path else ""


FIND_SECRETS = Path(__file__).with_name("find_secrets.py")


def find_secrets(env: str, hostname: str, needles: list[str], containers: list[str], roots: list[str]) -> Any:
    """Where NEEDLES appear on HOSTNAME (container logs, files under ROOTS), searched there with them on stdin."""
    payload = base64.b64encode(json.dumps({"needles": needles, "containers": containers, "roots": roots}).encode())
    script = FIND_SECRETS.read_text() + f'\nmain("{payload.decode()}")\n'
    proc = subprocess.run(
        ["ssh", "-F", str(ssh.config_path(env)), hostname, "sudo -n python3 -"],
        input=script,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"the secrets search failed on {hostname}: {proc.stderr.strip()[-500:]}"
    return json.loads(proc.stdout)


def host_drift(env: str, hostname: str, home: str) -> Any:
    """The collection's drift check (module_utils/drift.py, what the release exporter runs) run on HOSTNAME against
    HOME: {release, recorded_at, in_progress, drift}. Sent with its one companion (lock.py) on stdin."""
    from mnist_deploy.collection import COLLECTIONS

    module_utils = COLLECTIONS / "ansible_collections" / "mnist" / "deploy" / "plugins" / "module_utils"
    sources = {name: (module_utils / f"{name}.py").read_text() for name in ("lock", "drift")}
    script = (
        "import json, sys, types\n"
        f"sources = json.loads({json.dumps(json.dumps(sources))})\n"
        "for name, source in sources.items():\n"
        "    module = sys.modules[name] = types.ModuleType(name)\n"
        "    exec(compile(source, name + '.py', 'exec'), module.__dict__)\n"
        f"state = sys.modules['drift'].inspect({home!r})\n"
        "print(json.dumps({**state, 'record': {}}))\n"
    )
    proc = subprocess.run(
        ["ssh", "-F", str(ssh.config_path(env)), hostname, "sudo -n python3 -"],
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, f"the drift check failed on {hostname}: {proc.stderr.strip()[-500:]}"
    return json.loads(proc.stdout)

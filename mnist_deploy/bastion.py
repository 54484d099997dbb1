"""The toolkit on the bastion, so Ansible runs there (`mnist_bastion_mode` on) instead of through it.

`invoke bastion.setup --env=X [--release ID]`, from the controller (a CI runner, a laptop), over the pinned Fabric
connection to the bastion (mnist_deploy/fleet.py):

    ~/mnist-deploy/wheels/                  the ops requirements as wheels, downloaded here (requirements-ops.txt):
                                            the bastion needs no package index, nor python3-venv's ensurepip
    ~/mnist-deploy/venv/                    a virtualenv installed from them (--no-index)
    ~/mnist-deploy/checkouts/<sha>/         the repository at the commit (`git archive`, REVISION says which), with
                                            the environment's inventory as this controller has it (its git-ignored
                                            files too), its pinned known_hosts and, with --copy-key, its SSH key
    ~/mnist-deploy/checkouts/<sha>/build/bundles/<id>/   --release: the release's bundle (mnist_deploy/bundle.py):
                                            its record and image archives, so it deploys with no engine there
    ~/mnist-deploy/current -> checkouts/<sha>

The bastion is not a build server: it receives releases built elsewhere. `invoke bastion.run --env=X -- deploy
--env=X --release ID` then runs an invoke task there (MNIST_BASTION_MODE=on: the hosts are reached directly, and
the audit log names the operator given with --as, else the controller's).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from mnist_deploy import bundle, deploy, images, render, ssh, tls
from mnist_deploy.errors import DeployError
from mnist_deploy.fleet import Fleet
from mnist_deploy.shell import console

HOME = "mnist-deploy"  # under the bastion user's home
REQUIREMENTS = render.ROOT / "requirements-ops.txt"
WHEELS = render.BUILD / "wheels"


def alias(env: str) -> str:
    return f"mnist-bastion-{env}"


def wheelhouse() -> Path:
    """The ops requirements (and pip) as wheels for this Python, from this machine's package index settings."""
    WHEELS.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(WHEELS), "-r", str(REQUIREMENTS)]
    pip_version = subprocess.run(
        [sys.executable, "-m", "pip", "--version"], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    done = subprocess.run([*command, f"pip=={pip_version}"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise DeployError(f"downloading the ops requirements' wheels failed: {done.stderr.strip()[-500:]}")
    return WHEELS


def virtualenv_commands(
    venv: str, wheels: str, pip_wheel: str, requirements: str, python: str = "python3"
) -> tuple[list[str], list[str], list[str]]:
    """The three commands that make the virtualenv VENV of PYTHON from the folder WHEELS alone — no package index,
    no ensurepip (Debian's python3-venv need not be there): the bare virtualenv, pip from its own wheel PIP_WHEEL
    (run from inside it), then REQUIREMENTS. A bastion runs them; so does the deploy scenario's operator."""
    return (
        [python, "-m", "venv", "--without-pip", venv],
        [f"{venv}/bin/python", f"{pip_wheel}/pip", "install", "--quiet", "--no-index", pip_wheel],
        [f"{venv}/bin/pip", "install", "--quiet", "--no-index", "--find-links", wheels, "-r", requirements],
    )


def _put_missing(connection: Any, local: list[Path], remote_dir: str) -> int:
    """Copy the LOCAL files remote_dir lacks (by name and size); the bytes copied."""
    listing = connection.run(f"cd {shlex.quote(remote_dir)} && stat -c '%n %s' -- * 2>/dev/null || true", hide=True)
    there = dict(line.rsplit(" ", 1) for line in listing.stdout.splitlines() if " " in line)
    sent = 0
    for path in local:
        if there.get(path.name) != str(path.stat().st_size):
            connection.put(str(path), f"{remote_dir}/{path.name}")
            sent += path.stat().st_size
    return sent


def _checkout_archive(sha: str, env: str, out: Path, copy_key: bool, environment_vars: dict[str, Any]) -> None:
    """The repository at SHA (`git archive`), plus REVISION, ENV's inventory as it is here and its SSH files."""
    archived = subprocess.run(
        ["git", "archive", "--format=tar", f"--output={out}", sha], cwd=render.ROOT, capture_output=True, text=True
    )
    if archived.returncode != 0:
        raise DeployError(f"git archive {sha} failed: {archived.stderr.strip()}")
    with tarfile.open(out, "a") as tar:
        with tempfile.NamedTemporaryFile("w", suffix="-REVISION") as revision:
            revision.write(sha + "\n")
            revision.flush()
            tar.add(revision.name, arcname="REVISION")
        inventory = render.INVENTORIES / env
        for path in sorted(inventory.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=str(path.relative_to(render.ROOT)))
        known = ssh.known_hosts_path(env)
        if not known.is_file():
            raise DeployError(f"{known} is missing: pin the hosts' keys first (`invoke known-hosts --env={env}`)")
        tar.add(known, arcname=str(known.relative_to(render.ROOT)))
        ca = tls.SANDBOX_DIR / "ca.pem"  # `invoke verify` checks the sandbox proxy's certificate against its own CA
        if env == "sandbox" and ca.is_file():
            tar.add(ca, arcname=str(ca.relative_to(render.ROOT)))
        if copy_key:
            key = ssh.identity_file(environment_vars)
            if not key.is_relative_to(render.ROOT):
                raise DeployError(f"--copy-key copies a key inside the checkout; {key} is not")
            tar.add(key, arcname=str(key.relative_to(render.ROOT)))


def setup(env: str, release_id: str = "", copy_key: bool = False) -> str:
    """Install the toolkit on ENV's bastion (see the module docstring); return the checkout's path there."""
    fleet = Fleet(env)
    if ssh.bastion_endpoint(env, fleet.environment.hostvars) is None:
        raise DeployError(f"{env} is reached with the bastion mode 'on' here: run bastion.setup from a controller")
    release: dict[str, Any] | None = None
    if release_id:
        path = deploy.RELEASES / f"{release_id}.json"
        if not path.is_file():
            raise DeployError(f"release {release_id} was not assembled here ({path} is missing)")
        release = json.loads(path.read_text())
    sha = release["git_sha"] if release else images.git_sha()
    if "-dirty" in sha:
        raise DeployError(
            f"{'release ' + release_id if release else 'this checkout'} has uncommitted changes "
            f"({sha}): a bastion gets a commit; commit them first"
        )
    with fleet.connect(alias(env)) as opened:
        connection: Any = opened  # a Fabric Connection: run() answers, put() copies
        home = connection.run("echo $HOME", hide=True).stdout.strip()
        base = f"{home}/{HOME}"
        checkout = f"{base}/checkouts/{sha}"
        theirs = connection.run("python3 -c 'import sys; print(*sys.version_info[:2])'", hide=True, warn=True)
        ours = f"{sys.version_info[0]} {sys.version_info[1]}"
        if theirs.exited != 0 or theirs.stdout.strip() != ours:
            raise DeployError(
                f"the bastion's python3 is {theirs.stdout.strip() or 'missing'}, this controller's {ours}: the "
                "wheels carried there are built for this one"
            )
        connection.run(f"mkdir -p {base}/wheels {base}/checkouts {checkout}", hide=True)
        console.print(f"[1/4] wheels for {REQUIREMENTS.name}")
        wheels = sorted(wheelhouse().glob("*.whl"))
        sent = _put_missing(connection, wheels, f"{base}/wheels")
        console.print(f"      {len(wheels)} wheels, {sent / 1e6:.0f} MB copied")
        console.print(f"[2/4] virtualenv {base}/venv")
        pip_wheel = next(w for w in wheels if w.name.startswith("pip-"))
        bare, with_pip, requirements = virtualenv_commands(
            f"{base}/venv", f"{base}/wheels", f"{base}/wheels/{pip_wheel.name}", f"{checkout}/requirements-ops.txt"
        )
        connection.run(f"[ -x {base}/venv/bin/pip ] || {{ {shlex.join(bare)} && {shlex.join(with_pip)}; }}", hide=True)
        with tempfile.TemporaryDirectory() as scratch:
            archive = Path(scratch) / f"{sha}.tar"
            variables = next(iter(fleet.environment.hosts.values())).inventory
            _checkout_archive(sha, env, archive, copy_key, variables)
            console.print(f"[3/4] checkout {sha} ({archive.stat().st_size / 1e6:.1f} MB)")
            connection.put(str(archive), f"{base}/checkouts/{sha}.tar")
        connection.run(
            f"tar -xf {base}/checkouts/{sha}.tar -C {checkout} && rm {base}/checkouts/{sha}.tar && "
            f"chmod -R go-rwx {checkout}/build 2>/dev/null; ln -sfn {base}/venv {checkout}/.venv && "
            f"{shlex.join(requirements)} && ln -sfn checkouts/{sha} {base}/current",
            hide=True,
        )
        if release is not None:
            folder = bundle.make(release)
            # The bastion renders ENV's files again for the release; it has no promtool nor Compose to check them:
            # they are checked here, and the digest of the files that passed goes with the release.
            render.render(env, {"mnist_stack_image_tag": release["image_tag"]})
            remote = f"{checkout}/build/bundles/{release_id}"
            connection.run(f"mkdir -p {remote}/images {checkout}/build/.validated", hide=True)
            connection.put(str(render.validated_stamp(env)), f"{checkout}/build/.validated/{env}")
            sent = _put_missing(connection, sorted((folder / "images").glob("*.tar")), f"{remote}/images")
            connection.put(str(folder / bundle.RECORD), f"{remote}/{bundle.RECORD}")
            bundle.remove(release_id)  # made again from the engine when needed: no second copy of every image here
            console.print(f"[4/4] release {release_id}: bundle copied ({sent / 1e6:.0f} MB)")
        else:
            console.print("[4/4] no release handed over (--release ID hands one)")
    return checkout


def run(env: str, args: list[str], operator: str) -> int:
    """`invoke ARGS` in the bastion's current checkout, Ansible there reaching the hosts directly; its output
    streamed here. Return its exit code."""
    if not args:
        raise DeployError("nothing to run: put the invoke task after `--`, e.g. `-- deploy --env=X --release ID`")
    fleet = Fleet(env)
    command = (
        f"cd $HOME/{HOME}/current && {ssh.MODE_ENV}=on MNIST_OPERATOR={shlex.quote(operator)} "
        f".venv/bin/invoke {shlex.join(args)}"
    )
    with fleet.connect(alias(env)) as connection:
        result = connection.run(command, hide=False, warn=True, pty=True)
    assert result is not None
    return int(result.exited)


def operator() -> str:
    """Who a bastion run is for: $MNIST_OPERATOR, else this controller's user."""
    return os.environ.get(deploy.OPERATOR_ENV) or deploy.deployer()

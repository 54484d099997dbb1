"""Releases on remote hosts: assemble a release, run the playbooks through the bastion, report per host.

A release is one immutable unit: image ids, model version, git sha and the hashes of the files rendered for each
host. Its id is a hash of exactly those, so deploying the same release twice is recognised as such.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import shutil
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.table import Table

from app.mnist import store
from mnist_deploy import bundle, engine, gate, images, notify, render, ssh, stack
from mnist_deploy.environment import Environment
from mnist_deploy.errors import DeployError
from mnist_deploy.shell import console

PLAYBOOKS = render.ROOT / "playbooks"
IMAGE_CACHE = render.BUILD / "images"
RELEASES = render.BUILD / "releases"  # every release assembled here, by id: what `deploy --release ID` promotes
REMOTE_ENVS_EXCLUDED = ("dev",)


# Who the audit log names: `invoke deploy --as NAME` (a CI job passes its actor) sets it for the process.
OPERATOR_ENV = "MNIST_OPERATOR"


def deployer() -> str:
    """The human behind a deploy, for the audit log: $MNIST_OPERATOR (`--as`), else the user who ran sudo, else the
    login name (on a bastion, the SSH user's), at this machine."""
    name = os.environ.get(OPERATOR_ENV) or os.environ.get("SUDO_USER") or getpass.getuser()
    return f"{name}@{socket.gethostname()}"


def release_id(release: dict[str, Any]) -> str:
    identity = {key: release[key] for key in ("env", "model_version", "files")}
    identity["images"] = [{key: image[key] for key in ("service", "ref", "id")} for image in release["images"]]
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]


def assemble(env: str, model_dir: Path, extra_ca_dir: Path | None = None, out_root: Path = render.BUILD) -> dict:
    """Build what is missing, render ENV, and describe the release: build/ENV/release.json."""
    if env in REMOTE_ENVS_EXCLUDED:
        raise DeployError(f"{env} runs on this machine: use `invoke up --env={env}`")
    engine.ensure_engine()
    model_version = store.current_version(model_dir)
    tag = images.release_tag(model_version)
    stack.ensure_images(tag, extra_ca_dir, model_dir)
    return describe(env, tag, model_version, out_root, gate_thresholds=gate.for_model(model_dir, model_version))


def describe(
    env: str,
    tag: str,
    model_version: str,
    out_root: Path = render.BUILD,
    images_of: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict:
    """Render ENV for the images tagged TAG and describe that release (EXTRA: what the gate expects of its model,
    gate_thresholds, and what a promotion adds), in
    build/ENV/release.json and in build/releases/ID.json, where `invoke deploy --release ID` finds it. The images
    are inspected on this engine, or IMAGES_OF (a promoted release's, as they were built) are the release's."""
    env_dir = render.render(env, {"mnist_stack_image_tag": tag}, out_root)
    manifest = json.loads((env_dir / "manifest.json").read_text())
    release: dict[str, Any] = {
        "env": env,
        "image_tag": tag,
        "git_sha": tag.split("-")[0],
        "model_version": model_version,
        "images": images_of
        or [
            {"service": s, "ref": ref, **images.image_identity(ref)}
            for s, ref in ((s, images.ref(s, tag)) for s in images.SERVICES)
        ],
        "files": {host: entry["files"] for host, entry in manifest["hosts"].items()},
        **extra,
    }
    release["id"] = release_id(release)
    release["assembled"] = datetime.now(UTC).isoformat(timespec="seconds")
    release["by"] = deployer()
    text = json.dumps(release, indent=2, sort_keys=True) + "\n"
    (env_dir / "release.json").write_text(text)
    RELEASES.mkdir(parents=True, exist_ok=True)
    (RELEASES / f"{release['id']}.json").write_text(text)
    return release


def promote_from(env: str) -> str:
    """The environment ENV's releases must have run in first (`mnist_deploy_promote_from` in its inventory)."""
    values = {str(h.inventory.get("mnist_deploy_promote_from", "")) for h in Environment.read(env).hosts.values()}
    if len(values) > 1:
        raise DeployError(f"{env}'s hosts name different environments to promote from: {', '.join(sorted(values))}")
    return values.pop() if values else ""


def ran_everywhere(env: str, release: str) -> list[str]:
    """The hosts of ENV whose history does not hold RELEASE (it never served there); [] when every host ran it."""
    playbook(env, "releases", {})
    return sorted(row["host"] for row in host_results(env) if release not in row.get("history", []))


def promoted(env: str, source_id: str, reason: str = "") -> dict:
    """The release SOURCE_ID (assembled on this controller for another environment, run there) for ENV: the very
    images, not rebuilt, and ENV's files rendered from the same commit. Refused when the environment ENV promotes
    from never ran it on every host, unless REASON is given (written to the hosts' audit logs)."""
    bundled = bundle.load(source_id)  # a release handed over with its images (a bastion has no engine)
    path = RELEASES / f"{source_id}.json"
    if bundled is not None:
        source, folder = bundled
    elif path.is_file():
        source, folder = json.loads(path.read_text()), None
    else:
        raise DeployError(
            f"release {source_id} was not assembled on this controller ({path} is missing) and no bundle of it is "
            f"here ({bundle.folder(source_id)}): hand it over with `invoke bastion.setup --release {source_id}`, or "
            f"copy it with its images (`docker save`/`docker load`) from the machine that built it"
        )
    head = images.git_sha()
    if source["git_sha"] != head:
        raise DeployError(
            f"release {source_id} was built at commit {source['git_sha']}, this checkout is at {head}: "
            f"`git checkout {source['git_sha']}` first (its templates render {env}'s files)"
        )
    for image in source["images"] if folder is None else []:
        if not images.image_exists(image["ref"]) or images.image_identity(image["ref"])["identity"] != image.get(
            "identity"
        ):
            raise DeployError(
                f"{image['ref']} of release {source_id} is not on this engine as it was built: `docker load` it "
                f"from the machine that built it (a promoted release is never rebuilt)"
            )
    upstream = promote_from(env) or source["env"]
    missing = [f"it was assembled for {source['env']}"] if source["env"] != upstream else []
    if not missing:
        missing = [f"{host} never ran it" for host in ran_everywhere(upstream, source_id)]
    note = f"promoted from {source['env']} release {source_id}"
    if missing:
        if not reason:
            raise DeployError(
                f"{env} takes releases that ran on {upstream}, and release {source_id} did not ({'; '.join(missing)}): "
                f"deploy it there first, or give --force-reason 'why' (written to every host's audit log)"
            )
        note += f", forced: {reason} ({'; '.join(missing)})"
    release = describe(
        env,
        source["image_tag"],
        source["model_version"],
        images_of=source["images"],
        gate_thresholds=source.get("gate_thresholds") or {},
        promoted_from=source_id,
        note=note,
    )
    return {**release, "archives": str(folder / "images")} if folder is not None else release


def playbook(
    env: str, name: str, extra: dict[str, Any], check: bool = False, keep_results: bool = False
) -> dict[str, int]:
    """Run playbooks/NAME.yml on ENV's inventory through its ssh_config (ansible-runner), showing its output.

    Return each host's count of changed tasks, from the run's structured stats; raise DeployError naming each
    failed or unreachable host and why, from the run's events.
    """
    import ansible_runner

    hostvars = Environment.read(env).hostvars
    ssh.write_config(env, hostvars=hostvars)
    ssh.check_bastion(env, hostvars)
    results = render.BUILD / env / "results"
    if not keep_results:
        shutil.rmtree(results, ignore_errors=True)
    results.mkdir(parents=True, exist_ok=True)
    extra_vars = render.BUILD / env / f"{name}-vars.json"
    extra_vars.write_text(
        json.dumps(
            {
                "mnist_stack_render_dir": str(render.BUILD / env),
                "mnist_stack_image_cache": str(IMAGE_CACHE),
                "mnist_stack_deployer": deployer(),
                **extra,
            },
            indent=2,
        )
    )
    IMAGE_CACHE.mkdir(parents=True, exist_ok=True)
    mode = " --check --diff" if check else ""
    console.print(f"[dim]ansible-playbook playbooks/{name}.yml -i inventories/{env}{mode} (ansible-runner)[/]")
    last_failure: dict[str, str] = {}

    def on_event(event: dict[str, Any]) -> bool:
        if event.get("stdout"):
            sys.stdout.write(event["stdout"] + "\n")
            sys.stdout.flush()
        failure = failure_of(event)
        if failure:
            last_failure[failure[0]] = failure[1]
        for host, result in reported(event).items():
            (results / f"{host}.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
        return True

    private = render.BUILD / env / "runner"
    private.mkdir(parents=True, exist_ok=True)
    runner = ansible_runner.run(
        **runner_options(env, name, extra_vars, check),
        private_data_dir=str(private),
        quiet=True,
        event_handler=on_event,
        rotate_artifacts=4,
    )
    return outcome(env, name, runner.rc, runner.stats or {}, last_failure)


# The hosts' sudo password, when the deploy user has no passwordless sudo (`--ask-become-pass`): typed once, kept in
# this process only, and given to each playbook's BECOME prompt by ansible-runner (never on disk or a command line).
_BECOME: dict[str, str] = {}
BECOME_PROMPT = r"^BECOME password.*:\s*?$"


def ask_become_pass() -> None:
    """Ask the operator for the hosts' sudo password, for every playbook this process runs."""
    _BECOME["password"] = getpass.getpass("BECOME password (sudo on the hosts): ")


def become_password() -> str | None:
    """The hosts' sudo password the operator typed (`--ask-become-pass`), or None."""
    return _BECOME.get("password")


def runner_options(env: str, name: str, extra_vars: Path, check: bool) -> dict[str, Any]:
    """How ansible-runner runs playbooks/NAME.yml on ENV: this virtualenv's ansible-playbook, the project's config,
    and the sudo password the operator typed, if any, for Ansible's BECOME prompt."""
    become = {"passwords": {BECOME_PROMPT: _BECOME["password"]}} if _BECOME else {}
    return {
        **become,
        "project_dir": str(render.ROOT),  # the inventories' relative paths (build/ssh/ENV/config) start here
        "playbook": str(PLAYBOOKS / f"{name}.yml"),
        "inventory": str(render.INVENTORIES / env),
        "cmdline": f"-e @{extra_vars}"
        + (" --check --diff" if check else "")
        + (" --ask-become-pass" if become else ""),
        "envvars": {
            # runner calls `ansible-playbook` by name: this virtualenv's comes first.
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
            "ANSIBLE_CONFIG": str(render.ROOT / "ansible.cfg"),
            "ANSIBLE_FORCE_COLOR": str(int(sys.stdout.isatty())),
            # ansible-runner turns host key checking off unless told: the environment's ssh_config decides (pinned
            # keys in staging and production), so Ansible must not add StrictHostKeyChecking=no.
            "ANSIBLE_HOST_KEY_CHECKING": "True",
        },
    }


def reported(event: dict[str, Any]) -> dict[str, Any]:
    """{host: result} the hosts reported (roles/mnist_stack/tasks/report.yml), from the run's last event (its stats);
    {} for any other event."""
    if event.get("event") != "playbook_on_stats":
        return {}
    return dict(((event.get("event_data") or {}).get("artifact_data") or {}).get("mnist_results") or {})


def failure_of(event: dict[str, Any]) -> tuple[str, str] | None:
    """(host, "task: why") for an event that failed a host, None for any other (ignored errors included)."""
    data = event.get("event_data") or {}
    if event.get("event") not in ("runner_on_failed", "runner_on_unreachable") or data.get("ignore_errors"):
        return None
    result = data.get("res") or {}
    why = result.get("msg") or (result.get("stderr") or "").strip()[-300:] or "no reason given"
    return str(data.get("host")), f"{data.get('task', '?')}: {why}"


def outcome(env: str, name: str, rc: int, stats: dict[str, Any], last_failure: dict[str, str]) -> dict[str, int]:
    """Each processed host's changed-task count, or DeployError naming each host that failed and its last failure.

    A host whose task failed inside a block that rescued it is not failed: only the run's final stats say who is.
    """
    failed = sorted(set(stats.get("failures", {})) | set(stats.get("dark", {})))
    if rc != 0 or failed:
        hosts_by_reason: dict[str, list[str]] = {}
        for host in failed:  # the same reason on several hosts (a refused lock, say) is said once
            hosts_by_reason.setdefault(last_failure.get(host, "failed"), []).append(host)
        reasons = [f"{', '.join(hosts)}: {reason}" for reason, hosts in hosts_by_reason.items()]
        detail = "; ".join(reasons) if reasons else f"ansible-playbook exited with {rc} (the output above says why)"
        raise DeployError(f"{name} on {env} failed: {detail}")
    changed = stats.get("changed", {})
    return {host: int(changed.get(host, 0)) for host in stats.get("processed", {})}


def host_results(env: str) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((render.BUILD / env / "results").glob("*.json"))]


def summary(env: str, title: str, seconds: float) -> Table:
    table = Table(title=f"{title} on {env} in {seconds:.0f} s")
    for column in ("host", "event", "release", "model version", "health", "duration"):
        table.add_column(column)
    for row in host_results(env):
        gate = row.get("gate", [])
        if gate:
            health = f"[green]{len(gate)} ready, {min(g['accuracy'] for g in gate):.0%} raw"
            if any(g.get("drawn") for g in gate):  # the gate's drawn digits, through the preprocessing
                health += f", {min(g.get('drawn_accuracy', 0.0) for g in gate):.0%} drawn"
            health += "[/]"
        else:  # a redeploy that changed no container: the containers that passed the gate, healthy
            health = "[green]unchanged, healthy[/]" if row.get("before") == row["release"] else "-"
        table.add_row(
            row["host"], row["event"], row["release"], row["model_version"][:12], health, f"{row['seconds']:.0f} s"
        )
    return table


def deploy(
    env: str, model_dir: Path, break_lock: bool = False, check: bool = False, release_id: str = "", reason: str = ""
) -> dict[str, Any]:
    """Assemble the release (or promote RELEASE_ID, built for another environment: `promoted`) and roll it out
    host by host; print a table of what each host now serves.

    Return the release and each host's count of changed tasks.
    """
    started = time.monotonic()
    with notified(env, "deploy", started, check) as told:
        release = promoted(env, release_id, reason) if release_id else assemble(env, model_dir)
        told["release"] = release
        console.print(
            f"[bold]Release {release['id']}[/]: images {release['image_tag']}, model {release['model_version'][:12]}"
        )
        extra = {"mnist_stack_release": release, "mnist_stack_break_lock": break_lock}
        if "archives" in release:  # ship from the release's bundle, not from an engine
            extra["mnist_stack_image_archives"] = release.pop("archives")
        try:
            changed = locked_run(env, "deploy", extra, check)
        finally:
            console.print(summary(env, f"Deploy of {release['id']}", time.monotonic() - started))
    return {"release": release, "changed": changed}


@contextmanager
def notified(env: str, action: str, started: float, check: bool) -> Iterator[dict[str, Any]]:
    """Post the outcome of the ACTION run inside to ENV's webhooks (not for a dry run); the run may name its
    release (`told["release"]`) once assembled. The webhooks are read and checked first, so a wrong one stops the
    run before any host changes; one that fails to answer only warns."""
    hooks = [] if check else notify.webhooks(env)
    told: dict[str, Any] = {}
    error = ""
    try:
        yield told
    except DeployError as exc:
        error = str(exc)
        raise
    finally:
        if hooks:
            release = told.get("release") or {}
            payload = notify.message(
                env,
                action,
                deployer(),
                time.monotonic() - started,
                host_results(env),
                error=error,
                release=release.get("id", ""),
                model_version=release.get("model_version", ""),
            )
            for warning in notify.send(hooks, payload):
                console.print(f"[yellow]warning:[/] {warning} (the {action}'s result stands)")


def plan(env: str, model_dir: Path) -> tuple[Table, bool]:
    """What a deploy of the current release would change on each host of ENV: (the table, whether anything)."""
    release = assemble(env, model_dir)
    playbook(env, "plan", {"mnist_stack_release": release})
    sizes = {image["id"]: images.image_size(image["ref"]) for image in release["images"]}
    table = Table(title=f"Plan for release {release['id']} on {env} (model {release['model_version'][:12]})")
    for column in ("host", "serves now", "images to ship", "files that differ", "containers replaced"):
        table.add_column(column)
    anything = False
    for row in host_results(env):
        shipped = ", ".join(shipped_image(image, sizes[image["id"]]) for image in row["ship"])
        changes = bool(row["ship"] or row["files"] or row["replace"] or not row["same_release"])
        anything |= changes
        table.add_row(
            row["host"],
            row["current"] or "[yellow]nothing (first deploy)[/]",
            shipped or "-",
            ", ".join(row["files"]) or "-",
            ", ".join(row["replace"]) or ("-" if changes else "[green]nothing changes[/]"),
        )
    return table, anything


def shipped_image(image: dict[str, Any], size: int) -> str:
    """An image a deploy would ship (the plan's entry: its layers, those the host holds) and what it weighs: the
    whole image's size bounds what the layers it lacks weigh."""
    layers, held = len(image.get("layers") or []), len(image.get("skip") or [])
    if held:
        return f"{image['service']} ({layers - held} of {layers} layers, ≤ {size / 1e6:.0f} MB)"
    return f"{image['service']} ({size / 1e6:.0f} MB)"


def rollback(env: str, to: str = "", break_lock: bool = False, check: bool = False) -> dict[str, int]:
    """Re-activate the environment's previous release (or release TO) on every host, in one wave by default."""
    started = time.monotonic()
    if to and (len(to) != 12 or any(c not in "0123456789abcdef" for c in to)):
        raise DeployError(f"--to {to!r} is not a release id (12 hex digits; `invoke releases --env={env}` lists them)")
    with notified(env, "rollback", started, check):  # the release: the one every host returned to
        try:
            extra = {"mnist_stack_rollback_to": to, "mnist_stack_break_lock": break_lock}
            return locked_run(env, "rollback", extra, check)
        finally:
            console.print(summary(env, "Rollback", time.monotonic() - started))


def locked_run(env: str, name: str, extra: dict[str, Any], check: bool) -> dict[str, int]:
    """Run NAME (deploy or rollback), which takes the environment's lock with this run's id. When a deploy fails,
    return the hosts it had already switched to the release each ran (still under the lock), so the environment
    ends on one release; then give back whatever lock the run still holds (a failed play ends the playbook before
    its unlock play)."""
    run_id = f"{deployer()}-{uuid.uuid4().hex[:12]}"
    try:
        return playbook(env, name, {**extra, "mnist_stack_run_id": run_id}, check=check)
    except DeployError:
        if not check:
            if name == "deploy":
                revert(env, extra["mnist_stack_release"]["id"], run_id)
            try:
                playbook(env, "unlock", {"mnist_stack_run_id": run_id}, keep_results=True)
            except DeployError as exc:
                console.print(f"[yellow]warning:[/] this run's lock may still be held: {exc}")
        raise


def switched_hosts(env: str, release_id: str) -> dict[str, str]:
    """{host: the release it ran before} for each host this run's deploy switched to RELEASE_ID (its result file)."""
    return {
        row["host"]: row.get("before", "")
        for row in host_results(env)
        if row.get("event") == "deploy" and row.get("release") == release_id and row.get("before") != release_id
    }


def revert(env: str, release_id: str, run_id: str) -> None:
    """Return the hosts a failed deploy of RELEASE_ID had switched to the release each ran (rollback.yml)."""
    switched = switched_hosts(env, release_id)
    returnable = {host: before for host, before in switched.items() if before}
    for host in sorted(set(switched) - set(returnable)):
        console.print(f"[yellow]warning:[/] {host} ran no release before {release_id}: it keeps serving it")
    if not returnable:
        return
    console.print(f"[bold]Returning {', '.join(sorted(returnable))} to the release each ran before {release_id}[/]")
    try:
        playbook(env, "rollback", {"mnist_stack_revert": returnable, "mnist_stack_run_id": run_id}, keep_results=True)
    except DeployError as exc:
        console.print(f"[red]error:[/] the environment may serve two releases: {exc}")


# A controller archive younger than this may belong to a deploy in progress (of another environment, say).
STALE_ARCHIVE_S = 3600


def prune(env: str, keep: int = 0) -> Table:
    """Under the environment's lock, remove on every host the releases beyond the newest KEEP (the inventory's
    mnist_stack_keep_releases when 0), the images only they used and what an interrupted deploy left; on the
    controller, image archives an interrupted deploy left (older than an hour)."""
    if keep == 1 or keep < 0:
        raise DeployError("--keep must be at least 2: the current release and the one a rollback returns to")
    locked_run(env, "prune", {"mnist_stack_keep_releases": keep} if keep else {}, check=False)
    table = Table(title=f"Pruned on {env}")
    for column in ("host", "releases kept", "releases removed", "images removed"):
        table.add_column(column)
    for row in host_results(env):
        removed = [Path(path).name for path in row["pruned"]["releases"]]
        table.add_row(row["host"], ", ".join(row["kept"]), ", ".join(removed) or "-", str(len(row["pruned"]["images"])))
    stale = [
        path
        for path in IMAGE_CACHE.glob("*.tar*")
        if path.is_file() and time.time() - path.stat().st_mtime > STALE_ARCHIVE_S
    ]
    for path in stale:
        path.unlink()
    table.caption = f"controller: {len(stale)} image archives left by interrupted deploys removed from {IMAGE_CACHE}"
    return table


def lock(env: str, release: bool = False) -> Table:
    """Who holds the environment's deploy lock on each host; with RELEASE, remove it first, whoever holds it."""
    playbook(env, "lock", {"mnist_stack_break_lock": release})
    table = Table(title=f"Deploy lock on {env}")
    for column in ("host", "held by", "released"):
        table.add_column(column)
    for row in host_results(env):
        table.add_row(row["host"], row["holder"] or "[green]free[/]", row["released"] or "-")
    return table


def releases(env: str) -> Table:
    playbook(env, "releases", {})
    table = Table(title=f"Releases on {env}")
    for column in ("host", "release", "state", "model version", "git sha", "images"):
        table.add_column(column)
    for row in host_results(env):
        for record in row["releases"]:
            state = {row["current"]: "[green]current[/]", row["previous"]: "previous"}.get(record["id"], "")
            table.add_row(
                row["host"],
                record["id"],
                state,
                record["model_version"][:12],
                record["git_sha"],
                record["image_tag"],
            )
    return table

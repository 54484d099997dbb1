"""The stack on the local engine: up, down, status, logs, clean — all through the rendered compose file."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from mnist_deploy import engine, images, render
from mnist_deploy.collection import services
from mnist_deploy.environment import Environment
from mnist_deploy.errors import DeployError
from mnist_deploy.shell import console, run

LOCAL_HOST = "localhost"


def compose_file(env: str, out_root: Path = render.BUILD) -> Path:
    path = out_root / env / LOCAL_HOST / "compose.yaml"
    if not path.is_file():
        raise DeployError(f"{path} does not exist: run `invoke render --env={env}` (or `invoke up`) first")
    return path


def compose(env: str, *args: str, out_root: Path = render.BUILD, quiet: bool = False) -> str:
    return run(["docker", "compose", "-f", compose_file(env, out_root), *args], quiet=quiet)


def ensure_images(tag: str, extra_ca_dir: Path | None, model_dir: Path = render.ROOT / "models") -> None:
    engine.ensure_engine()  # without it every image looks missing
    missing = [s for s in images.SERVICES if not images.image_exists(images.ref(s, tag))]
    if missing:
        base = images.base_image()
        console.print(images.table(images.build(missing, model_dir, extra_ca_dir, base, tag=tag)))
    else:
        console.print(f"all {len(images.SERVICES)} images present")


def phase(number: int, what: str, total: int = 4) -> None:
    console.print(f"[bold cyan][{number}/{total}][/] [bold]{what}[/]")


def up(
    env: str = "dev",
    extra: dict[str, Any] | None = None,
    extra_ca_dir: Path | None = None,
    out_root: Path = render.BUILD,
    timeout: int = 180,
) -> dict[str, Any]:
    """Install the engine if needed, build missing images, render, and bring the stack up healthy."""
    phase(1, "Docker engine and Compose v2")
    engine.ensure_engine()
    extra = dict(extra or {})
    extra.setdefault("mnist_stack_image_tag", render.default_image_tag())
    phase(2, f"images {extra['mnist_stack_image_tag']}")
    ensure_images(extra["mnist_stack_image_tag"], extra_ca_dir)
    phase(3, f"render build/{env}/")
    render.render(env, extra, out_root)
    variables = Environment.read(env, extra).checked().hosts[LOCAL_HOST].variables
    write_passwords(out_root / env / LOCAL_HOST, variables)
    phase(4, f"start the {env} stack and wait until it is healthy (up to {timeout} s)")
    compose(env, "up", "--detach", "--wait", "--wait-timeout", str(timeout), "--remove-orphans", out_root=out_root)
    return variables


def write_passwords(host_dir: Path, variables: dict[str, Any]) -> None:
    """The enabled services' passwords where compose.yaml's secrets read them (secrets/, next to it), as a deploy
    installs them on a host (module_utils/files.py): readable by the containers' users, in a folder only ours."""
    for name, password in services.password_files(variables).items():
        secrets = host_dir / "secrets"
        secrets.mkdir(mode=0o700, exist_ok=True)
        (secrets / name).write_text(password + "\n")
        (secrets / name).chmod(0o444)


# What `invoke up --alerting` adds in development, where Alertmanager and the node exporter are off by default.
ON_DEMAND = {"mnist_stack_alertmanager_enabled": True, "mnist_stack_node_exporter_enabled": True}


def urls(variables: dict[str, Any]) -> dict[str, str]:
    address = variables["mnist_stack_bind_address"]
    names = {
        "frontend": "App",
        "backend": "API docs",
        "prometheus": "Prometheus",
        "alertmanager": "Alertmanager",
        "grafana": "Grafana",
    }
    result = {}
    running = services.enabled(variables)
    for service, label in names.items():
        if service in running and services.is_on(variables.get(f"mnist_stack_{service}_published")):
            suffix = "/docs" if service == "backend" else ""
            port = variables[f"mnist_stack_{service}_host_port"] or variables[f"mnist_stack_{service}_port"]
            result[label] = f"http://{address}:{port}{suffix}"
    return result


def down(env: str = "dev", volumes: bool = False, out_root: Path = render.BUILD) -> None:
    compose(env, "down", "--remove-orphans", *(["--volumes"] if volumes else []), out_root=out_root)


def clean(env: str = "dev", volumes: bool = False, out_root: Path = render.BUILD) -> list[str]:
    """Remove the stack's containers and rendered files; data volumes only when VOLUMES is set."""
    removed = []
    path = out_root / env / LOCAL_HOST / "compose.yaml"
    if path.is_file() and engine.engine_answers():
        down(env, volumes=volumes, out_root=out_root)
        removed.append(f"containers and networks of {env}" + (" and its data volumes" if volumes else ""))
    if (out_root / env).exists():
        shutil.rmtree(out_root / env)
        removed.append(f"rendered files {out_root / env}")
    return removed

import json
from pathlib import Path

import pytest
import yaml

from mnist_deploy import environment, render
from mnist_deploy.environment import Environment
from mnist_deploy.errors import DeployError

TAG = "0123456789ab-a63674eff6c6"
# What a vault holds: the proxy's certificate and key (PEM-shaped test values) and Grafana's password.
TLS = {
    "mnist_stack_tls_certificate": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    "mnist_stack_tls_private_key": "-----BEGIN PRIVATE KEY-----\nMIGH\n",  # pragma: allowlist secret
}
SECRET = {
    "mnist_stack_grafana_admin_password": "s3cret-from-vault",  # pragma: allowlist secret (a test value)
    "mnist_stack_database_password": "db-s3cret-from-vault",  # pragma: allowlist secret (a test value)
    **TLS,
}


def compose(out, env, host):
    return yaml.safe_load((out / env / host / "compose.yaml").read_text())


def test_dev_publishes_every_service_on_loopback_and_mounts_source(tmp_path):
    render.render("dev", {"mnist_stack_image_tag": TAG}, tmp_path, validate=False)
    services = compose(tmp_path, "dev", "localhost")["services"]
    assert set(services) == {"backend", "frontend", "prometheus"}
    assert services["backend"]["ports"] == ["127.0.0.1:8000:8000"]
    assert services["frontend"]["ports"] == ["127.0.0.1:8501:8501"]
    assert services["prometheus"]["ports"] == ["127.0.0.1:9090:9090"]
    assert "--reload" in services["backend"]["command"]
    assert services["backend"]["image"] == f"mnist-backend:{TAG}"
    assert all(s["pull_policy"] == "never" for name, s in services.items())
    assert services["backend"]["environment"]["MNIST_LOG_LEVEL"] == "DEBUG"


def test_staging_publishes_only_the_proxy(tmp_path):
    render.render("staging", {"mnist_stack_image_tag": TAG, **SECRET}, tmp_path, validate=False)
    services = compose(tmp_path, "staging", "staging-1")["services"]
    assert [name for name, s in services.items() if "ports" in s] == ["proxy"]
    # Corrections in the database service's PostgreSQL: its password a secret file, never in the environment.
    backend = services["backend"]
    assert backend["environment"]["MNIST_FEEDBACK_URL"] == "postgresql+psycopg://mnist@database:5432/feedback"
    assert backend["environment"]["MNIST_FEEDBACK_PASSWORD_FILE"] == "/run/secrets/database_password"
    assert backend["secrets"] == ["database_password"] and services["database"]["secrets"] == ["database_password"]
    assert backend["depends_on"] == {"database": {"condition": "service_healthy"}}
    assert services["database"]["networks"] == ["internal"] and services["database"]["read_only"] is True
    assert "database-data:/var/lib/postgresql/data" in services["database"]["volumes"]
    assert services["proxy"]["ports"] == ["0.0.0.0:80:8080", "0.0.0.0:443:8443"]
    assert services["proxy"]["networks"] == ["internal", "edge"]
    assert services["backend"]["networks"] == ["internal"]
    assert "command" not in services["backend"]
    assert compose(tmp_path, "staging", "staging-1")["networks"]["internal"] == {"internal": True}


CERTIFICATE = TLS


def test_the_proxy_is_recreated_only_when_its_config_or_certificate_changes(tmp_path):
    def proxy_of(tag, extra, out):
        render.render("sandbox", {"mnist_stack_image_tag": tag, **extra}, out, validate=False)
        host = out / "sandbox" / "target-1"
        return compose(out, "sandbox", "target-1")["services"]["proxy"], (host / "proxy" / "haproxy.cfg").read_text()

    first, config = proxy_of(TAG, CERTIFICATE, tmp_path / "a")
    # A new release (new images) keeps the proxy as it is: its files are mounted from a folder named after their
    # hash, outside the release's folder, so compose sees the same service.
    second, _ = proxy_of("fedcba987654-a63674eff6c6", CERTIFICATE, tmp_path / "b")
    assert second["volumes"] == first["volumes"]
    assert second["image"] == first["image"] and first["image"].startswith("mnist-proxy:recipe-")
    fingerprint = (tmp_path / "a" / "sandbox" / "target-1" / "proxy" / "fingerprint").read_text().strip()
    assert first["volumes"] == [
        f"/opt/mnist/mnist-sandbox/proxy/{fingerprint}/haproxy.cfg:/etc/haproxy/haproxy.cfg:ro",
        f"/opt/mnist/mnist-sandbox/proxy/{fingerprint}/tls.pem:/etc/haproxy/tls.pem:ro",
    ]
    another = "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n"
    rotated, _ = proxy_of(TAG, {**TLS, "mnist_stack_tls_certificate": another}, tmp_path / "c")
    assert rotated["volumes"] != first["volumes"]
    more, more_config = proxy_of(TAG, {**CERTIFICATE, "mnist_stack_backend_replicas": 3}, tmp_path / "d")
    assert more["volumes"] != first["volumes"]
    # Twice the replicas: a rollout runs the new release's replicas beside the old ones before they leave.
    assert "server-template backend 4 backend:8000" in config
    assert "server-template backend 6 backend:8000" in more_config
    assert "redirect location https://" in config and "ssl crt /etc/haproxy/tls.pem" in config
    assert "BEGIN CERTIFICATE" not in config


def test_prometheus_is_recreated_only_when_its_image_config_or_rules_change(tmp_path):
    def prometheus_of(tag, extra, out):
        render.render("sandbox", {"mnist_stack_image_tag": tag, **TLS, **extra}, out, validate=False)
        fingerprint = (out / "sandbox" / "target-1" / "prometheus" / "fingerprint").read_text().strip()
        return compose(out, "sandbox", "target-1")["services"]["prometheus"], fingerprint

    first, fingerprint = prometheus_of(TAG, {}, tmp_path / "a")
    assert first["image"].startswith("mnist-prometheus:recipe-")
    assert first["volumes"] == [
        f"/opt/mnist/mnist-sandbox/prometheus/{fingerprint}:/etc/prometheus:ro",
        "prometheus-data:/prometheus",
    ]
    # A new release (new images, new model) keeps Prometheus as it is.
    second, _ = prometheus_of("fedcba987654-0123456789ab", {}, tmp_path / "b")
    assert (second["image"], second["volumes"]) == (first["image"], first["volumes"])
    # Another scrape interval is another config: another folder, so compose replaces Prometheus.
    changed, other = prometheus_of(TAG, {"mnist_stack_prometheus_scrape_interval": "30s"}, tmp_path / "c")
    assert (
        other != fingerprint
        and changed["volumes"][0] == f"/opt/mnist/mnist-sandbox/prometheus/{other}:/etc/prometheus:ro"
    )
    # The development stack runs from the rendered folder itself: nothing installs hashed folders there.
    render.render("dev", {"mnist_stack_image_tag": TAG}, tmp_path / "d", validate=False)
    assert compose(tmp_path / "d", "dev", "localhost")["services"]["prometheus"]["volumes"][0] == (
        "./prometheus:/etc/prometheus:ro"
    )


def test_production_has_replicas_and_grafana_on_every_host(tmp_path):
    render.render("production", {"mnist_stack_image_tag": TAG, **SECRET}, tmp_path, validate=False)
    for host in ("prod-1", "prod-2"):
        services = compose(tmp_path, "production", host)["services"]
        assert services["backend"]["deploy"]["replicas"] == 2
        assert "ports" not in services["backend"]
        assert services["grafana"]["image"].startswith("grafana/grafana-oss:")
        dashboard = json.loads((tmp_path / "production" / host / "grafana/dashboards/mnist.json").read_text())
        assert dashboard["uid"] == "mnist-overview"
    rendered = "".join(p.read_text() for p in (tmp_path / "production").rglob("*") if p.is_file())
    assert SECRET["mnist_stack_grafana_admin_password"] not in rendered
    assert SECRET["mnist_stack_database_password"] not in rendered


def test_rendering_is_deterministic(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    for out in (first, second):
        render.render("production", {"mnist_stack_image_tag": TAG, **SECRET}, out, validate=False)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files
    for path in files:
        assert (first / path).read_bytes() == (second / path).read_bytes(), path
    manifest = json.loads((first / "production" / "manifest.json").read_text())
    assert set(manifest["hosts"]) == {"prod-1", "prod-2"}
    assert manifest["image_tag"] == TAG


def test_unknown_environment_names_the_known_ones(tmp_path):
    with pytest.raises(DeployError, match="unknown environment 'prod'; known: dev, production, sandbox, staging"):
        render.render("prod", {"mnist_stack_image_tag": TAG}, tmp_path, validate=False)


def test_missing_grafana_password_is_named(tmp_path):
    with pytest.raises(DeployError, match="mnist_stack_grafana_admin_password is required"):
        render.render("production", {"mnist_stack_image_tag": TAG}, tmp_path, validate=False)
    assert not (tmp_path / "production").exists()


def test_published_port_with_several_replicas_is_refused(tmp_path):
    extra = {"mnist_stack_image_tag": TAG, "mnist_stack_backend_replicas": 2}
    with pytest.raises(DeployError, match="backend has several replicas and a published port"):
        render.render("dev", extra, tmp_path, validate=False)


def test_rendered_files_pass_compose_and_promtool_checks(tmp_path):
    render.render("production", {"mnist_stack_image_tag": TAG, **SECRET}, tmp_path, validate=True)
    assert not (tmp_path / "production" / "prod-1" / "secrets").exists()


def test_validation_catches_a_broken_prometheus_config(tmp_path):
    env_dir = render.render("dev", {"mnist_stack_image_tag": TAG}, tmp_path, validate=False)
    host_dir = env_dir / "localhost"
    (host_dir / "prometheus" / "prometheus.yml").write_text("scrape_configs:\n  - job_name: x\n    bogus: 1\n")
    variables = Environment.read("dev", {"mnist_stack_image_tag": TAG}).hosts["localhost"].variables
    with pytest.raises(DeployError, match="promtool check config"):
        render.validate_host(host_dir, variables)


def test_a_vaulted_password_is_read_through_ansible_and_never_rendered(tmp_path, monkeypatch):
    """The production inventory with its Grafana password in an ansible-vault file, as README tells users."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    inventories = tmp_path / "inventories"
    shutil.copytree(render.INVENTORIES / "production", inventories / "production")
    password_file = tmp_path / "vault-password"
    password_file.write_text("test vault password\n")  # pragma: allowlist secret (a test value)
    secret = "vaulted-grafana-password-42"  # pragma: allowlist secret (a test value)
    vault = inventories / "production" / "group_vars" / "all" / "vault.yml"
    database = "vaulted-database-password-42"  # pragma: allowlist secret (a test value)
    vault.write_text(
        f"mnist_stack_grafana_admin_password: {secret}\nmnist_stack_database_password: {database}\n"
        + yaml.safe_dump(TLS)
    )
    ansible_vault = Path(sys.executable).parent / "ansible-vault"
    subprocess.run([ansible_vault, "encrypt", "--vault-password-file", password_file, vault], check=True)
    assert secret not in vault.read_text()
    monkeypatch.setattr(environment, "INVENTORIES", inventories)
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", str(password_file))
    out = render.render("production", {"mnist_stack_image_tag": TAG}, tmp_path / "build", validate=False)
    variables = Environment.read("production", {"mnist_stack_image_tag": TAG}).hosts["prod-1"].variables
    assert variables["mnist_stack_grafana_admin_password"] == secret
    assert variables["mnist_stack_database_password"] == database
    for path in out.rglob("*"):
        if path.is_file():
            assert secret not in path.read_text() and database not in path.read_text(), path


PORTS = {"mnist_stack_backend_port": 8100, "mnist_stack_frontend_port": 8600, "mnist_stack_grafana_port": 3100}


def test_a_non_default_port_reaches_every_consumer(tmp_path, monkeypatch):
    """Each service's port is declared once (role defaults); every place that listens or connects follows it."""
    import re
    from pathlib import Path

    from app.backend import serve
    from app.frontend import __main__ as frontend_main

    extra = {"mnist_stack_image_tag": TAG, "mnist_stack_grafana_enabled": True, **SECRET, **PORTS}
    render.render("production", extra, tmp_path, validate=False)
    host_dir = tmp_path / "production" / "prod-1"
    services = compose(tmp_path, "production", "prod-1")["services"]
    backend, frontend, grafana = (services[s]["environment"] for s in ("backend", "frontend", "grafana"))
    # The containers listen where compose says: the images' servers read MNIST_PORT, Grafana GF_SERVER_HTTP_PORT.
    assert backend["MNIST_PORT"] == "8100" and frontend["MNIST_PORT"] == "8600"
    assert grafana["GF_SERVER_HTTP_PORT"] == "3100"
    monkeypatch.setenv("MNIST_PORT", "8100")
    assert serve.parse_args([]).port == 8100
    launched = []
    monkeypatch.setattr(frontend_main.os, "execv", lambda _, command: launched.extend(command))
    monkeypatch.setenv("MNIST_PORT", "8600")
    frontend_main.main([])
    assert "--server.port=8600" in launched
    # Health checks: the images' own read MNIST_PORT; Grafana's is rendered.
    root = Path(render.ROOT)
    for name in ("backend", "frontend"):
        healthcheck = (root / "docker" / f"{name}.Dockerfile").read_text().split("HEALTHCHECK", 1)[1]
        assert "os.environ.get('MNIST_PORT'" in healthcheck, name
    assert "http://127.0.0.1:3100/api/health" in services["grafana"]["healthcheck"]["test"]
    # Who connects: the UI, the proxy, Prometheus and the gate.
    assert frontend["MNIST_BACKEND_URL"] == "http://backend:8100"
    haproxy = (host_dir / "proxy" / "haproxy.cfg").read_text()
    assert re.search(r"server-template backend \d+ backend:8100\b", haproxy)
    assert re.search(r"server-template frontend 1 frontend:8600\b", haproxy)
    prometheus = yaml.safe_load((host_dir / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    assert jobs["backend"]["dns_sd_configs"][0]["port"] == 8100
    assert jobs["grafana"]["static_configs"][0]["targets"] == ["grafana:3100"]
    gate = (root / "roles" / "mnist_stack" / "files" / "gate.py").read_text()
    assert 'os.environ.get("MNIST_PORT"' in gate and "8000/" not in gate


def test_render_refuses_what_the_playbooks_refuse_with_the_same_rule(tmp_path):
    """One rule set (the collection's module_utils/rules.py): a default password in production and a proxy without
    its key stop rendering, naming the variables and never their values."""
    default = "admin"  # pragma: allowlist secret (a default the rules refuse)
    weak = {"mnist_stack_image_tag": TAG, **TLS, "mnist_stack_grafana_admin_password": default}
    with pytest.raises(DeployError) as refused:
        render.render("production", weak, tmp_path, validate=False)
    assert "mnist_stack_grafana_admin_password is too short (< 12) or a default in production" in str(refused.value)
    assert "'admin'" not in str(refused.value)
    keyless = {"mnist_stack_image_tag": TAG, **SECRET, "mnist_stack_tls_private_key": ""}
    with pytest.raises(DeployError, match="mnist_stack_proxy_enabled needs mnist_stack_tls_certificate"):
        render.render("staging", keyless, tmp_path, validate=False)
    role_tasks = (render.ROOT / "roles" / "mnist_stack" / "tasks" / "validate.yml").read_text()
    assert "mnist.deploy.stack_problems" in role_tasks and "length >= 12" not in role_tasks


def test_every_hosts_prometheus_files_are_checked_in_one_promtool_call_per_check(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(render, "run", lambda argv, **kwargs: calls.append([str(a) for a in argv]))
    monkeypatch.setattr(render.provision, "require", lambda *args: None)
    env_dir = render.render("sandbox", {"mnist_stack_image_tag": TAG, **TLS}, tmp_path, validate=True)
    compose = sorted(call[3] for call in calls if call[:2] == ["docker", "compose"])
    assert compose == [str(env_dir / host / "compose.yaml") for host in ("target-1", "target-2")]
    promtool = [call for call in calls if call[0] == "promtool"]
    assert [call[1:3] for call in promtool] == [["check", "config"], ["check", "rules"], ["test", "rules"]]
    hosts = ("target-1", "target-2")
    assert promtool[1][3:] == [
        str(env_dir / h / "prometheus" / f) for h in hosts for f in ("rules.yml", "declared.yml")
    ]
    amtool = [call for call in calls if call[0] == "amtool"]  # Alertmanager's config, every host's in one call
    assert amtool == [
        ["amtool", "check-config", *(str(env_dir / h / "alertmanager" / "alertmanager.yml") for h in hosts)]
    ]


def test_a_new_model_keeps_the_ui_and_replaces_only_the_backend(tmp_path):
    def services_of(tag, out):
        render.render("sandbox", {"mnist_stack_image_tag": tag, **TLS}, out, validate=False)
        return compose(out, "sandbox", "target-1")["services"]

    first = services_of("0123456789ab-a63674eff6c6", tmp_path / "a")
    new_model = services_of("0123456789ab-dc58290ea860", tmp_path / "b")
    assert first["frontend"] == new_model["frontend"] and first["frontend"]["image"] == "mnist-frontend:0123456789ab"
    assert first["backend"]["image"] != new_model["backend"]["image"] == "mnist-backend:0123456789ab-dc58290ea860"
    new_code = services_of("fedcba987654-a63674eff6c6", tmp_path / "c")
    assert new_code["frontend"]["image"] == "mnist-frontend:fedcba987654"


def test_the_same_rendered_files_are_validated_once(tmp_path, monkeypatch):
    validated = []
    monkeypatch.setattr(render, "validate_hosts", lambda hosts: validated.append(sorted(hosts)))
    monkeypatch.setattr(render.provision, "require", lambda *args: None)
    render.render("dev", {"mnist_stack_image_tag": TAG}, tmp_path)
    render.render("dev", {"mnist_stack_image_tag": TAG}, tmp_path)
    assert len(validated) == 1  # the second render wrote the very same files
    render.render("dev", {"mnist_stack_image_tag": "fedcba987654-a63674eff6c6"}, tmp_path)
    assert len(validated) == 2  # a changed file (compose.yaml names other images) is validated again


def test_alertmanagers_folder_changes_with_its_secrets_and_keeps_them_out_of_the_rendered_files(tmp_path):
    hook = {"oncall": {"slack_url": "https://hooks.example.org/services/one"}}  # pragma: allowlist secret
    alerting = {"mnist_stack_alert_receivers": hook, "mnist_stack_alert_routes": {"page": "oncall"}}

    def rendered(out: Path, receivers: dict) -> tuple[str, Path]:
        extra = {"mnist_stack_image_tag": TAG, **TLS, **alerting, "mnist_stack_alert_receivers": receivers}
        host_dir = render.render("sandbox", extra, out, validate=False) / "target-1"
        return (host_dir / "alertmanager" / "fingerprint").read_text(), host_dir

    first, host_dir = rendered(tmp_path / "a", hook)
    again, _ = rendered(tmp_path / "b", hook)
    other, _ = rendered(tmp_path / "c", {"oncall": {"slack_url": "https://hooks.example.org/services/two"}})
    assert first == again != other
    assert "hooks.example.org" not in "".join(p.read_text() for p in host_dir.rglob("*") if p.is_file())
    # The replicas the inventory declares reach the alert rules (MnistBackendReplicasMissing).
    declared = yaml.safe_load((host_dir / "prometheus" / "declared.yml").read_text())
    assert declared["groups"][0]["rules"] == [{"record": "mnist:backend_replicas:declared", "expr": "vector(2)"}]

"""The stack's services, declared once (module_utils/services.py), and what derives from them."""

import re

import yaml
from ansible_collections.mnist.deploy.plugins.module_utils import services

from mnist_deploy import images, render


def test_a_host_runs_the_services_its_variables_turn_on():
    defaults = yaml.safe_load(render.ROLE_DEFAULTS.read_text())
    monitoring = ("alertmanager", "node_exporter", "release_exporter")
    assert services.enabled(defaults) == ("backend", "frontend", "prometheus", *monitoring)
    on = {**defaults, "mnist_stack_proxy_enabled": "yes", "mnist_stack_grafana_enabled": True}
    assert services.enabled(on)[3:5] == ("grafana", "proxy")
    off = {**defaults, **{f"mnist_stack_{name}_enabled": "no" for name in monitoring}}
    assert services.enabled(off) == ("backend", "frontend", "prometheus")


def test_images_rules_and_mounts_derive_from_the_declaration():
    # grafana is not built here
    monitoring = ("alertmanager", "node_exporter", "release_exporter")
    assert images.SERVICES == ("backend", "frontend", "prometheus", "proxy", *monitoring, "database")
    assert set(images.RECIPE_TAGGED) == {"prometheus", "proxy", *monitoring, "database"}
    assert images.RECIPE_TAGGED["database"] == ("docker/database.Dockerfile", "docker/database-entrypoint.sh")
    assert images.CODE_TAGGED == ("frontend",)
    assert services.MOUNTED == ("prometheus", "proxy", "alertmanager")
    assert "proxy" not in services.PUBLISHABLE and "grafana" in services.PUBLISHABLE
    # Every declared service has its place in the compose template, and the role's defaults name its settings.
    template = (render.TEMPLATES / "compose.yaml.j2").read_text()
    defaults = yaml.safe_load(render.ROLE_DEFAULTS.read_text())
    for service in services.SERVICES:
        assert f"\n  {service.name}:" in template, service.name
        assert f"mnist_stack_{service.name}_memory" in defaults, service.name
        if service.enabled_by:
            assert service.enabled_by in defaults, service.name


def test_the_decisions_and_filters_the_unit_tests_import_do_not_import_ansible():
    """Importing `ansible` patches sys.intern, which breaks torch's compiler in the same process (the training
    tests that run after these): the collection's Python that the tests import must not pull it in."""
    import subprocess
    import sys

    from mnist_deploy.collection import COLLECTIONS

    code = (
        f"import sys; sys.path.append({str(COLLECTIONS)!r})\n"
        "from ansible_collections.mnist.deploy.plugins.filter import lock, releases\n"
        "from ansible_collections.mnist.deploy.plugins.module_utils import engine, files, preflight, rules, services\n"
        "print(sorted(m for m in sys.modules if m == 'ansible' or m.startswith('ansible.')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout


def test_the_backends_feedback_database_is_the_inventorys_the_database_services_or_sqlite():
    assert services.feedback_url({}) == "sqlite:////var/lib/mnist/feedback.db"
    on = {"mnist_stack_database_enabled": "yes", "mnist_stack_database_port": 5433}
    assert services.feedback_url(on) == "postgresql+psycopg://mnist@database:5433/feedback"  # no password in it
    given = {**on, "mnist_stack_feedback_url": "postgresql+psycopg://app@db.internal/corrections"}
    assert services.feedback_url(given) == given["mnist_stack_feedback_url"]


def test_a_host_is_sent_and_records_only_the_images_of_the_services_it_runs():
    defaults = yaml.safe_load(render.ROLE_DEFAULTS.read_text())
    release_images = [{"service": name, "ref": f"mnist-{name}:r1"} for name in images.SERVICES]
    sandbox = services.images_run(release_images, defaults)
    assert "database" not in {image["service"] for image in sandbox}
    assert [image["service"] for image in sandbox] == [s for s in images.SERVICES if s in services.enabled(defaults)]
    production = services.images_run(release_images, {**defaults, "mnist_stack_database_enabled": True})
    assert {image["service"] for image in production} >= {"backend", "database"}
    # The role hands the filter its switches by a name pattern (vars/main.yml): every service's switch matches it.
    role_vars = (render.ROLE_DEFAULTS.parent.parent / "vars" / "main.yml").read_text()
    pattern = re.search(r"varnames', '(\^mnist_stack_[^']+)'", role_vars)
    assert pattern, "vars/main.yml no longer selects the switches by name"
    for service in services.SERVICES:
        if service.enabled_by:
            assert re.fullmatch(pattern.group(1), service.enabled_by), service.enabled_by

"""mnist.deploy's host preparation and the files a release installs, without a host."""

import json
import os

import pytest
from ansible_collections.mnist.deploy.plugins.module_utils.files import install, release_files
from ansible_collections.mnist.deploy.plugins.module_utils.preflight import (
    compose_problem,
    free_mb,
    prepare,
    space_problem,
)

RELEASE = {"id": "0123456789ab", "env": "staging", "files": {"web-1": {"compose.yaml": "h1"}}, "images": []}


def test_space_is_enough_or_the_refusal_names_each_short_filesystem():
    assert space_problem({"/var/lib/docker": 5000, "/opt/mnist": 3000}, 2048) == ""
    assert space_problem({"/var/lib/docker": 1000, "/opt/mnist": 3000}, 2048) == (
        "only 1000 MB in /var/lib/docker free; the deploy needs 2048 MB (mnist_stack_min_free_disk_mb)"
    )


def test_a_folder_not_made_yet_is_measured_where_it_would_be_made(tmp_path):
    assert free_mb(str(tmp_path / "not" / "made")) == free_mb(str(tmp_path)) > 0


def test_prepare_makes_the_releases_folder_and_removes_what_a_dead_deploy_left(tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "abc.tar").write_bytes(b"x" * 10)
    (drop / "abd-0123456789ab.tar.gz").write_bytes(b"x" * 10)  # cut and compressed (module_utils/archive.py)
    (drop / "notes.txt").write_text("kept")
    cut_short = drop / "transfer" / "ansible-tmp-1764000000.1-42-1"  # a copy killed midway
    cut_short.mkdir(parents=True)
    (cut_short / "source").write_bytes(b"x" * 10)
    home = tmp_path / "opt" / "mnist-staging"
    leftovers = [str(drop / "abc.tar"), str(drop / "abd-0123456789ab.tar.gz"), str(cut_short)]
    assert prepare(str(home), str(drop), check=True) == leftovers
    assert (drop / "abc.tar").exists() and cut_short.exists() and not home.exists()  # a dry run changes nothing
    assert prepare(str(home), str(drop)) == leftovers
    assert not (drop / "abc.tar").exists() and not cut_short.exists() and (drop / "notes.txt").exists()
    assert (home / "releases").is_dir() and oct((home / "releases").stat().st_mode & 0o777) == "0o750"
    assert prepare(str(home), str(drop)) == []


def rendered(tmp_path):
    host_dir = tmp_path / "render" / "web-1"
    (host_dir / "prometheus").mkdir(parents=True)
    (host_dir / "proxy").mkdir()
    (host_dir / "compose.yaml").write_text("services: {}\n")
    (host_dir / "prometheus" / "prometheus.yml").write_text("global: {}\n")
    (host_dir / "prometheus" / "fingerprint").write_text("m1\n")
    (host_dir / "proxy" / "haproxy.cfg").write_text("global\n")
    (host_dir / "proxy" / "fingerprint").write_text("p1\n")
    return host_dir


def with_secrets(tmp_path):
    """The release's files for a host with Grafana's password and the proxy's certificate and key."""
    return release_files(
        str(rendered(tmp_path)),
        RELEASE,
        "web-1",
        {"grafana_admin_password": "a-grafana-password"},  # pragma: allowlist secret (a test value)
        "PEM\n",
    )


def test_a_release_installs_its_folder_its_record_its_secrets_and_the_mounted_folders(tmp_path):
    files = with_secrets(tmp_path)
    by_path = {entry["path"]: entry for entry in files}
    assert sorted(by_path) == [
        "prometheus/m1/fingerprint",
        "prometheus/m1/prometheus.yml",
        "proxy/p1/fingerprint",
        "proxy/p1/haproxy.cfg",
        "proxy/p1/tls.pem",
        "releases/0123456789ab/compose.yaml",
        "releases/0123456789ab/prometheus/fingerprint",
        "releases/0123456789ab/prometheus/prometheus.yml",
        "releases/0123456789ab/proxy/fingerprint",
        "releases/0123456789ab/proxy/haproxy.cfg",
        "releases/0123456789ab/release.json",
        "releases/0123456789ab/secrets/grafana_admin_password",
    ]
    assert by_path["proxy/p1/tls.pem"] | {"content": ""} == {
        "path": "proxy/p1/tls.pem",
        "content": "",
        "owner": "10080",
        "group": "10080",
        "mode": "0400",
    }
    record = json.loads(by_path["releases/0123456789ab/release.json"]["content"])
    assert record["files"] == {"compose.yaml": "h1"} and record["host"] == "web-1"
    assert by_path["releases/0123456789ab/release.json"]["create_only"] is True
    assert by_path["releases/0123456789ab/secrets/grafana_admin_password"]["content"] == "a-grafana-password\n"
    # Without Grafana and the proxy's TLS, no secret is installed.
    plain = {entry["path"] for entry in release_files(str(rendered(tmp_path / "plain")), RELEASE, "web-1")}
    assert not {"proxy/p1/tls.pem", "releases/0123456789ab/secrets/grafana_admin_password"} & plain


@pytest.mark.skipif(os.geteuid() != 0, reason="the files belong to root, the proxy's key to uid 10080")
def test_installing_a_release_twice_writes_nothing_the_second_time(tmp_path):
    files = with_secrets(tmp_path)
    home = tmp_path / "home"
    assert len(install(str(home), files)) == len(files)
    assert install(str(home), files) == []
    assert (home / "proxy" / "p1" / "haproxy.cfg").read_text() == "global\n"


def test_a_host_without_a_recent_enough_compose_plugin_is_refused_before_anything_ships():
    assert compose_problem(0, "2.40.3\n", "") == ""
    assert compose_problem(0, "2.26.1+ds1-0+deb13u1\n", "") == ""  # Debian 13's docker-compose package
    assert compose_problem(0, "2.17.3\n", "") == (
        "Compose 2.17.3 is older than 2.18.0 (community.docker.docker_compose_v2 needs it): "
        "run `invoke bootstrap` for this environment"
    )
    refused = compose_problem(1, "", "docker: 'compose' is not a docker command.\nSee 'docker --help'\n")
    assert refused.startswith("Compose v2 does not answer (`docker compose version` printed \"docker: 'compose'")
    assert refused.endswith(": run `invoke bootstrap` for this environment")

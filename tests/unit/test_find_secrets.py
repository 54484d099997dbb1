"""tests/infra/find_secrets.py, run here the way the infra check runs it on a host: `python3 -`, secrets on stdin."""

import base64
import json
import subprocess
import sys

from tests.infra.conftest import FIND_SECRETS

SECRET = "s3cret-from-vault-Zq9"  # pragma: allowlist secret (a test value)


def search(needles, roots):
    payload = base64.b64encode(json.dumps({"needles": needles, "containers": [], "roots": roots}).encode()).decode()
    script = FIND_SECRETS.read_text() + f'\nmain("{payload}")\n'
    proc = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True, check=True)
    return proc, json.loads(proc.stdout)


def test_it_finds_a_secret_in_files_and_reports_only_paths(tmp_path):
    (tmp_path / "releases" / "r1" / "secrets").mkdir(parents=True)
    (tmp_path / "releases" / "r1" / "secrets" / "grafana").write_text(SECRET)
    (tmp_path / "releases" / "r1" / "compose.yaml").write_text(f"password: {SECRET}\n")
    (tmp_path / "releases" / "r1" / "clean.yaml").write_text("nothing here\n")
    (tmp_path / "audit.log").write_text("deployed\n")
    proc, found = search([SECRET], [str(tmp_path / "releases"), str(tmp_path / "audit.log")])
    assert sorted(found["files"]) == sorted(
        [str(tmp_path / "releases" / "r1" / "secrets" / "grafana"), str(tmp_path / "releases" / "r1" / "compose.yaml")]
    )
    assert SECRET not in proc.stdout + proc.stderr
    assert found["errors"] == [] and found["logs"] == []


def test_the_command_line_carries_no_secret():
    source = (FIND_SECRETS.parent / "conftest.py").read_text()
    assert '"sudo -n python3 -"' in source  # the whole remote command: the secrets go on stdin

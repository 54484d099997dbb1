"""The collection's modules document themselves: ansible-doc reads each one without an error."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
MODULES = sorted((ROOT / "collections/ansible_collections/mnist/deploy/plugins/modules").glob("*.py"))


@pytest.mark.parametrize("module", MODULES, ids=lambda path: path.stem)
def test_ansible_doc_reads_the_modules_documentation(module):
    doc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-doc"), f"mnist.deploy.{module.stem}"],
        capture_output=True,
        text=True,
        env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")},
        cwd=ROOT,
        check=False,
    )
    assert doc.returncode == 0 and "ERROR" not in doc.stderr, doc.stderr
    assert "OPTIONS" in doc.stdout and "RETURN VALUES" in doc.stdout

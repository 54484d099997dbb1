"""The stack's settings rules, from the project's Ansible collection, where the playbooks read them too: declared
once (collections/ansible_collections/mnist/deploy/plugins/module_utils/rules.py)."""

from __future__ import annotations

import sys
from pathlib import Path

COLLECTIONS = Path(__file__).resolve().parent.parent / "collections"
if str(COLLECTIONS) not in sys.path:
    sys.path.append(str(COLLECTIONS))

from ansible_collections.mnist.deploy.plugins.module_utils.rules import problems  # noqa: E402

__all__ = ["problems"]

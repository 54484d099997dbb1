"""What the project's Ansible collection declares and Invoke applies too, declared once, in
collections/ansible_collections/mnist/deploy/plugins/module_utils/: the stack's services and its settings rules."""

from __future__ import annotations

import sys
from pathlib import Path

COLLECTIONS = Path(__file__).resolve().parent.parent / "collections"
if str(COLLECTIONS) not in sys.path:
    sys.path.append(str(COLLECTIONS))

from ansible_collections.mnist.deploy.plugins.module_utils import archive, identity, rules, services  # noqa: E402

__all__ = ["archive", "identity", "rules", "services"]

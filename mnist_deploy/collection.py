"""What the project's Ansible collection declares and Invoke applies too, declared once, in
collections/ansible_collections/mnist/deploy/plugins/module_utils/: the stack's services, its settings rules,
Alertmanager's config, a host's releases and its drift from them."""

from __future__ import annotations

import sys
from pathlib import Path

COLLECTIONS = Path(__file__).resolve().parent.parent / "collections"
if str(COLLECTIONS) not in sys.path:
    sys.path.append(str(COLLECTIONS))

from ansible_collections.mnist.deploy.plugins.module_utils import (  # noqa: E402
    alerting,
    archive,
    drift,
    identity,
    releases,
    rules,
    services,
)

__all__ = ["alerting", "archive", "drift", "identity", "releases", "rules", "services"]

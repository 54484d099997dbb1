#!/usr/bin/python
"""Record on a host what now serves, in one call: a face over module_utils/releases.py."""

from __future__ import annotations

DOCUMENTATION = r"""
module: release_record
short_description: Point current and previous at the releases, log the event, extend the history, plan the prune
author: mnist-deployment developers
version_added: 0.1.0
description:
  - After a release serves (I(event) C(deploy) or C(rollback)), points C(HOME/current) at it and C(HOME/previous)
    at I(active), appends the event to C(HOME/audit.log) and writes the environment's history (C(HOME/history.json)).
  - I(event) C(failed) only appends to the audit log.
  - The audit log is history, not state; appending to it alone is no change.
  - With I(keep), also returns what to prune (see release_state).
options:
  home:
    description: The stack's folder on the host.
    type: path
    required: true
  release:
    description: The release (id) now serving, or the one that failed.
    type: str
    required: true
  active:
    description: The release (id) that served before ('' if none).
    type: str
    default: ""
  event:
    description: What happened.
    type: str
    choices: [deploy, rollback, failed]
    required: true
  by:
    description: Who deployed.
    type: str
    default: unknown
  host:
    description: The host's inventory name, for the audit log.
    type: str
    required: true
  note:
    description: The operator's reason, for the audit log ('' for none).
    type: str
    default: ""
  keep:
    description: How many releases to keep; 0 plans no prune.
    type: int
    default: 0
  containers:
    description:
      - Every container running on the host now, {id, name} (docker_host_info's), written with the release to
        C(HOME/serving.json); the release exporter reports as drift any that stops and any other that starts.
      - Not for C(failed).
    type: list
    elements: dict
    default: []
"""

EXAMPLES = r"""
- name: Record the release
  mnist.deploy.release_record:
    home: /opt/mnist/mnist-production
    release: 0123456789ab
    active: ba9876543210
    event: deploy
    by: alice@ci
    host: web-1
    keep: 5
  register: recorded
"""

RETURN = r"""
history:
  description: The environment's history after the event, the current release last.
  type: list
  returned: always
prune:
  description: Paths of releases and mounted folders, and image ids, to remove (with I(keep), not for C(failed)).
  type: dict
  returned: when keep > 0
"""

from datetime import datetime, timezone

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mnist.deploy.plugins.module_utils.releases import (
    audit_line,
    container_names,
    prune_plan,
    read_state,
    record,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "home": {"type": "path", "required": True},
            "release": {"type": "str", "required": True},
            "active": {"type": "str", "default": ""},
            "event": {"type": "str", "choices": ["deploy", "rollback", "failed"], "required": True},
            "by": {"type": "str", "default": "unknown"},
            "host": {"type": "str", "required": True},
            "note": {"type": "str", "default": ""},
            "keep": {"type": "int", "default": 0},
            "containers": {"type": "list", "elements": "dict", "default": []},
        },
        supports_check_mode=True,
    )
    p = module.params
    event = p["event"] + (" (already active)" if p["event"] != "failed" and p["active"] == p["release"] else "")
    line = audit_line(
        datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), event, p["release"], p["by"], p["host"], p["note"]
    )
    try:
        running = container_names(p["containers"])
        result = record(p["home"], p["release"], p["active"], p["event"], line, module.check_mode, running)
        if p["keep"] and p["event"] != "failed":
            result["prune"] = prune_plan(read_state(p["home"]), p["keep"], p["release"], p["active"])
    except (OSError, ValueError) as exc:
        module.fail_json(msg=f"recording {p['release']} in {p['home']}: {exc}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()

#!/usr/bin/python
"""Read a host's releases in one call, with the decisions taken from them: a face over module_utils/releases.py."""

from __future__ import annotations

DOCUMENTATION = r"""
module: release_state
short_description: A host's releases, current and previous, history, and what to prune or roll back to
author: mnist-deployment developers
version_added: 0.1.0
description:
  - Reads C(HOME/releases/*/release.json), the C(current) and C(previous) links, C(HOME/history.json) and the
    folders the proxy and Prometheus mount, in one call. Never changes the host.
  - With I(keep), I(release) and I(active), also says what to prune once I(release) serves.
  - With I(rollback), also says which release a rollback returns to, or why it cannot.
options:
  home:
    description: The stack's folder on the host, C(mnist_stack_root)/C(mnist_stack_project).
    type: path
    required: true
  keep:
    description: How many releases to keep; 0 computes no prune plan.
    type: int
    default: 0
  release:
    description: The release (id) that serves after this run.
    type: str
    default: ""
  active:
    description: The release (id) that served before this run.
    type: str
    default: ""
  rollback:
    description: Say what a rollback returns to.
    type: bool
    default: false
  to:
    description: The release a rollback was asked to return to (empty, the one before in history).
    type: str
    default: ""
  revert:
    description: Undo a failed deploy, returning the host to I(to), the release it ran before (none when empty).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Read the host's releases and what to prune
  mnist.deploy.release_state:
    home: /opt/mnist/mnist-production
    keep: 5
    release: 0123456789ab
    active: ba9876543210
  register: state
"""

RETURN = r"""
releases:
  description: The releases kept, newest first (id, path, mtime, record, mounts).
  type: list
  returned: always
current:
  description: The release C(current) points at ('' if none).
  type: str
  returned: always
previous:
  description: The release C(previous) points at ('' if none).
  type: str
  returned: always
history:
  description: The environment's releases in the order they served, the current one last.
  type: list
  returned: always
prune:
  description: Paths of releases and mounted folders, and image ids, to remove (with I(keep)).
  type: dict
  returned: when keep > 0
rollback:
  description: The rollback's target and refusal (with I(rollback)).
  type: dict
  returned: when rollback is true
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mnist.deploy.plugins.module_utils.releases import prune_plan, read_state, rollback_target


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "home": {"type": "path", "required": True},
            "keep": {"type": "int", "default": 0},
            "release": {"type": "str", "default": ""},
            "active": {"type": "str", "default": ""},
            "rollback": {"type": "bool", "default": False},
            "to": {"type": "str", "default": ""},
            "revert": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    params = module.params
    state = read_state(params["home"])
    result = dict(state)
    if params["keep"]:
        try:
            result["prune"] = prune_plan(state, params["keep"], params["release"], params["active"])
        except ValueError as exc:
            module.fail_json(msg=str(exc))
    if params["rollback"]:
        result["rollback"] = rollback_target(state, params["to"], params["revert"])
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()

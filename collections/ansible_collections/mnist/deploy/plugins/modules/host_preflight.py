#!/usr/bin/python
"""Ready a host for a release and read its releases, in one call: a face over module_utils/preflight.py and
module_utils/releases.py."""

from __future__ import annotations

DOCUMENTATION = r"""
module: host_preflight
short_description: Ready a host for a release and read its releases, in one call
author: mnist-deployment developers
version_added: 0.1.0
description:
  - Makes C(HOME/releases), removes the image archives an interrupted deploy left in I(drop_dir), checks that each
    of I(space) has I(min_free_mb) free, and reads the host's releases as M(mnist.deploy.release_state) does.
  - Fails, changing nothing, when a filesystem has too little space or the engine's Compose v2 plugin is missing or
    older than community.docker.docker_compose_v2 needs.
  - In check mode, makes and removes nothing and says what it would remove.
options:
  home:
    description: The stack's folder on the host, C(mnist_stack_root)/C(mnist_stack_project).
    type: path
    required: true
  drop_dir:
    description: Where image archives land while a deploy loads them.
    type: path
    required: true
  space:
    description: Folders whose filesystems must have I(min_free_mb) free (the engine's root, the releases' root).
    type: list
    elements: path
    default: []
  min_free_mb:
    description: Free space (MB) each filesystem in I(space) needs.
    type: int
    default: 0
"""

EXAMPLES = r"""
- name: Ready the host and read its releases
  mnist.deploy.host_preflight:
    home: /opt/mnist/mnist-production
    drop_dir: /var/tmp/mnist-images
    space: [/var/lib/docker, /opt/mnist]
    min_free_mb: 2048
  register: state
"""

RETURN = r"""
free_mb:
  description: Free space (MB) per folder of I(space).
  type: dict
  returned: always
removed:
  description: The leftover archives removed (in check mode, that would be).
  type: list
  returned: always
current:
  description: As M(mnist.deploy.release_state) returns, with C(releases), C(previous) and C(history).
  type: str
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mnist.deploy.plugins.module_utils.preflight import (
    compose_problem,
    free_mb,
    prepare,
    space_problem,
)
from ansible_collections.mnist.deploy.plugins.module_utils.releases import read_state


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "home": {"type": "path", "required": True},
            "drop_dir": {"type": "path", "required": True},
            "space": {"type": "list", "elements": "path", "default": []},
            "min_free_mb": {"type": "int", "default": 0},
        },
        supports_check_mode=True,
    )
    p = module.params
    problem = compose_problem(*module.run_command(["docker", "compose", "version", "--short"]))
    if problem:
        module.fail_json(msg=problem)
    free = {path: free_mb(path) for path in p["space"]}
    problem = space_problem(free, p["min_free_mb"])
    if problem:
        module.fail_json(msg=problem, free_mb=free)
    try:
        removed = prepare(p["home"], p["drop_dir"], module.check_mode)
    except OSError as exc:
        module.fail_json(msg=f"preparing {p['home']}: {exc}")
    module.exit_json(changed=bool(removed), free_mb=free, removed=removed, **read_state(p["home"]))


if __name__ == "__main__":
    main()

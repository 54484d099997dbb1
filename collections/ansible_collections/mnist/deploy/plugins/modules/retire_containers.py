#!/usr/bin/python
"""Stop and remove a set of containers in one call, through community.docker's API client."""

from __future__ import annotations

DOCUMENTATION = r"""
module: retire_containers
short_description: Stop (gracefully) and remove a set of containers in one call
author: mnist-deployment developers
version_added: 0.1.0
description:
  - Stops each container (SIGTERM, then SIGKILL after I(stop_timeout) seconds) and removes it, one after the other,
    in one module call (through a bastion each task is a round trip, and community.docker.docker_container takes one
    per container). A container already gone is no error.
  - Talks to the engine through community.docker's API client, with its connection options.
extends_documentation_fragment:
  - community.docker.docker.api_documentation
options:
  containers:
    description: IDs or names of the containers.
    type: list
    elements: str
    required: true
  stop_timeout:
    description: Seconds each container has to stop before it is killed.
    type: int
    default: 30
"""

EXAMPLES = r"""
- name: Stop and remove the drained replicas
  mnist.deploy.retire_containers:
    containers: ["{{ old_replica_id }}"]
    stop_timeout: 30
"""

RETURN = r"""
removed:
  description: The containers stopped and removed (in check mode, that would be).
  type: list
  returned: always
"""

from ansible_collections.community.docker.plugins.module_utils._api.errors import APIError, NotFound
from ansible_collections.community.docker.plugins.module_utils.common_api import AnsibleDockerClient, RequestException


def main() -> None:
    client = AnsibleDockerClient(
        argument_spec={
            "containers": {"type": "list", "elements": "str", "required": True},
            "stop_timeout": {"type": "int", "default": 30},
        },
        supports_check_mode=True,
    )
    containers, timeout = client.module.params["containers"], client.module.params["stop_timeout"]
    removed = []
    for container in containers:
        try:
            if not client.check_mode:
                client_timeout = None if client.timeout is None else client.timeout + timeout
                client.post_call("/containers/{0}/stop", container, params={"t": timeout}, timeout=client_timeout)
                client.delete_call("/containers/{0}", container, params={"v": False, "force": False})
            else:
                client.get_json("/containers/{0}/json", container)
            removed.append(container)
        except NotFound:
            continue
        except (APIError, RequestException) as exc:
            client.fail(f"stopping and removing {container}: {exc}", removed=removed)
    client.module.exit_json(changed=bool(removed), removed=removed)


if __name__ == "__main__":
    main()

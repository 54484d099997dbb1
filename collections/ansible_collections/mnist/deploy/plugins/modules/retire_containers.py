#!/usr/bin/python
"""Stop and remove a set of containers in one call, through community.docker's API client."""

from __future__ import annotations

DOCUMENTATION = r"""
module: retire_containers
short_description: Stop (gracefully) and remove a set of containers in one call
author: mnist-deployment developers
version_added: 0.1.0
description:
  - Stops the containers at once (SIGTERM, then SIGKILL after I(stop_timeout) seconds), then removes them, in one
    module call (through a bastion each task is a round trip, and community.docker.docker_container takes one
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

from concurrent.futures import ThreadPoolExecutor

from ansible_collections.community.docker.plugins.module_utils._api.api.client import APIClient
from ansible_collections.community.docker.plugins.module_utils._api.errors import APIError, NotFound
from ansible_collections.community.docker.plugins.module_utils.common_api import (
    AnsibleDockerClient,
    RequestException,
    get_connect_params,
)


def stop(connect_params: dict, container: str, timeout: int) -> str:
    """Stop CONTAINER on a client of its own (one per thread: the stops overlap); '' when done or gone, else why."""
    api = APIClient(**connect_params)
    try:
        api.post_call("/containers/{0}/stop", container, params={"t": timeout}, timeout=api.timeout + timeout)
    except NotFound:
        return ""
    except (APIError, RequestException) as exc:
        return f"stopping {container}: {exc}"
    finally:
        api.close()
    return ""


def main() -> None:
    client = AnsibleDockerClient(
        argument_spec={
            "containers": {"type": "list", "elements": "str", "required": True},
            "stop_timeout": {"type": "int", "default": 30},
        },
        supports_check_mode=True,
    )
    containers, timeout = client.module.params["containers"], client.module.params["stop_timeout"]
    present = []
    for container in containers:
        try:
            client.get_json("/containers/{0}/json", container)
            present.append(container)
        except NotFound:
            continue
    if client.check_mode or not present:
        client.module.exit_json(changed=bool(present), removed=present)
    # All at once: each one's server finishes its own requests (they were drained) while the others do.
    connect_params = get_connect_params(client.auth_params, fail_function=client.fail)
    with ThreadPoolExecutor(max_workers=len(present)) as pool:
        problems = [problem for problem in pool.map(lambda c: stop(connect_params, c, timeout), present) if problem]
    if problems:
        client.fail("; ".join(problems), removed=[])
    removed = []
    for container in present:
        try:
            client.delete_call("/containers/{0}", container, params={"v": False, "force": False})
        except NotFound:
            pass
        except (APIError, RequestException) as exc:
            client.fail(f"removing {container}: {exc}", removed=removed)
        removed.append(container)
    client.module.exit_json(changed=True, removed=removed)


if __name__ == "__main__":
    main()

"""Filters for the environment's deploy lock: thin faces over module_utils/lock.py."""

from __future__ import annotations

from ansible_collections.mnist.deploy.plugins.module_utils.lock import refusals


def lock_refusals(hostvars, hosts, fact="__mnist_stack_lock"):
    """Which of HOSTS another deploy holds, from each host's registered deploy_lock result FACT."""
    return refusals({host: hostvars[host].get(fact) or {} for host in hosts})


class FilterModule:
    def filters(self):
        return {"lock_refusals": lock_refusals}

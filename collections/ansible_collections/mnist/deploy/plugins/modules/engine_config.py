#!/usr/bin/python
"""Set keys of the Docker engine's daemon.json, keeping the others, and have the running engine reload it."""

from __future__ import annotations

DOCUMENTATION = r"""
module: engine_config
short_description: Set keys of the Docker engine's daemon.json and reload the engine
author: mnist-deployment developers
version_added: 0.1.0
description:
  - Merges I(settings) into the engine's configuration file, keeping every other key, and sends the running engine
    SIGHUP, which reloads the options that allow it (live-restore among them) without stopping a container.
  - A file that is not a JSON object is refused, never replaced. The decision is module_utils/engine.py's
    daemon_config.
options:
  path:
    description: The engine's configuration file.
    type: path
    default: /etc/docker/daemon.json
  settings:
    description: The keys to set, with their values.
    type: dict
    required: true
  pid_file:
    description: Where the engine writes its process id; the engine is not signalled when it is absent.
    type: path
    default: /var/run/docker.pid
"""

EXAMPLES = r"""
- name: Keep containers running while the engine restarts
  mnist.deploy.engine_config:
    settings: {live-restore: true}
"""

RETURN = r"""
config:
  description: The configuration as written (in check mode, as it would be).
  type: dict
  returned: always
reloaded:
  description: Whether the running engine was told to reload it.
  type: bool
  returned: always
"""

import json
import os
import signal

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mnist.deploy.plugins.module_utils.engine import daemon_config


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "default": "/etc/docker/daemon.json"},
            "settings": {"type": "dict", "required": True},
            "pid_file": {"type": "path", "default": "/var/run/docker.pid"},
        },
        supports_check_mode=True,
    )
    path, pid_file = module.params["path"], module.params["pid_file"]
    current = None
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            current = handle.read()
    try:
        config, changed = daemon_config(current, module.params["settings"])
    except ValueError as exc:
        module.fail_json(msg=f"{path}: {exc}")
    reloaded = False
    if changed and not module.check_mode:
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        partial = f"{path}.mnist-partial"
        with open(partial, "w", encoding="utf-8") as handle:
            json.dump(config, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.chmod(partial, 0o644)
        os.replace(partial, path)
        if os.path.exists(pid_file):
            with open(pid_file, encoding="utf-8") as handle:
                pid = int(handle.read().strip())
            try:
                os.kill(pid, signal.SIGHUP)
                reloaded = True
            except ProcessLookupError:
                pass  # a stale pid file: the engine reads the file when it next starts
    module.exit_json(changed=changed, config=config, reloaded=reloaded)


if __name__ == "__main__":
    main()

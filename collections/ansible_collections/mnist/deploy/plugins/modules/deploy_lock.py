#!/usr/bin/python
"""Take or give back the deploy lock on a host: a thin face over module_utils/lock.py."""

from __future__ import annotations

DOCUMENTATION = r"""
module: deploy_lock
short_description: Take or release a host's deploy lock, owner written atomically with it
author: mnist-deployment developers
version_added: 0.1.0
description:
  - The lock is C(HOME/deploy.lock), a directory renamed into place with its C(owner.json) already inside, so a
    competing deploy never sees a lock without an owner.
  - Taking or releasing the lock leaves the host as it was, so the module reports C(changed) only when it made
    I(home) (a first deploy), with mode 0750.
options:
  home:
    description: The stack's folder on the host, C(mnist_stack_root)/C(mnist_stack_project).
    type: path
    required: true
  state:
    description: C(present) takes the lock; C(absent) releases it if I(token) holds it (or I(force)).
    type: str
    choices: [present, absent]
    default: present
  by:
    description: Who deploys (user@controller).
    type: str
    default: unknown
  release:
    description: The release being deployed or rolled back to.
    type: str
    default: ""
  token:
    description: This run's id; only it releases the lock it took.
    type: str
    required: true
  force:
    description: Release a lock whoever holds it (a deploy that died).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Take the deploy lock
  mnist.deploy.deploy_lock:
    home: /opt/mnist/mnist-production
    by: alice@ci
    release: 0123456789ab
    token: "{{ mnist_stack_run_id }}"
  register: lock
"""

RETURN = r"""
acquired:
  description: Whether this run now holds the lock (state=present).
  type: bool
  returned: always
released:
  description: Whether the lock was removed (state=absent).
  type: bool
  returned: always
holder:
  description: The owner record (by, release, since, since_epoch) of the lock held, or found in the way.
  type: dict
  returned: always
holder_text:
  description: The holder in words, with the lock's age.
  type: str
  returned: always
refused:
  description: Another deploy holds the lock (state=present; in check mode, a lock exists).
  type: bool
  returned: always
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mnist.deploy.plugins.module_utils.lock import LOCK_DIR, acquire, describe, read_owner, release


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "home": {"type": "path", "required": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "by": {"type": "str", "default": "unknown"},
            "release": {"type": "str", "default": ""},
            "token": {"type": "str", "required": True, "no_log": False},
            "force": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    params = module.params
    now = time.time()
    if module.check_mode:  # a dry run takes no lock: it only says who holds one
        holder = read_owner(f"{params['home']}/{LOCK_DIR}")
        exists = os.path.lexists(f"{params['home']}/{LOCK_DIR}")
        refused = params["state"] == "present" and exists and holder.get("token") != params["token"]
        module.exit_json(
            changed=False,
            acquired=False,
            released=False,
            refused=refused,
            holder=holder,
            holder_text=describe(holder, now) if exists else "",
        )
    created = False
    if params["state"] == "present":
        if not os.path.isdir(params["home"]):  # a first deploy: the stack's folders (root only) come with its lock
            os.makedirs(os.path.dirname(params["home"]), mode=0o750, exist_ok=True)
            os.mkdir(params["home"], mode=0o750)
            created = True
        outcome = {"released": False, **acquire(params["home"], params["by"], params["release"], params["token"])}
        refused = not outcome["acquired"]
    else:
        outcome = {"acquired": False, **release(params["home"], params["token"], params["force"])}
        refused = False
    holder = outcome["holder"]
    text = describe(holder, now) if holder or refused else ""
    module.exit_json(changed=created, refused=refused, holder_text=text, **outcome)


if __name__ == "__main__":
    main()

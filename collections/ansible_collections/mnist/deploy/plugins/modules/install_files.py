#!/usr/bin/python
"""Install a set of files in one call, writing only those that differ: a face over module_utils/files.py."""

from __future__ import annotations

DOCUMENTATION = r"""
module: install_files
short_description: Install many small files in one call, writing only those whose content, mode or owner differ
author: mnist-deployment developers
version_added: 0.1.0
description:
  - Each file that differs is written to a temporary file beside it and renamed into place.
  - Reports C(changed) only when a file was (or, in check mode, would be) written.
options:
  dest:
    description: The folder the files' paths are relative to; made if missing.
    type: path
    required: true
  files:
    description: The files, each C(path) (relative), C(content) (text), and optionally C(mode), C(owner), C(group).
    type: list
    elements: dict
    required: true
  dir_mode:
    description: Mode of the folders made.
    type: str
    default: "0755"
"""

EXAMPLES = r"""
- name: Install the files rendered for this host
  mnist.deploy.install_files:
    dest: /opt/mnist/mnist-production/releases/0123456789ab
    files: "{{ (mnist_stack_render_dir ~ '/' ~ inventory_hostname) | mnist.deploy.rendered_files }}"
"""

RETURN = r"""
written:
  description: The paths written (in check mode, that would be).
  type: list
  returned: always
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mnist.deploy.plugins.module_utils.files import install


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "dest": {"type": "path", "required": True},
            "files": {"type": "list", "elements": "dict", "required": True},
            "dir_mode": {"type": "str", "default": "0755"},
        },
        supports_check_mode=True,
    )
    params = module.params
    dir_mode = int(params["dir_mode"], 8)
    try:
        if not os.path.isdir(params["dest"]) and not module.check_mode:
            os.makedirs(params["dest"], mode=dir_mode)
        written = install(params["dest"], params["files"], dir_mode, module.check_mode)
    except (OSError, ValueError, KeyError) as exc:
        module.fail_json(msg=f"installing into {params['dest']}: {exc}")
    module.exit_json(changed=bool(written), written=written)


if __name__ == "__main__":
    main()

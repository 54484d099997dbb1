#!/usr/bin/python
"""Cut an image archive down to the layers a host lacks, compressed: a face over module_utils/archive.py."""

from __future__ import annotations

DOCUMENTATION = r"""
module: image_archive
short_description: Cut a docker save archive down to the layers a host lacks, compressed
author: mnist-deployment developers
version_added: 0.1.0
description:
  - Writes I(dest) from I(source) (a C(docker save) archive) without the files of the layers listed in I(skip)
    (diff IDs), gzip-compressed when I(compress). The classic image store loads it into the same image, reusing
    the layers it has. Run it where the archive is (the controller).
  - Leaves an existing I(dest) as it is (the same name means the same content), so hosts that lack the same layers
    share one archive.
options:
  source:
    description: The whole archive, as C(docker save) (community.docker.docker_image_export) writes it.
    type: path
    required: true
  dest:
    description: The archive to write.
    type: path
    required: true
  skip:
    description: Diff IDs of the layers to leave out.
    type: list
    elements: str
    default: []
  compress:
    description: Whether to gzip I(dest) (level 1).
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Cut the backend's archive down to what the host lacks
  mnist.deploy.image_archive:
    source: build/images/2bfdd343190d.tar
    dest: build/images/2bfdd343190d-5f0c1e2a9b7d.tar.gz
    skip: ["sha256:1c5199c5c467b80694d27f630dd29761b49ff43b8cd2bbe74d8995e5be683220"]
"""

RETURN = r"""
left_out:
  description: How many layer files were left out.
  type: int
  returned: changed
bytes:
  description: The size of I(dest).
  type: int
  returned: always
"""

import os
import tarfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mnist.deploy.plugins.module_utils.archive import cut_archive


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "source": {"type": "path", "required": True},
            "dest": {"type": "path", "required": True},
            "skip": {"type": "list", "elements": "str", "default": []},
            "compress": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    p = module.params
    if os.path.exists(p["dest"]):
        module.exit_json(changed=False, bytes=os.path.getsize(p["dest"]))
    if module.check_mode:
        module.exit_json(changed=True, bytes=0)
    try:
        result = cut_archive(p["source"], p["dest"], p["skip"], p["compress"])
    except (OSError, KeyError, ValueError, tarfile.TarError) as exc:
        module.fail_json(msg=f"cutting {p['source']} into {p['dest']}: {exc}")
    module.exit_json(changed=True, **result)


if __name__ == "__main__":
    main()

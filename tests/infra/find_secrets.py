"""Run on a deployed host as `sudo python3 -`, this file on stdin followed by one line `main("<base64 JSON>")`.

Where do the given secrets appear: in which container's logs, in which file under the given folders? The secrets
travel on stdin only: never on a command line (which sudo's auth log and `ps` would show), in the environment or
on disk. Prints one JSON object with the places found, never the secrets. Standard library only.
"""

import base64
import json
import os
import subprocess


def files_under(roots):
    for root in roots:
        if os.path.isfile(root):
            yield root
        for folder, _, names in os.walk(root):
            for name in names:
                yield os.path.join(folder, name)


def main(payload):
    request = json.loads(base64.b64decode(payload))
    needles = [needle.encode() for needle in request["needles"]]
    found = {"logs": [], "files": [], "errors": []}
    for container in request["containers"]:
        logs = subprocess.run(["docker", "logs", container], capture_output=True, check=False)
        if logs.returncode != 0:
            found["errors"].append(f"docker logs {container}: exit {logs.returncode}")
        if any(needle in logs.stdout + logs.stderr for needle in needles):
            found["logs"].append(container)
    for path in files_under(request["roots"]):
        if os.path.islink(path):
            continue
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            found["errors"].append(f"{path}: {exc.strerror}")
            continue
        if any(needle in data for needle in needles):
            found["files"].append(path)
    print(json.dumps(found))

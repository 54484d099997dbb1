"""Values an inventory encrypts inline (`!vault |`), decrypted as Ansible does.

`ansible-inventory --list` prints such a value as {"__ansible_vault": "<ciphertext>"}, never decrypted (a whole
vault file it does decrypt): rendered as is, a TLS key or a password would be that dict's text, and the testinfra
secrets check would look for the ciphertext. Run as `python -m mnist_deploy.vault` with the ciphertexts (a JSON
list) on stdin, it prints their plain texts (a JSON list), with the vault secrets Ansible's own command line would
use (ANSIBLE_VAULT_PASSWORD_FILE, ANSIBLE_VAULT_IDENTITY_LIST, ansible.cfg). A process of its own: importing
ansible patches sys.intern, which torch then refuses, so the controller's processes do not import it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from mnist_deploy.errors import DeployError

MARK = "__ansible_vault"


def is_inline(value: Any) -> bool:
    """Whether VALUE is how ansible-inventory prints an inline-encrypted value."""
    return isinstance(value, dict) and set(value) == {MARK}


def _inline(value: Any, where: str) -> dict[str, str]:
    """{where: ciphertext} of VALUE and what it holds (in mappings and lists) encrypted inline."""
    if is_inline(value):
        return {where: value[MARK]}
    found: dict[str, str] = {}
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, inner in items:
        found |= _inline(inner, f"{where}.{key}")
    return found


def _replaced(value: Any, plain: dict[str, str]) -> Any:
    if is_inline(value):
        return plain[value[MARK]]
    if isinstance(value, dict):
        return {key: _replaced(inner, plain) for key, inner in value.items()}
    if isinstance(value, list):
        return [_replaced(inner, plain) for inner in value]
    return value


def encrypted(hostvars: dict[str, dict[str, Any]]) -> dict[str, str]:
    """{variable: ciphertext} of the values HOSTVARS (ansible-inventory's) hold encrypted inline, those inside
    mappings and lists too (a receiver's webhook URL, say: `mnist_stack_alert_receivers.oncall.slack_url`)."""
    found: dict[str, str] = {}
    for variables in hostvars.values():
        for name, value in variables.items():
            found |= _inline(value, name)
    return found


def decrypt_inline(hostvars: dict[str, dict[str, Any]], cwd: str) -> dict[str, dict[str, Any]]:
    """HOSTVARS with every inline-encrypted value decrypted; DeployError naming the variables when they cannot be."""
    found = encrypted(hostvars)
    if not found:
        return hostvars
    ciphertexts = sorted(set(found.values()))
    proc = subprocess.run(
        [sys.executable, "-m", "mnist_deploy.vault"],
        input=json.dumps(ciphertexts),
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,  # ansible.cfg's vault settings, as the playbooks read them
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [cwd, os.environ.get("PYTHONPATH")]))},
    )
    if proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or ["no reason given"])[-1]
        raise DeployError(
            f"cannot decrypt {', '.join(sorted(found))}, encrypted inline (!vault): {why} "
            "(export ANSIBLE_VAULT_PASSWORD_FILE, or set vault_password_file in ansible.cfg)"
        )
    plain = dict(zip(ciphertexts, json.loads(proc.stdout), strict=True))
    return {
        host: {name: _replaced(value, plain) for name, value in variables.items()}
        for host, variables in hostvars.items()
    }


def main() -> None:
    from ansible import constants
    from ansible.cli import CLI
    from ansible.errors import AnsibleError
    from ansible.parsing.dataloader import DataLoader
    from ansible.parsing.vault import VaultLib

    password_files = [constants.DEFAULT_VAULT_PASSWORD_FILE] if constants.DEFAULT_VAULT_PASSWORD_FILE else []
    try:
        secrets = CLI.setup_vault_secrets(
            DataLoader(), constants.DEFAULT_VAULT_IDENTITY_LIST, password_files, ask_vault_pass=False, auto_prompt=False
        )
        vault = VaultLib(secrets)
        print(json.dumps([vault.decrypt(text).decode() for text in json.load(sys.stdin)]))
    except AnsibleError as exc:
        sys.exit(str(exc).splitlines()[0])


if __name__ == "__main__":
    main()

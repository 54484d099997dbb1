"""tests/infra's `docker exec` (conftest.exec_in): a runtime that failed to start the process is asked again; a
command that ran and failed is the check's failure, at once."""

from types import SimpleNamespace

import pytest

from tests.infra.conftest import RUNTIME_TRIES, exec_in

RUNC = "OCI runtime exec failed: exec failed: unable to start container process: read init-p: connection reset by peer"


class Host:
    """A testinfra host whose `docker exec` answers (rc, stdout) from ANSWERS in turn."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.commands = []

    def run(self, command):
        self.commands.append(command)
        rc, out = self.answers.pop(0)
        return SimpleNamespace(rc=rc, stdout=out, stderr="")


def test_a_runtime_that_did_not_start_the_process_is_asked_again(capsys):
    host = Host((126, RUNC), (0, '{"status": "ready"}\n'))
    assert exec_in(host, "replica-1", "python3 -c x", pause=0) == '{"status": "ready"}'
    assert host.commands == ["docker exec replica-1 python3 -c x"] * 2
    assert "the runtime did not start it" in capsys.readouterr().out


def test_it_gives_up_after_the_last_try_naming_the_runtimes_error():
    host = Host(*[(126, RUNC)] * RUNTIME_TRIES)
    with pytest.raises(AssertionError, match="exited 126: OCI runtime exec failed"):
        exec_in(host, "replica-1", "id -u", pause=0)
    assert len(host.commands) == RUNTIME_TRIES


@pytest.mark.parametrize("rc, out", [(1, "Traceback: ConnectionRefusedError"), (126, "permission denied")])
def test_a_command_that_failed_is_not_tried_again(rc, out):
    host = Host((rc, out), (0, "never asked"))
    with pytest.raises(AssertionError, match=f"exited {rc}"):
        exec_in(host, "replica-1", "python3 -c x", pause=0)
    assert len(host.commands) == 1

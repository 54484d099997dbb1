"""mnist.deploy's deploy lock: atomic with its owner, refused with who and since when, released only by its holder."""

import json
import threading

from ansible_collections.mnist.deploy.plugins.module_utils.lock import LOCK_DIR, acquire, describe, release

NOW = 1_764_669_600.0  # 2025-12-02T10:00:00Z


def test_the_lock_appears_with_its_owner_already_written(tmp_path):
    taken = acquire(str(tmp_path), "alice@ci", "0123456789ab", "run-1", now=NOW)
    assert taken["acquired"]
    owner = json.loads((tmp_path / LOCK_DIR / "owner.json").read_text())
    assert owner == {**taken["holder"], "since": "2025-12-02T10:00:00Z"}
    assert owner["by"] == "alice@ci" and owner["release"] == "0123456789ab" and owner["token"] == "run-1"
    assert [p.name for p in tmp_path.iterdir()] == [LOCK_DIR]  # no staging folder left behind


def test_a_second_deploy_is_refused_with_the_holder_and_its_age(tmp_path):
    acquire(str(tmp_path), "alice@ci", "0123456789ab", "run-1", now=NOW)
    refused = acquire(str(tmp_path), "bob@laptop", "ba9876543210", "run-2", now=NOW + 600)
    assert not refused["acquired"]
    assert describe(refused["holder"], NOW + 600) == (
        "alice@ci for release 0123456789ab since 2025-12-02T10:00:00Z (10 min ago)"
    )
    assert describe(refused["holder"], NOW + 3 * 3600 + 60).endswith("(3 h 1 min ago)")


def test_of_many_deploys_racing_exactly_one_takes_the_lock_and_none_sees_it_ownerless(tmp_path):
    outcomes = []
    start = threading.Barrier(8)

    def contend(index):
        start.wait()
        outcomes.append(acquire(str(tmp_path), f"deployer-{index}", "r", f"run-{index}"))

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [o for o in outcomes if o["acquired"]]
    assert len(winners) == 1
    assert all(o["holder"].get("token") == winners[0]["holder"]["token"] for o in outcomes)


def test_an_empty_lock_folder_from_an_older_deploy_is_not_taken_over(tmp_path):
    (tmp_path / LOCK_DIR).mkdir()  # what a `mkdir` lock looked like before its owner was written
    refused = acquire(str(tmp_path), "alice@ci", "r", "run-1")
    assert not refused["acquired"] and refused["holder"] == {}
    assert describe(refused["holder"], NOW) == "an unknown deploy (the lock has no readable owner)"


def test_only_the_holder_releases_the_lock_unless_forced(tmp_path):
    acquire(str(tmp_path), "alice@ci", "r", "run-1")
    assert not release(str(tmp_path), "run-2")["released"]
    assert (tmp_path / LOCK_DIR).is_dir()
    assert release(str(tmp_path), "run-1")["released"]
    assert not (tmp_path / LOCK_DIR).exists()
    acquire(str(tmp_path), "alice@ci", "r", "run-1")
    broken = release(str(tmp_path), "someone-else", force=True)
    assert broken["released"] and broken["holder"]["by"] == "alice@ci"


def test_releasing_a_lock_nobody_holds_does_nothing(tmp_path):
    assert release(str(tmp_path), "run-1") == {"released": False, "holder": {}}


def test_refusals_name_each_host_another_deploy_holds():
    from ansible_collections.mnist.deploy.plugins.filter.lock import lock_refusals

    hostvars = {
        "target-2": {"__mnist_stack_lock": {"refused": True, "holder_text": "alice@ci for release r (2 min ago)"}},
        "target-1": {"__mnist_stack_lock": {"refused": False, "acquired": True}},
        "target-3": {},  # never got that far (unreachable): not counted as held by another deploy
    }
    assert lock_refusals(hostvars, ["target-1", "target-2", "target-3"]) == [
        "target-2 is locked by another deploy: alice@ci for release r (2 min ago)"
    ]

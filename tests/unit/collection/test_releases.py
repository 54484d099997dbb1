"""mnist.deploy's release decisions, without a host: state read from a folder, history, rollback, prune, gate."""

import json
import os

import pytest
from ansible_collections.mnist.deploy.plugins.filter.releases import environment_rollback as rollback_filter
from ansible_collections.mnist.deploy.plugins.filter.releases import rollback_target as target_filter
from ansible_collections.mnist.deploy.plugins.module_utils import lock
from ansible_collections.mnist.deploy.plugins.module_utils.releases import (
    change_plan,
    environment_rollback,
    gate_threshold,
    gate_verdict,
    history_after,
    prune_plan,
    read_state,
    rollback_target,
    switch_failure,
)

A, B, C, D = "aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc", "dddddddddddd"
MODEL = "f" * 64


def make_release(home, release_id, mtime, images=(), proxy="p1", prometheus="m1"):
    path = home / "releases" / release_id
    (path / "proxy").mkdir(parents=True)
    (path / "prometheus").mkdir()
    (path / "proxy" / "fingerprint").write_text(proxy + "\n")
    (path / "prometheus" / "fingerprint").write_text(prometheus + "\n")
    record = {"id": release_id, "images": [{"service": "backend", "id": image} for image in images]}
    (path / "release.json").write_text(json.dumps(record))
    os.utime(path, (mtime, mtime))
    for service, name in (("proxy", proxy), ("prometheus", prometheus)):
        (home / service / name).mkdir(parents=True, exist_ok=True)
    return path


def point(home, link, release_id):
    target = home / link
    if target.is_symlink():
        target.unlink()
    target.symlink_to(home / "releases" / release_id)


@pytest.fixture
def home(tmp_path):
    make_release(tmp_path, A, 100, images=["sha-a", "sha-shared"], proxy="p1")
    make_release(tmp_path, B, 200, images=["sha-b", "sha-shared"], proxy="p2")
    make_release(tmp_path, C, 300, images=["sha-c", "sha-shared"], proxy="p2", prometheus="m2")
    point(tmp_path, "previous", B)
    point(tmp_path, "current", C)
    (tmp_path / "history.json").write_text(json.dumps([A, B, C]))
    return tmp_path


def test_the_state_is_read_in_one_pass_newest_first(home):
    state = read_state(str(home))
    assert [release["id"] for release in state["releases"]] == [C, B, A]
    assert (state["current"], state["previous"], state["history"]) == (C, B, [A, B, C])
    assert state["releases"][0]["mounts"] == {"proxy": "p2", "prometheus": "m2", "alertmanager": ""}
    assert state["mounted"] == {"proxy": ["p1", "p2"], "prometheus": ["m1", "m2"], "alertmanager": []}


def test_a_host_deployed_before_the_history_existed_starts_it_from_its_links(home):
    (home / "history.json").unlink()
    assert read_state(str(home))["history"] == [B, C]
    (home / "history.json").write_text("{not json")
    assert read_state(str(home))["history"] == [B, C]


def test_an_empty_host_has_no_releases_and_no_history(tmp_path):
    state = read_state(str(tmp_path))
    assert state["releases"] == [] and state["history"] == [] and state["current"] == ""
    assert rollback_target(state)["refusal"].startswith("the environment's history holds no release before")


def test_a_deploy_appends_its_release_once():
    assert history_after([], "deploy", A) == [A]
    assert history_after([A], "deploy", B) == [A, B]
    assert history_after([A, B], "deploy", B) == [A, B]  # a redeploy of the same release changes nothing
    assert history_after([A, B], "deploy", A) == [A, B, A]  # deploying an older release again is a new step
    with pytest.raises(ValueError, match="unknown event"):
        history_after([A], "revert", A)


def test_rollbacks_walk_back_through_history_and_never_flip(home):
    state = read_state(str(home))
    served = []
    for _ in range(3):
        decision = rollback_target(state)
        if decision["refusal"]:
            served.append(decision["refusal"])
            break
        state["history"] = history_after(state["history"], "rollback", decision["target"])
        state["current"] = decision["target"]
        served.append(decision["target"])
    assert served[:2] == [B, A]
    assert served[2] == f"the environment's history holds no release before {A} " + (
        "(each rollback goes one release further back); name one with --to"
    )


def test_a_rollback_to_a_named_release_cuts_history_after_it_or_appends_it(home):
    state = read_state(str(home))
    assert rollback_target(state, to=A) == {"target": A, "refusal": ""}
    assert history_after([A, B, C], "rollback", A) == [A]
    assert history_after([A], "rollback", B) == [A, B]  # kept on the host but not in history: one more step
    assert rollback_target(state, to=D)["refusal"] == f"keeps no release {D} (it keeps: {C}, {B}, {A})"


def test_a_rollback_refuses_a_release_no_longer_kept(home):
    state = read_state(str(home))
    state["history"] = [D, C]  # D was pruned since
    assert rollback_target(state)["refusal"].startswith(f"keeps no release {D}")


def test_a_host_whose_current_release_is_not_the_last_in_history_is_not_guessed_at(home):
    point(home, "current", A)  # someone moved the link by hand
    assert "roll back to a release by id" in rollback_target(read_state(str(home)))["refusal"]


def test_reverting_a_failed_deploy_returns_each_host_it_switched_to_what_it_ran(home):
    state = read_state(str(home))
    assert rollback_target(state, to=B, revert=True) == {"target": B, "refusal": ""}
    assert rollback_target(state, revert=True) == {"target": "", "refusal": ""}  # a host the deploy did not switch
    # Hosts that ran different releases before a failed deploy go back to each one's own.
    split = {"web-1": {"target": A, "refusal": ""}, "web-2": {"target": B, "refusal": ""}}
    assert environment_rollback(split, agree=False) == {"targets": {"web-1": A, "web-2": B}, "refusals": []}


def test_the_environment_rolls_back_only_when_every_host_agrees():
    agreed = environment_rollback(
        {
            "web-1": {"target": B, "refusal": ""},
            "web-2": {"target": B, "refusal": ""},
            "web-3": {"target": "", "refusal": ""},
        }
    )
    assert agreed == {"targets": {"web-1": B, "web-2": B, "web-3": ""}, "refusals": []}
    split = environment_rollback({"web-1": {"target": B, "refusal": ""}, "web-2": {"target": A, "refusal": ""}})
    assert split["refusals"] == [
        f"the hosts would end on different releases (web-1 → {B}, web-2 → {A}): roll back to one by id (--to)"
    ]
    refused = environment_rollback({"web-1": {"target": B, "refusal": ""}, "web-2": {"target": "", "refusal": "no"}})
    assert refused["refusals"] == ["web-2 no"]


def test_the_filters_decide_each_hosts_rollback_from_its_state_then_the_environments(home):
    choice = target_filter(read_state(str(home)))
    assert choice == {"target": B, "refusal": ""}  # the release before C in the history
    assert target_filter(read_state(str(home)), to=D)["refusal"].startswith(f"keeps no release {D}")
    hostvars = {"web-1": {"__mnist_stack_rollback_choice": choice}, "web-2": {"__mnist_stack_rollback_choice": choice}}
    assert rollback_filter(hostvars, ["web-1", "web-2"]) == {"targets": {"web-1": B, "web-2": B}, "refusals": []}


def test_pruning_keeps_the_newest_the_serving_and_the_previous_release(home):
    state = read_state(str(home))
    plan = prune_plan(state, keep=2, release=C, active=B)
    assert plan["releases"] == [str(home / "releases" / A)]
    assert plan["images"] == ["sha-a"]  # sha-shared is still used by B and C
    assert plan["mounted"] == [str(home / "proxy" / "p1")]  # B still mounts Prometheus's m1
    assert plan["kept"] == [C, B]
    # A rollback to A with C active keeps both of them, whatever their age: B goes.
    assert prune_plan(state, keep=2, release=A, active=C)["releases"] == [str(home / "releases" / B)]
    assert prune_plan(state, keep=3, release=C, active=B) == {
        "releases": [],
        "images": [],
        "mounted": [],
        "kept": [C, B, A],
    }
    with pytest.raises(ValueError, match="keep >= 2"):
        prune_plan(state, keep=1, release=C, active=B)


def test_a_first_deploy_keeps_as_many_older_releases_as_it_may(home):
    state = read_state(str(home))
    assert prune_plan(state, keep=2, release=C, active="")["releases"] == [str(home / "releases" / A)]
    assert prune_plan(state, keep=2, release=C, active=C)["releases"] == [str(home / "releases" / A)]


GOOD = {"ready": True, "version": MODEL, "accuracy": 0.97, "drawn_accuracy": 0.95}
THRESHOLDS = {"raw": 0.96, "drawn": 0.93}  # what the model's own record allows (mnist_deploy/gate.py)


def test_the_gate_passes_ready_replicas_serving_the_model_as_its_record_says():
    assert gate_verdict([GOOD, GOOD], running=2, expected=2, model=MODEL, thresholds=THRESHOLDS, floor=0.9) == ""


@pytest.mark.parametrize(
    ("answers", "running", "expected", "says"),
    [
        ([GOOD], 2, 1, "2 running backend replicas (expected 1)"),
        ([], 1, 1, "no replica answered"),
        ([{**GOOD, "ready": False}], 1, 1, "1 not ready"),
        ([{**GOOD, "version": "e" * 64}], 1, 1, f"serving model {'e' * 12}, expected {'f' * 12}"),
        ([GOOD, {**GOOD, "accuracy": 0.95}], 2, 2, "raw digits 95% < 96.0%"),
        # Raw digits right, drawn ones wrong: what a broken preprocessing in the image looks like.
        ([GOOD, {**GOOD, "drawn_accuracy": 0.5}], 2, 2, "drawn digits 50% < 93.0%"),
    ],
)
def test_the_gate_says_why_it_fails(answers, running, expected, says):
    verdict = gate_verdict(answers, running=running, expected=expected, model=MODEL, thresholds=THRESHOLDS, floor=0.9)
    assert verdict.startswith("gate failed: ") and says in verdict


def test_the_gate_holds_a_release_without_its_models_record_to_the_floor_on_raw_digits_alone():
    poor_drawing = {**GOOD, "accuracy": 0.91, "drawn_accuracy": 0.2}
    assert gate_verdict([poor_drawing], running=1, expected=1, model=MODEL, thresholds={}, floor=0.9) == ""
    # A model whose record promises little (one that learnt nothing) is still held to the floor.
    verdict = gate_verdict([{**GOOD, "accuracy": 0.1}], 1, 1, MODEL, thresholds={"raw": 0.05}, floor=0.9)
    assert "raw digits 10% < 90.0%" in verdict


@pytest.mark.parametrize(
    ("active", "restore_failure", "then"),
    [
        (A, None, f"Rolled back to release {A}, which serves again."),
        ("", None, "There was no earlier release: the stack is stopped."),
        (B, None, "It served before and is left as it is."),  # a redeploy of the release serving
        (
            A,
            "engine gone",
            "Putting back what served failed too (engine gone): what runs there is not known; "
            "`invoke verify --env=staging` says.",
        ),
    ],
)
def test_a_failed_switch_says_why_and_what_serves_now(active, restore_failure, then):
    said = switch_failure(B, "web-1", "gate failed: 1 not ready", active, restore_failure, "staging")
    assert said == f"release {B} failed on web-1: gate failed: 1 not ready. {then}"


def test_a_gate_threshold_allows_for_chance_on_few_digits_and_no_more():
    # The default model: 99.32 % of MNIST's 10,000 test digits; 100 raw gate digits.
    assert gate_threshold(0.9932, 100, 10_000) == pytest.approx(0.9684, abs=1e-4)
    # 98.75 % on 4 conditions x 500 suite digits; 40 drawn gate digits: 2 mistakes pass, 3 do not.
    drawn = gate_threshold(0.9875, 40, 2_000)
    assert 38 / 40 >= drawn > 37 / 40
    # Fewer reference digits, a weaker model: more room, never below 0.
    assert gate_threshold(0.85, 40, 200) < gate_threshold(0.85, 40, 2_000) < 0.85
    assert gate_threshold(1.0, 40, 2_000) == 1.0 and gate_threshold(0.0, 40, 2_000) == 0.0


def test_the_run_holding_the_lock_may_take_it_again_and_no_other(tmp_path):
    assert lock.acquire(str(tmp_path), "alice@ci", A, "run-1")["acquired"]
    assert lock.acquire(str(tmp_path), "alice@ci", A, "run-1")["acquired"]
    assert not lock.acquire(str(tmp_path), "bob@ci", B, "run-2")["acquired"]


def release_record(release_id, refs, files):
    images = [{"service": s, "ref": f"mnist-{s}:{tag}", "id": f"sha256:{s}-{tag}"} for s, tag in refs.items()]
    return {"id": release_id, "images": images, "files": files}


FILES_A = {"compose.yaml": "c1", "proxy/haproxy.cfg": "h1", "prometheus/prometheus.yml": "p1"}


def test_a_plan_for_the_release_a_host_serves_changes_nothing():
    a = release_record(A, {"backend": "a", "proxy": "r1"}, FILES_A)
    present = [{"Id": image["id"]} for image in a["images"]]  # records without identities: matched by id
    assert change_plan(a, a, FILES_A, present) == {
        "first": False,
        "same_release": True,
        "ship": [],
        "files": [],
        "replace": [],
    }


def test_a_plan_for_a_new_model_ships_and_replaces_only_what_differs():
    a = release_record(A, {"backend": "a", "proxy": "r1"}, FILES_A)
    b = release_record(B, {"backend": "b", "proxy": "r1"}, {**FILES_A, "compose.yaml": "c2"})
    plan = change_plan(a, b, b["files"], [{"Id": image["id"]} for image in a["images"]])
    assert [image["service"] for image in plan["ship"]] == ["backend"]
    assert (plan["files"], plan["replace"], plan["first"]) == (["compose.yaml"], ["backend"], False)
    # A new proxy config replaces the proxy although its image is the same; a file gone counts too.
    c_files = {"compose.yaml": "c2", "proxy/haproxy.cfg": "h2"}
    plan = change_plan(a, release_record(C, {"backend": "a", "proxy": "r1"}, c_files), c_files, [])
    assert plan["files"] == ["compose.yaml", "prometheus/prometheus.yml", "proxy/haproxy.cfg"]
    assert plan["replace"] == ["prometheus", "proxy"]


def test_a_plan_for_a_first_deploy_ships_and_starts_everything():
    a = release_record(A, {"backend": "a", "proxy": "r1"}, FILES_A)
    plan = change_plan(None, a, FILES_A, [])
    assert plan["first"] and not plan["same_release"]
    assert len(plan["ship"]) == 2 and plan["files"] == sorted(FILES_A)
    assert plan["replace"] == ["backend", "prometheus", "proxy"]


def test_files_are_written_only_when_they_differ_and_a_record_only_once(tmp_path):
    import stat

    from ansible_collections.mnist.deploy.plugins.module_utils.files import install, read_tree

    rendered = tmp_path / "rendered"
    (rendered / "proxy").mkdir(parents=True)
    (rendered / "compose.yaml").write_text("services: {}\n")
    (rendered / "proxy" / "haproxy.cfg").write_text("global\n")
    files = read_tree(str(rendered))
    assert [entry["path"] for entry in files] == ["compose.yaml", "proxy/haproxy.cfg"]
    owner = {"owner": str(os.getuid()), "group": str(os.getgid())}
    record = {"path": "release.json", "content": {"id": A}, "create_only": True, **owner}
    dest = tmp_path / "release"
    everything = [{**entry, **owner} for entry in files] + [record]
    assert install(str(dest), everything) == ["compose.yaml", "proxy/haproxy.cfg", "release.json"]
    assert install(str(dest), everything) == []  # a redeploy writes nothing
    assert json.loads((dest / "release.json").read_text()) == {"id": A}
    assert install(str(dest), [{**record, "content": {"id": B}}]) == []  # a record is never replaced
    secret = {"path": "tls.pem", "content": "key\n", "mode": "0400", **owner}
    assert install(str(dest), [secret], check=True) == ["tls.pem"] and not (dest / "tls.pem").exists()
    assert install(str(dest), [secret]) == ["tls.pem"]
    assert stat.S_IMODE((dest / "tls.pem").stat().st_mode) == 0o400
    assert install(str(dest), [{**secret, "mode": "0440"}]) == ["tls.pem"]  # a mode that differs is mended
    (dest / "compose.yaml").write_text("edited by hand\n")
    assert install(str(dest), everything) == ["compose.yaml"]
    with pytest.raises(ValueError, match="outside"):
        install(str(dest), [{**secret, "path": "../escape"}])
    assert sorted(p.name for p in dest.iterdir()) == ["compose.yaml", "proxy", "release.json", "tls.pem"]


def test_recording_moves_the_links_logs_and_extends_history_once(home):
    from ansible_collections.mnist.deploy.plugins.module_utils.releases import record

    make_release(home, D, 400, images=["sha-d"], proxy="p2", prometheus="m2")
    assert record(str(home), D, C, "deploy", '{"event": "deploy"}', check=True) == {
        "changed": True,
        "history": [A, B, C, D],
    }
    assert read_state(str(home))["current"] == C and not (home / "audit.log").exists()  # check mode wrote nothing
    assert record(str(home), D, C, "deploy", '{"event": "deploy"}')["changed"]
    state = read_state(str(home))
    assert (state["current"], state["previous"], state["history"]) == (D, C, [A, B, C, D])
    assert record(str(home), D, D, "deploy", '{"event": "deploy (already active)"}') == {
        "changed": False,
        "history": [A, B, C, D],
    }
    assert record(str(home), D, D, "failed", '{"event": "failed"}')["changed"] is False
    assert (home / "audit.log").read_text().splitlines() == [
        '{"event": "deploy"}',
        '{"event": "deploy (already active)"}',
        '{"event": "failed"}',
    ]
    record(str(home), C, D, "rollback", "{}")
    assert read_state(str(home))["history"] == [A, B, C]


def test_a_host_without_history_starts_it_from_its_links_before_they_move(home):
    from ansible_collections.mnist.deploy.plugins.module_utils.releases import record

    (home / "history.json").unlink()  # deployed before the history existed: previous B, current C
    assert record(str(home), B, C, "rollback", "{}") == {"changed": True, "history": [B]}
    # Not [C, B]: a second rollback must not flip back to C.
    assert rollback_target(read_state(str(home)))["refusal"].startswith("the environment's history holds no release")


def test_the_audit_line_is_one_json_object():
    from ansible_collections.mnist.deploy.plugins.module_utils.releases import audit_line

    line = audit_line("2026-12-02T10:00:00Z", "deploy", A, "alice@ci", "web-1")
    assert json.loads(line) == {
        "time": "2026-12-02T10:00:00Z",
        "event": "deploy",
        "release": A,
        "by": "alice@ci",
        "host": "web-1",
    }
    forced = audit_line("2026-12-02T10:00:00Z", "deploy", A, "alice@ci", "web-1", "hotfix, staging is down")
    assert json.loads(forced)["note"] == "hotfix, staging is down"


def test_running_containers_are_grouped_by_their_compose_service_oldest_first():
    from ansible_collections.mnist.deploy.plugins.module_utils.releases import containers_by_service

    def running(cid, service, created):
        return {"Id": cid, "Created": created, "Labels": {"com.docker.compose.service": service}}

    containers = [running("b2", "backend", 20), running("p1", "proxy", 5), running("b1", "backend", 10)]
    containers.append({"Id": "x", "Created": 1, "Labels": {}})  # started by hand, not by Compose
    assert containers_by_service(containers) == {"proxy": ["p1"], "backend": ["b1", "b2"]}


def test_the_old_replicas_addresses_come_from_the_container_list_or_the_roll_stops():
    from ansible_collections.mnist.deploy.plugins.module_utils.releases import container_addresses

    def running(cid, address):
        return {"Id": cid, "NetworkSettings": {"Networks": {"mnist-staging_internal": {"IPAddress": address}}}}

    containers = [running("b1", "172.20.0.5"), running("b2", "172.20.0.6"), running("b3", "")]
    assert container_addresses(containers, ["b2", "b1"], "mnist-staging_internal") == ["172.20.0.6", "172.20.0.5"]
    with pytest.raises(ValueError, match="container b3 has no address on mnist-staging_internal"):
        container_addresses(containers, ["b1", "b3"], "mnist-staging_internal")
    with pytest.raises(ValueError, match="container b1 has no address on other"):
        container_addresses(containers, ["b1"], "other")


def test_compose_replaces_a_service_whose_running_container_was_made_from_another_config():
    from ansible_collections.mnist.deploy.plugins.module_utils.releases import replaced_by_compose

    running = [
        {"Id": "p1", "Labels": {"com.docker.compose.service": "prometheus", "com.docker.compose.config-hash": "aaa"}},
        {"Id": "b1", "Labels": {"com.docker.compose.service": "backend", "com.docker.compose.config-hash": "bbb"}},
    ]
    assert not replaced_by_compose(running, "prometheus aaa\n")
    assert replaced_by_compose(running, "prometheus ccc\n")
    assert replaced_by_compose(running[1:], "prometheus aaa\n")  # none running: compose makes one


def test_prometheus_is_waited_for_until_it_scrapes_exactly_the_new_replicas():
    from ansible_collections.mnist.deploy.plugins.module_utils.releases import replica_targets, scraped_targets

    def replica(cid, address):
        return {"Id": cid, "NetworkSettings": {"Networks": {"mnist-sandbox_internal": {"IPAddress": address}}}}

    new = [replica("n2", "172.20.0.9"), replica("n1", "172.20.0.8")]
    assert replica_targets(new, "mnist-sandbox_internal", 8000) == ["172.20.0.8:8000", "172.20.0.9:8000"]
    samples = [{"metric": {"instance": target}, "value": [0, "1"]} for target in ("172.20.0.9:8000", "172.20.0.8:8000")]
    assert scraped_targets({"rc": 0, "stdout": json.dumps(samples)}) == ["172.20.0.8:8000", "172.20.0.9:8000"]
    assert scraped_targets({"rc": 1, "stdout": "", "stderr": "connection refused"}) == []
    with pytest.raises(ValueError, match="has no address"):
        replica_targets([{"Id": "n3", "NetworkSettings": {"Networks": {}}}], "mnist-sandbox_internal", 8000)

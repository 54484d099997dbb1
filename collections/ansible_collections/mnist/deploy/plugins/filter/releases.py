"""Filters over a host's releases: thin faces over module_utils/releases.py."""

from __future__ import annotations

import os

from ansible_collections.mnist.deploy.plugins.module_utils import (
    alerting,
    archive,
    files,
    identity,
    releases,
    rules,
    services,
)


def history_after(history, event, release):
    """The environment's history once RELEASE serves after EVENT (deploy or rollback)."""
    return releases.history_after(history, event, release)


def rollback_target(state, to="", revert=False):
    """What a rollback returns this host to ({'target', 'refusal'}), from its STATE (host_preflight's)."""
    return releases.rollback_target(dict(state), str(to or ""), bool(revert))


def environment_rollback(hostvars, hosts, agree=True, fact="__mnist_stack_rollback_choice"):
    """The environment's rollback ({'targets', 'refusals'}) from each of HOSTS' rollback_target decision (FACT)."""
    return releases.environment_rollback({host: hostvars[host][fact] for host in hosts}, bool(agree))


def gate_verdict(answers, running, expected, model, thresholds, floor):
    """Why the gate fails, '' when it passes."""
    return releases.gate_verdict(
        list(answers), int(running), int(expected), str(model), dict(thresholds or {}), float(floor)
    )


def switch_failure(release, host, why, active, restore_failure, env):
    """What a host's failed switch says: why, and what serves now."""
    restore = None if restore_failure is None else str(restore_failure)
    return releases.switch_failure(str(release), str(host), str(why), str(active or ""), restore, str(env))


def change_plan(current, release, files, host_images, layers=False):
    """What deploying RELEASE (FILES for this host) changes on a host serving CURRENT (its record, {} if none) whose
    engine holds HOST_IMAGES (docker_image_info's images). With LAYERS, each image to ship also says which of its
    layers the host holds (ship_plan)."""
    current = dict(current) if isinstance(current, dict) and current else None
    host_images = list(host_images)
    plan = releases.change_plan(current, release, files, host_images)
    if layers:
        plan["ship"] = ship_plan(release["images"], host_images, compress=False)
    return plan


def rendered_files(directory):
    """Every file Invoke rendered under DIRECTORY (on the controller), as install_files takes them."""
    return files.read_tree(str(directory))


def release_files(render_dir, host, release, password_variables=None, pem=None, alerting_variables=None):
    """Every file HOST needs for RELEASE (rendered under RENDER_DIR/HOST), relative to the stack's home; with
    PASSWORD_VARIABLES (the host's values of services.PASSWORD_VARIABLES), the enabled services' passwords; with
    ALERTING_VARIABLES (the host's mnist_stack_alert_* values), Alertmanager's secrets."""
    return files.release_files(
        os.path.join(str(render_dir), str(host)),
        dict(release),
        str(host),
        services.password_files(dict(password_variables or {})),
        str(pem or ""),
        alerting.secret_files(dict(alerting_variables)) if alerting_variables else {},
    )


def images_run(images, switches):
    """The release's IMAGES of the services the host runs (SWITCHES: its mnist_stack_*_enabled values)."""
    return services.images_run(list(images), dict(switches))


def images_to_tag(images, host_images):
    """The release's IMAGES the host holds (HOST_IMAGES: docker_image_info's) but not under the compose file's name,
    each with `local`, the id its engine knows it by (module_utils/identity.py: ids differ between image stores)."""
    return identity.to_tag(list(images), list(host_images))


def image_identity(inspect):
    """The identity of the image INSPECT (docker_image_info's entry) describes, the same on both image stores."""
    return identity.identity(dict(inspect))


def platform_problem(images, host_info):
    """Why a host whose engine is HOST_INFO (docker_host_info's) cannot run the release's IMAGES, '' if it can."""
    return identity.platform_problem(list(images), dict(host_info))


def images_missing(images, host_images):
    """The release's IMAGES a host holding HOST_IMAGES (docker_image_info's) lacks, on either image store."""
    return identity.missing(list(images), list(host_images))


def local_image_ids(identities, host_images):
    """The ids the host's engine gives the images IDENTITIES name (a prune plan's), those it holds."""
    return identity.local_ids(list(identities), list(host_images))


def ship_plan(images, host_images, compress=True, cache="", archives=""):
    """What goes to a host holding HOST_IMAGES (docker_image_info's) for the release's IMAGES it lacks: each with
    the layers left out, its archive's name and where its files are on the controller (CACHE; ARCHIVES, a release
    bundle's images, when there is one)."""
    missing = identity.missing(list(images), list(host_images))
    return archive.ship_plan(missing, list(host_images), bool(compress), str(cache), str(archives))


def load_failed(result, entry):
    """Whether a load of ENTRY's archive that returned RESULT fails the deploy (not a cut one: its whole follows)."""
    return archive.load_failed(dict(result), dict(entry))


def to_ship_whole(results):
    """The shipment's entries whose cut archive did not load (the load loop's RESULTS), naming their whole archive."""
    return archive.to_ship_whole(list(results))


def made_on_controller(plan, cache):
    """The files a shipment PLAN made in the controller's CACHE, to remove once loaded."""
    return archive.made_on_controller(list(plan), str(cache))


def containers_by_service(containers):
    """{service: [container ids]} from docker_host_info's verbose containers."""
    return releases.containers_by_service(list(containers))


def container_addresses(containers, ids, network):
    """The addresses on NETWORK of the containers IDS (docker_host_info's verbose containers); ValueError, which
    fails the task with its message, for one that has none. (No `ansible` import here: importing it patches
    sys.intern, which breaks torch in the unit tests that import these filters.)"""
    return releases.container_addresses(list(containers), list(ids), str(network))


def replaced_by_compose(containers, config_hash_line):
    """Whether `docker compose up` replaces the running container of the service CONFIG_HASH_LINE names."""
    return releases.replaced_by_compose(list(containers), str(config_hash_line))


def replica_targets(containers, network, port):
    """The scrape targets (address:PORT on NETWORK, sorted) of docker_host_info's verbose CONTAINERS."""
    return releases.replica_targets(list(containers), str(network), int(port))


def scraped_targets(query):
    """The instances a registered `promtool query instant -o json` run returned, sorted; [] when it failed."""
    return releases.scraped_targets(dict(query or {}))


def stack_problems(variables):
    """The problems the stack's rules find in one host's variables (module_utils/rules.py), [] when none."""
    return rules.problems(dict(variables))


class FilterModule:
    def filters(self):
        return {
            "history_after": history_after,
            "rollback_target": rollback_target,
            "environment_rollback": environment_rollback,
            "gate_verdict": gate_verdict,
            "switch_failure": switch_failure,
            "change_plan": change_plan,
            "rendered_files": rendered_files,
            "release_files": release_files,
            "images_run": images_run,
            "images_to_tag": images_to_tag,
            "image_identity": image_identity,
            "images_missing": images_missing,
            "platform_problem": platform_problem,
            "local_image_ids": local_image_ids,
            "ship_plan": ship_plan,
            "made_on_controller": made_on_controller,
            "load_failed": load_failed,
            "to_ship_whole": to_ship_whole,
            "containers_by_service": containers_by_service,
            "container_addresses": container_addresses,
            "replaced_by_compose": replaced_by_compose,
            "replica_targets": replica_targets,
            "scraped_targets": scraped_targets,
            "stack_problems": stack_problems,
        }

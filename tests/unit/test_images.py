"""Where images are built from on a controller that is not Debian 12 (mnist_deploy/images.py)."""

from __future__ import annotations

import pytest

from mnist_deploy import images


def test_a_mirror_given_in_the_environment_wins_over_the_machines_apt_configuration(monkeypatch):
    monkeypatch.setenv(images.MIRROR_ENV, "http://mirror.example/debian")
    assert images.apt_mirror("trixie") == "http://mirror.example/debian"


def test_the_debootstrap_is_given_the_keyring_named_in_the_environment(monkeypatch, tmp_path):
    commands = []
    monkeypatch.setenv(images.MIRROR_ENV, "http://mirror.example/debian")
    monkeypatch.setenv(images.KEYRING_ENV, "/usr/share/keyrings/debian-archive-keyring.gpg")
    monkeypatch.setattr(images, "image_exists", lambda tag: False)
    monkeypatch.setattr(images.provision, "require", lambda *args: None)

    def fake_run(command, *args, **kwargs):
        commands.append([str(part) for part in command])
        if command[0] == "debootstrap":
            raise images.DeployError("stop after debootstrap")

    monkeypatch.setattr(images, "run_logged", fake_run)
    with pytest.raises(images.DeployError, match="stop after debootstrap"):
        images.build_base(suite="bookworm")
    (debootstrap,) = commands
    assert "--keyring=/usr/share/keyrings/debian-archive-keyring.gpg" in debootstrap
    assert debootstrap[-3] == "bookworm" and debootstrap[-1] == "http://mirror.example/debian"


def test_a_given_base_image_is_used_as_it_is_and_pulled_only_when_absent(monkeypatch):
    pulled = []
    monkeypatch.setenv(images.BASE_IMAGE_ENV, "registry.example/debian:12")
    monkeypatch.setattr(images, "build_base", lambda **kw: pytest.fail("the debootstrap base must not be built"))
    monkeypatch.setattr(images, "run", lambda command, **kw: pulled.append(command))
    monkeypatch.setattr(images, "image_exists", lambda tag: True)
    assert images.base_image() == "registry.example/debian:12" and pulled == []
    monkeypatch.setattr(images, "image_exists", lambda tag: False)
    assert images.base_image() == "registry.example/debian:12"
    assert pulled == [["docker", "pull", "registry.example/debian:12"]]


def test_without_a_mirror_anywhere_the_error_says_what_to_set(monkeypatch):
    monkeypatch.delenv(images.MIRROR_ENV, raising=False)
    monkeypatch.setattr(images, "_mirror_for", lambda suite: "")
    with pytest.raises(images.DeployError, match="MNIST_DEBIAN_MIRROR .*MNIST_BASE_IMAGE"):
        images.apt_mirror()

#!/bin/sh
# Fresh host keys per container, then sshd in the foreground. On a target ("engine" argument) the Docker engine is
# started first, standing in for the init system a real server has (Debian's init script needs a ulimit that
# containers are not granted here).
set -eu
ssh-keygen -A >/dev/null
mkdir -p /run/sshd  # /run is a fresh tmpfs on a target, as on a server after a reboot
if [ "${1:-}" = engine ]; then
    dockerd >/var/log/dockerd.log 2>&1 &
fi
exec /usr/sbin/sshd -D -e

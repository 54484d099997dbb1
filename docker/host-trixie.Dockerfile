# A sandbox "server" of the modern flavour: Debian 13 (trixie) booting systemd as PID 1, with Debian's docker.io 26
# on the containerd image store and Compose v2 from Debian's docker-compose package, installed as a team's server
# has its engine before the toolkit ever sees it. Beyond that engine, only what a minimal server has (python3, sudo,
# openssh-server) and python3-requests: the targets sit on a network with no way to a mirror, so what bootstrap
# would install there is preinstalled. No python3-apt: bootstrap must work without it.
# A test server by design (sandbox only, never deployed): it exposes SSH, gives the deploy user sudo, runs systemd
# as root and has nothing to health-check but sshd.
# checkov:skip=CKV_DOCKER_1:a sandbox server is reached over SSH (port 22) through the bastion
# checkov:skip=CKV2_DOCKER_1:sudo is what the deploy user gets on a real server; the playbooks use become
# checkov:skip=CKV_DOCKER_3:systemd, sshd and the nested Docker engine run as root, as on a real server
# checkov:skip=CKV_DOCKER_2:the sandbox waits for SSH through the bastion instead of a health check
ARG BASE_IMAGE=mnist-base:trixie
FROM ${BASE_IMAGE}
COPY build/ca-certificates/ /usr/local/share/ca-certificates/
RUN apt-get update -q \
    && apt-get install -y -q --no-install-recommends systemd systemd-sysv dbus openssh-server sudo python3 \
        python3-requests docker.io docker-cli docker-compose iproute2 iptables procps ca-certificates \
    && update-ca-certificates \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /usr/share/doc/* /usr/share/man/* \
    && useradd --create-home --shell /bin/bash deploy \
    && echo 'deploy ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/deploy && chmod 0440 /etc/sudoers.d/deploy \
    && mkdir -p /etc/ssh/authorized_keys \
    && printf '%s\n' 'AuthorizedKeysFile /etc/ssh/authorized_keys/%u' 'PasswordAuthentication no' \
        'KbdInteractiveAuthentication no' 'PermitRootLogin no' > /etc/ssh/sshd_config.d/sandbox.conf \
    && rm -f /etc/ssh/ssh_host_*
COPY docker/sandbox/ /etc/
# What a container cannot do (consoles, kernel and hardware services) is masked; host keys are made at first boot.
RUN systemctl enable sandbox-host-keys.service ssh.service docker.service \
    && systemctl mask getty@tty1.service console-getty.service systemd-udevd.service systemd-modules-load.service \
        sys-kernel-config.mount sys-kernel-debug.mount systemd-firstboot.service
EXPOSE 22
STOPSIGNAL SIGRTMIN+3
CMD ["/sbin/init"]

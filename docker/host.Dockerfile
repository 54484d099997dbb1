# A sandbox "server": Debian with sshd, sudo, Python and python3-apt, as a cloud image gives you; the bootstrap playbook does
# the rest. The targets sit on a network with no way out, so the Debian packages the docker_host role would
# install (docker.io, python3-requests) are preinstalled here; the role finds them and moves on.
# A test server by design (sandbox only, never deployed): it exposes SSH, gives the deploy user sudo, runs sshd as
# root and has nothing to health-check but sshd.
# checkov:skip=CKV_DOCKER_1:a sandbox server is reached over SSH (port 22) through the bastion
# checkov:skip=CKV2_DOCKER_1:sudo is what the deploy user gets on a real server; the playbooks use become
# checkov:skip=CKV_DOCKER_3:sshd and the nested Docker engine run as root, as on a real server
# checkov:skip=CKV_DOCKER_2:the sandbox waits for SSH through the bastion instead of a health check
ARG BASE_IMAGE=mnist-base:bookworm
FROM ${BASE_IMAGE}
COPY build/ca-certificates/ /usr/local/share/ca-certificates/
RUN apt-get update -q \
    && apt-get install -y -q --no-install-recommends openssh-server sudo python3 python3-apt python3-requests docker.io \
        iproute2 procps ca-certificates \
    && update-ca-certificates \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /usr/share/doc/* /usr/share/man/* \
    && useradd --create-home --shell /bin/bash deploy \
    && echo 'deploy ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/deploy && chmod 0440 /etc/sudoers.d/deploy \
    && mkdir -p /run/sshd /etc/ssh/authorized_keys \
    && printf '%s\n' 'AuthorizedKeysFile /etc/ssh/authorized_keys/%u' 'PasswordAuthentication no' \
        'KbdInteractiveAuthentication no' 'PermitRootLogin no' > /etc/ssh/sshd_config.d/sandbox.conf \
    && rm -f /etc/ssh/ssh_host_*
COPY docker/host-entrypoint.sh /usr/local/sbin/host-entrypoint
EXPOSE 22
ENTRYPOINT ["/usr/local/sbin/host-entrypoint"]

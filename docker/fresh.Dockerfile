# A fresh Debian 12 machine for the `fresh` test tier: the project's minimal base plus python3, git and make, nothing
# else. The tier runs `make up` in a clean clone on it: everything past these three must come from the project.
# checkov:skip=CKV_DOCKER_2:a stand-in machine, not a service: the test itself checks what comes up on it
# checkov:skip=CKV_DOCKER_3:a machine's root user, as `make up` is run as root on a fresh server
ARG BASE_IMAGE=mnist-base:bookworm
FROM ${BASE_IMAGE}
# The machine's own extra CA certificates, as a machine behind a TLS-intercepting proxy has them.
COPY build/ca-certificates/ /usr/local/share/ca-certificates/
RUN apt-get update -q && apt-get install -y -q --no-install-recommends python3 git make \
    && update-ca-certificates \
    && rm -rf /var/lib/apt/lists/*
CMD ["sleep", "infinity"]

# What the host serves and its drift from the last deploy's record, as metrics (module_utils/drift.py of the
# project's collection): Python from Debian, the standard library only. It reads the stack's folder (mounted
# read-only) and, with the host's process namespace, which containers run; no Docker socket.
ARG BASE_IMAGE=mnist-base:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update -q && apt-get install -y -q --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /usr/share/doc/* /usr/share/man/*
COPY collections/ansible_collections/mnist/deploy/plugins/module_utils/drift.py \
     collections/ansible_collections/mnist/deploy/plugins/module_utils/lock.py /usr/local/lib/mnist/
# The stack's folder is root's, mode 0750: the root group reads it (no capability comes with a group). What is
# secret in it is mode 0400 for its own service's uid.
USER 10092:0
EXPOSE 9101
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9101 && printf 'GET /metrics HTTP/1.0\\r\\n\\r\\n' >&3 && head -1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["python3", "-B", "/usr/local/lib/mnist/drift.py"]

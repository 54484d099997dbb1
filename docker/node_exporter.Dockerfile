# Host metrics from Debian's prometheus-node-exporter. The container sees the host's processes (pid: host) and its
# filesystem read-only under /host (compose.yaml); its network counters are the container's own.
ARG BASE_IMAGE=mnist-base:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update -q && apt-get install -y -q --no-install-recommends prometheus-node-exporter \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /usr/share/doc/* /usr/share/man/*
USER 10091:10091
EXPOSE 9100
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9100 && printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 && head -1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["prometheus-node-exporter", "--path.rootfs=/host"]

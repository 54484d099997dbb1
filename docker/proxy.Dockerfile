# The TLS-terminating proxy in front of the replicas: HAProxy from Debian's package. Its config and certificate are
# mounted, rendered per host (the certificate comes from ansible-vault, or the sandbox's own CA).
ARG BASE_IMAGE=mnist-base:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update -q && apt-get install -y -q --no-install-recommends haproxy \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /usr/share/doc/* /usr/share/man/*
COPY docker/proxy-ctl.sh /usr/local/bin/proxy-ctl
# A fixed uid, so the deploy can give the private key to this user alone (mode 0400) on the host.
USER 10080:10080
EXPOSE 8080 8443
# monitor-uri answers on the plain-HTTP port without touching the backends; bash's /dev/tcp needs no client package.
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /-/proxy-health HTTP/1.0\\r\\n\\r\\n' >&3 && head -1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["haproxy", "-W", "-db", "-f", "/etc/haproxy/haproxy.cfg"]

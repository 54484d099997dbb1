# Alertmanager from Debian's package (no registry needed); its config and receivers' secrets are mounted, rendered
# per host from the inventory (module_utils/alerting.py of the project's collection).
ARG BASE_IMAGE=mnist-base:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update -q && apt-get install -y -q --no-install-recommends prometheus-alertmanager \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /usr/share/doc/* /usr/share/man/* \
    && mkdir -p /alertmanager && chown 10093:10093 /alertmanager
# A fixed uid, so the deploy can give the receivers' secrets to this user alone (mode 0400) on the host.
USER 10093:10093
EXPOSE 9093
VOLUME ["/alertmanager"]
# bash's /dev/tcp needs no client package.
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9093 && printf 'GET /-/healthy HTTP/1.0\\r\\n\\r\\n' >&3 && head -1 <&3 | grep -q ' 200 '"]
# One Alertmanager per host, alone: no cluster gossip listener.
ENTRYPOINT ["prometheus-alertmanager", "--config.file=/etc/alertmanager/alertmanager.yml", \
    "--storage.path=/alertmanager", "--cluster.listen-address="]

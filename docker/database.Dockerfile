# PostgreSQL for the users' corrections, from Debian's package. Non-root, read-only root (compose): its data is the
# named volume database-data, its socket and temporary files in /tmp (a tmpfs). Initialised on first start with the
# password compose hands over as the secret database_password (docker/database-entrypoint.sh).
ARG BASE_IMAGE=mnist-base:bookworm
FROM ${BASE_IMAGE}
# No "main" cluster from the package's postinst: the entrypoint makes the one this image serves, in the volume.
# Left out once installed (the server links neither): LLVM and the bitcode for JIT, which the server runs without
# (jit=off), and the Perl modules of the package's cluster scripts: 370 MB -> 190 MB.
RUN mkdir -p /etc/postgresql-common/createcluster.d \
    && echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/no-main-cluster.conf \
    && apt-get update -q && apt-get install -y -q --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /usr/share/doc/* /usr/share/man/* /usr/share/locale/* \
        /usr/lib/x86_64-linux-gnu/libLLVM-* /usr/lib/aarch64-linux-gnu/libLLVM-* /usr/lib/postgresql/15/lib/llvmjit* \
        /usr/lib/postgresql/15/lib/bitcode /usr/share/perl /usr/lib/x86_64-linux-gnu/perl /usr/lib/aarch64-linux-gnu/perl \
    && install -d -o postgres -g postgres -m 0700 /var/lib/postgresql/data
COPY docker/database-entrypoint.sh /usr/local/bin/database-entrypoint
ENV PGDATA=/var/lib/postgresql/data
USER postgres
# The port is MNIST_PORT (compose sets it from mnist_stack_database_port); 5432 without it.
EXPOSE 5432
HEALTHCHECK --interval=2s --timeout=3s --start-period=30s --retries=5 \
    CMD ["sh", "-c", "exec /usr/lib/postgresql/15/bin/pg_isready -q -h 127.0.0.1 -p \"${MNIST_PORT:-5432}\" -U mnist -d feedback"]
ENTRYPOINT ["/usr/local/bin/database-entrypoint"]

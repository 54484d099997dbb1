#!/bin/sh
# PostgreSQL for the corrections (docker/database.Dockerfile). On an empty volume: a cluster owned by the role
# `mnist` with the secret's password (scram-sha-256, from every address: the stack's internal network is the only
# one it is on) and the database `feedback`. Then the server, in the foreground, logging to stderr.
set -eu
BIN=/usr/lib/postgresql/15/bin
PASSWORD_FILE=/run/secrets/database_password
PORT="${MNIST_PORT:-5432}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ ! -s "$PASSWORD_FILE" ]; then
        echo "database: no password in $PASSWORD_FILE (mnist_stack_database_password): refusing to initialise" >&2
        exit 2
    fi
    # The password file ends with a newline, which initdb would keep as part of the password.
    tr -d '\n' < "$PASSWORD_FILE" > /tmp/password
    "$BIN/initdb" --pgdata="$PGDATA" --username=mnist --pwfile=/tmp/password --auth=scram-sha-256 \
        --encoding=UTF8 --locale=C.UTF-8 > /dev/null
    rm -f /tmp/password
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    echo "CREATE DATABASE feedback" | "$BIN/postgres" --single -D "$PGDATA" -c unix_socket_directories=/tmp \
        postgres > /dev/null
    echo "database: initialised $PGDATA" >&2
fi

exec "$BIN/postgres" -D "$PGDATA" -c listen_addresses='*' -c port="$PORT" -c unix_socket_directories=/tmp \
    -c logging_collector=off -c log_destination=stderr -c jit=off

#!/bin/bash
# Rollouts' handle on the proxy, through HAProxy's runtime API (127.0.0.1:9999 inside the proxy container only).
#   proxy-ctl drain IP [SECONDS]  take the backend replica at IP out of rotation (maint), wait until its requests
#                                 are done; prints the server slot it was in (nothing if no slot has that address)
#   proxy-ctl ready SLOT          give the slot back to DNS discovery, once its container is gone
#   proxy-ctl reset               give back every slot left in forced maintenance (a rollout that died mid-drain);
#                                 prints the slots it gave back
#   proxy-ctl show                the backend slots as HAProxy's runtime API lists them (`show servers state api`)
set -euo pipefail

api() {
    exec 3<>/dev/tcp/127.0.0.1/9999
    printf '%s\n' "$1" >&3
    cat <&3
    exec 3<&-
}

case "${1:-}" in
drain)
    ip=$2
    seconds=${3:-20}
    # show servers state: be_id be_name srv_id srv_name srv_addr ...
    slot=$(api "show servers state api" | awk -v ip="$ip" '$2 == "api" && $5 == ip { print $4 }')
    [ -n "$slot" ] || exit 0
    api "set server api/$slot state maint" >/dev/null
    for ((i = 0; i < seconds * 10; i++)); do
        # show stat is CSV: pxname,svname,qcur,qmax,scur,...
        current=$(api "show stat" | awk -F, -v slot="$slot" '$1 == "api" && $2 == slot { print $5 }')
        if [ "${current:-0}" = 0 ]; then
            echo "$slot"
            exit 0
        fi
        sleep 0.1
    done
    echo "api/$slot ($ip) still had $current requests after ${seconds}s" >&2
    echo "$slot"
    ;;
ready)
    api "set server api/$2 state ready" >/dev/null
    ;;
show)
    api "show servers state api"
    ;;
reset)
    # show servers state: ... srv_name ($4) srv_addr srv_op_state srv_admin_state ($7); bit 0x01 is forced maint.
    for slot in $(api "show servers state api" | awk '$2 == "api" && $7 % 2 == 1 { print $4 }'); do
        api "set server api/$slot state ready" >/dev/null
        echo "$slot"
    done
    ;;
*)
    echo "usage: proxy-ctl drain IP [SECONDS] | proxy-ctl ready SLOT | proxy-ctl reset | proxy-ctl show" >&2
    exit 2
    ;;
esac

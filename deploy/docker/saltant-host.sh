#!/bin/sh
# Entry point of the saltant-host image: start this host's own Docker Engine (no iptables,
# no bridge: task containers get network `none`), wait until it answers, load the image
# tarballs found in /images, then run `saltant "$@"` (e.g. `executor --queue q`).
#   SALTANT_HOST_STORAGE_DRIVER  dockerd's storage driver (default vfs: works nested)
set -eu
dockerd --iptables=false --ip-masq=false --bridge=none \
    --storage-driver="${SALTANT_HOST_STORAGE_DRIVER:-vfs}" \
    --host=unix:///var/run/docker.sock >/var/log/dockerd.log 2>&1 &
tries=0
until docker version >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -gt 300 ]; then
        echo "saltant-host: dockerd did not answer within 30 s" >&2
        tail -n 20 /var/log/dockerd.log >&2
        exit 1
    fi
    sleep 0.1
done
for tarball in /images/*.tar; do
    [ -e "$tarball" ] || continue
    docker load -q -i "$tarball" >/dev/null
done
exec /usr/local/bin/saltant "$@"

#!/usr/bin/env bash
# Build the project's images without any container image registry.
#
#   1. debootstrap a minimal Debian bookworm rootfs (python3, venv, pip, CA certificates) from
#      the host's Debian mirror and `docker import` it as the base image (skipped when that
#      image already exists; ODC_REBUILD_BASE=1 forces it);
#   2. build the application image (docker/Dockerfile) and the broker image
#      (docker/mosquitto/Dockerfile) on top of it, with host networking so pip and apt reach
#      the package registries.
#
# Environment (all optional):
#   ODC_BASE_IMAGE    base image tag            (default odc-base:bookworm)
#   ODC_IMAGE         application image tag     (default odc:latest)
#   ODC_BROKER_IMAGE  broker image tag          (default odc-mosquitto:latest)
#   ODC_ROOTFS_DIR    debootstrap work dir      (default /var/tmp/odc-rootfs; never the repo)
#   ODC_DEBIAN_MIRROR Debian mirror URL         (default: the host's apt sources)
#   ODC_REBUILD_BASE  1 = rebuild the base image even if it exists
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
base_image=${ODC_BASE_IMAGE:-odc-base:bookworm}
app_image=${ODC_IMAGE:-odc:latest}
broker_image=${ODC_BROKER_IMAGE:-odc-mosquitto:latest}
work=${ODC_ROOTFS_DIR:-/var/tmp/odc-rootfs}
suite=bookworm
export DOCKER_BUILDKIT=0  # the classic builder: no buildx plugin, no frontend image to pull

log() { printf '[build-offline %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

case "$work" in
    "$repo"|"$repo"/*) echo "ODC_ROOTFS_DIR must be outside the repository: $work" >&2; exit 2 ;;
esac

# The host's Debian mirror: deb822 (*.sources) or one-line (sources.list) format.
host_mirror() {
    local f uri
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -r $f ]] || continue
        uri=$(awk '
            /^URIs:/ { u = $2 }
            /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == "'"$suite"'") found = 1 }
            /^$/ { if (found && u != "") { print u; done = 1; exit } u = ""; found = 0 }
            END { if (!done && found && u != "") print u }' "$f")
        if [[ -n $uri ]]; then echo "$uri"; return; fi
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -r $f ]] || continue
        uri=$(awk '$1 == "deb" && $0 ~ / '"$suite"' / { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' "$f")
        if [[ -n $uri ]]; then echo "$uri"; return; fi
    done
    echo "http://deb.debian.org/debian"
}

build_base() {
    local mirror rootfs=$work/rootfs
    mirror=${ODC_DEBIAN_MIRROR:-$(host_mirror)}
    log "debootstrap $suite from $mirror into $rootfs"
    rm -rf "$rootfs"
    mkdir -p "$work"
    debootstrap --variant=minbase \
        --include=python3,python3-venv,python3-pip,ca-certificates \
        "$suite" "$rootfs" "$mirror" > "$work/debootstrap.log" 2>&1 || {
        tail -n 30 "$work/debootstrap.log" >&2
        exit 1
    }
    # The host's CA bundle (it may hold a site CA the registries are reached through) and the
    # host's system-wide pip configuration, so pip inside the build works as it does here.
    install -m 0644 /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
    [[ -f /etc/pip.conf ]] && install -m 0644 /etc/pip.conf "$rootfs/etc/pip.conf"
    if [[ -d /etc/xdg/pip ]]; then
        mkdir -p "$rootfs/etc/xdg"
        cp -a /etc/xdg/pip "$rootfs/etc/xdg/"
    fi
    printf 'deb %s %s main\n' "$mirror" "$suite" > "$rootfs/etc/apt/sources.list"
    chroot "$rootfs" apt-get clean
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
        "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
    log "importing $rootfs as $base_image"
    tar -C "$rootfs" --numeric-owner -c . | docker import \
        --change 'ENV LANG=C.UTF-8' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["/bin/bash"]' \
        - "$base_image" > /dev/null
    rm -rf "$rootfs"
}

if [[ ${ODC_REBUILD_BASE:-0} != 1 ]] && docker image inspect "$base_image" > /dev/null 2>&1; then
    log "base image $base_image exists; skipping debootstrap"
else
    build_base
fi

log "building $app_image"
docker build --force-rm --network host --build-arg "BASE_IMAGE=$base_image" \
    -t "$app_image" -f "$repo/docker/Dockerfile" "$repo" > "$work.app-build.log" 2>&1 || {
    tail -n 40 "$work.app-build.log" >&2
    exit 1
}
log "building $broker_image"
docker build --force-rm --network host --build-arg "BASE_IMAGE=$base_image" \
    -t "$broker_image" -f "$repo/docker/mosquitto/Dockerfile" "$repo/docker/mosquitto" \
    > "$work.broker-build.log" 2>&1 || {
    tail -n 40 "$work.broker-build.log" >&2
    exit 1
}
log "done: $base_image $app_image $broker_image"

#!/usr/bin/env bash
# CI step: make a docker engine and the project's images available (idempotent; fast when
# everything is already there). Called by .ci/run before the test suite, whose docker tests
# (tests/docker/test_compose.py) then run instead of skipping.
#
#   1. apt-get install docker.io docker-compose debootstrap openssl (only what is missing;
#      openssl makes the deployment's TLS certificates: docker/make_secrets.py);
#   2. start dockerd in the background unless `docker info` already answers;
#   3. docker/build-offline.sh (debootstrap base image once, then cached image builds).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log() { printf '[ci/docker %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
start=$SECONDS

need=()
command -v docker > /dev/null || need+=(docker.io)
command -v dockerd > /dev/null || need+=(docker.io)
command -v docker-compose > /dev/null || need+=(docker-compose)
command -v debootstrap > /dev/null || need+=(debootstrap)
command -v openssl > /dev/null || need+=(openssl)
if ((${#need[@]})); then
    log "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${need[@]}" | sort -u) \
        > /var/tmp/ci-docker-apt.log 2>&1 || { tail -n 30 /var/tmp/ci-docker-apt.log >&2; exit 1; }
fi

if ! docker info > /dev/null 2>&1; then
    log "starting dockerd (log: /var/log/dockerd.log)"
    # setsid: dockerd outlives this script; it is ended with the CI machine
    setsid dockerd > /var/log/dockerd.log 2>&1 < /dev/null &
    for _ in $(seq 1 60); do
        docker info > /dev/null 2>&1 && break
        sleep 1
    done
    docker info > /dev/null 2>&1 || { tail -n 30 /var/log/dockerd.log >&2; exit 1; }
fi

"$repo/docker/build-offline.sh"
log "docker ready in $((SECONDS - start)) s"

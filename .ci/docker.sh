#!/usr/bin/env bash
# Docker Engine, an authenticated registry and a local base image for the image tests (shared/DESIGN.md,
# machine facts): no engine ships on this machine, and there is no Docker Hub to pull python:3.11-slim from.
# Idempotent: a second run reuses what is there. Prints the variables the tests read.
set -euo pipefail
BASE_IMAGE=${BASE_IMAGE:-local/python:3.11-bookworm}
REGISTRY_PORT=${REGISTRY_PORT:-5000}
STATE=${DOCKER_CI_STATE:-/var/tmp/docs-assistant-ci}
mkdir -p "$STATE"

if ! command -v dockerd >/dev/null || ! command -v docker-registry >/dev/null || ! command -v htpasswd >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io docker-registry apache2-utils debootstrap >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  nohup dockerd >"$STATE/dockerd.log" 2>&1 &
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { tail -20 "$STATE/dockerd.log"; echo "dockerd did not start" >&2; exit 1; }
fi

# The registry, with htpasswd auth: pushes need the credentials the tests pass through the environment.
if ! curl -fs -o /dev/null -w '' "http://127.0.0.1:$REGISTRY_PORT/v2/" -u "ci:ci-password" 2>/dev/null; then
  htpasswd -Bbc "$STATE/htpasswd" ci ci-password >/dev/null
  cat >"$STATE/registry.yml" <<YAML
version: 0.1
storage:
  filesystem:
    rootdirectory: $STATE/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$REGISTRY_PORT
auth:
  htpasswd:
    realm: docs-assistant-ci
    path: $STATE/htpasswd
YAML
  nohup docker-registry serve "$STATE/registry.yml" >"$STATE/registry.log" 2>&1 &
  for _ in $(seq 30); do curl -fs -o /dev/null "http://127.0.0.1:$REGISTRY_PORT/v2/" -u ci:ci-password && break; sleep 1; done
  curl -fs -o /dev/null "http://127.0.0.1:$REGISTRY_PORT/v2/" -u ci:ci-password || { tail -20 "$STATE/registry.log"; exit 1; }
fi

# The base image: Debian's python3 from debootstrap, with this machine's CA bundle (builds reach PyPI
# through it, with host networking) and pip/uv told to use it.
if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  root="$STATE/rootfs"
  rm -rf "$root"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$root" \
    http://deb.debian.org/debian >"$STATE/debootstrap.log" 2>&1 || { tail -20 "$STATE/debootstrap.log"; exit 1; }
  cp "${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}" "$root/etc/ssl/certs/ca-certificates.crt"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/usr/share/doc/* "$root"/usr/share/man/* \
    "$root"/usr/share/locale/* "$root"/usr/share/info/*
  tar -C "$root" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
    --change 'CMD ["python3"]' - "$BASE_IMAGE" >/dev/null
  rm -rf "$root"
fi

echo "DOCS_ASSISTANT_TEST_BASE_IMAGE=$BASE_IMAGE"
echo "DOCS_ASSISTANT_TEST_REGISTRY=127.0.0.1:$REGISTRY_PORT"

#!/usr/bin/env bash
# Install and start what the tests need on this machine: Docker engine, Chromium, bubblewrap, PostgreSQL.
# Reuses whatever is already there. Needs root to install; otherwise it only reports.
set -u
quiet=0; [ "${1:-}" = "--quiet" ] && quiet=1
say() { [ $quiet = 1 ] || echo "machine: $*"; }

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v chromium >/dev/null || need+=(chromium)
command -v bwrap >/dev/null || need+=(bubblewrap)
ldconfig -p 2>/dev/null | grep -q 'libseccomp\.so\.2' || need+=(libseccomp2)  # the local sandbox's seccomp filter
command -v mkfs.ext4 >/dev/null && command -v debugfs >/dev/null || need+=(e2fsprogs)  # size-limited workdirs
command -v losetup >/dev/null || need+=(mount)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)  # the PostgreSQL trace store's tests
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    say "installing ${need[*]}"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null \
      || { echo "machine: apt-get install ${need[*]} failed" >&2; exit 1; }
  else
    say "missing ${need[*]} (run as root to install)"
  fi
fi

if command -v dockerd >/dev/null && ! docker info >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    say "starting dockerd"
    mkdir -p /var/log
    nohup dockerd --storage-driver=overlay2 --iptables=false --ip-masq=false --bridge=none \
      >/var/log/lab-dockerd.log 2>&1 &
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || { echo "machine: dockerd did not start; see /var/log/lab-dockerd.log" >&2; exit 1; }
  fi
fi
docker info >/dev/null 2>&1 && say "docker $(docker version --format '{{.Server.Version}}' 2>/dev/null) running"
exit 0

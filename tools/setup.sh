#!/usr/bin/env bash
# Set up everything nova-netaware needs on a fresh machine (Debian, root):
# system packages, the local services, and a virtualenv in .venv with the
# package and its test/stack dependencies. Idempotent and quick when done.
set -euo pipefail
cd "$(dirname "$0")/.."

# install_missing WHAT APT_OPTION PACKAGE...: apt-get install the packages
# that dpkg does not know yet (APT_OPTION may be empty)
install_missing() {
    local what=$1 opt=$2 p
    shift 2
    local missing=()
    for p in "$@"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "setup: installing Debian packages$what: ${missing[*]}"
        apt-get update -qq
        # shellcheck disable=SC2086  # an empty option expands to nothing
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $opt \
            "${missing[@]}" >/dev/null
    fi
}

APT_PACKAGES=(iptables iproute2 nftables libnetfilter-queue-dev gcc libc6-dev shellcheck prometheus mariadb-server rabbitmq-server redis-server)
install_missing "" "" "${APT_PACKAGES[@]}"

# local-stack up --virt libvirt and tests/libvirt_e2e: QEMU, libvirt (with
# libvirt-dev for libvirt-python), the guest image's Debian kernel and
# busybox, and sshd (Nova copies cold-migrated disks between computes over
# ssh). Without recommends: about 540 MB, 2-3 minutes on a fresh machine.
LIBVIRT_PACKAGES=(qemu-system-x86 qemu-utils libvirt-daemon-system libvirt-clients
                  libvirt-dev pkg-config busybox-static linux-image-amd64 openssh-server)
install_missing " for --virt libvirt" --no-install-recommends "${LIBVIRT_PACKAGES[@]}"

bash tools/services.sh

PY=${PYTHON:-}
if [ -z "$PY" ]; then
    for c in python3.11 python3.12 python3.13 python3; do
        if command -v "$c" >/dev/null && "$c" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
            PY=$c; break
        fi
    done
fi
[ -n "$PY" ] || { echo "setup: need Python >= 3.11" >&2; exit 1; }
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $PY"
    "$PY" -m venv .venv
fi
stamp=.venv/.netaware-installed
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ]; then
    echo "setup: installing Python packages into .venv (about a minute)"
    .venv/bin/pip install -q -U pip wheel setuptools 2>&1 | grep -v '^WARNING: Location' || true
    .venv/bin/pip install -q -e '.[test,stack,libvirt]' 2>&1 | grep -v '^WARNING: Location' || true
    .venv/bin/python -c 'import nova, placement, netfilterqueue, libvirt, watcher, nova_netaware' \
        || { echo "setup: the Python install failed" >&2; exit 1; }
    touch "$stamp"
fi
echo "setup: ready (.venv)"

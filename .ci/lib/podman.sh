# Shared by the packaging checks (.ci/container-check, .ci/systemd-check,
# .ci/compose-check): podman from Debian's packages, the run options this machine needs,
# and a Debian base image made with debootstrap, since no container registry is reachable.
# Source it; it defines functions and RUN_ARGS and changes nothing until they are called.

log() { printf '\n== %s\n' "$*"; }
skip() { printf 'SKIPPED: %s\n' "$*"; }

# The local base image: Debian bookworm (minbase) from the Debian mirror, imported into
# podman's storage. Kept between runs, so only the first run on a machine pays for it.
DEBIAN_BASE_IMAGE=localhost/idsync-ci/debian:bookworm

# Installs podman (and what its bridge networks need) when missing; returns 1, with the
# reason printed, when podman cannot run here.
ensure_podman() {
  if ! command -v podman >/dev/null 2>&1 || ! command -v iptables >/dev/null 2>&1 \
      || ! command -v runc >/dev/null 2>&1 || [ ! -x /usr/lib/podman/aardvark-dns ]; then
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends podman crun \
        fuse-overlayfs uidmap slirp4netns netavark aardvark-dns iptables runc >/dev/null; } \
      || { skip "podman could not be installed from the Debian packages"; return 1; }
  fi
  if ! podman info >/dev/null 2>&1; then
    skip "podman is installed but cannot run here: $(podman info 2>&1 | tail -n 1)"
    return 1
  fi
  choose_run_args
}

# Options every `podman run` here needs, set by ensure_podman once the packages are
# installed (runc is one of them: chosen before the install, a fresh machine got crun).
# Inside a restricted container (a CI runner): podman's default rlimits are above what the
# runner allows (EPERM), so they are set explicitly; crun 1.8 refuses hybrid cgroup v1/v2
# hosts, where runc works.
RUN_ARGS=()
RUNTIME_ARGS=()
choose_run_args() {
  RUN_ARGS=(--ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit nproc=4096:4096)
  RUNTIME_ARGS=()
  if [ -d /sys/fs/cgroup/unified ] && command -v runc >/dev/null 2>&1; then
    RUNTIME_ARGS=(--runtime runc)
  fi
  RUN_ARGS+=("${RUNTIME_ARGS[@]}")
}

# Builds $DEBIAN_BASE_IMAGE when podman's storage lacks it (about a minute).
ensure_debian_base() {
  podman image exists "$DEBIAN_BASE_IMAGE" && return 0
  if ! command -v debootstrap >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  fi
  local root
  root=$(mktemp -d)
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >/dev/null
  tar -C "$root" -c . | podman import --quiet - "$DEBIAN_BASE_IMAGE" >/dev/null
  rm -rf "$root"
}

# Builds image $1 from the build context $2 (further arguments go to podman build) unless
# it exists already, with the host's network (apt reaches the mirror) and the runtime
# this machine needs.
ensure_image() {
  local image=$1 context=$2; shift 2
  podman image exists "$image" && return 0
  podman build --quiet --network host "${RUNTIME_ARGS[@]}" "$@" -t "$image" "$context" >/dev/null
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Runs "$@" every half second until it succeeds or $1 seconds pass; returns its status.
retry_for() {
  local seconds=$1; shift
  local tries=$((seconds * 2))
  for _ in $(seq 1 "$tries"); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  "$@"
}

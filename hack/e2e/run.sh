#!/usr/bin/env bash
# `make e2e`: a real one-node Kubernetes cluster on this machine, without a container engine, and
# the e2e tests (test/e2e) against it. Needs root. Steps:
#   1. Debian packages containerd, runc, containernetworking-plugins, iptables, conntrack
#      (installed when missing) and the kernel features they use (a missing one fails, by name).
#   2. Builds: kubelet, kube-controller-manager, kube-scheduler, kube-proxy (hack/envtest-bins.sh
#      --node, idempotent); the runc wrapper; the pause image and the operator image as tarballs
#      from static binaries (hack/e2e/image, no Docker); the test binary (build tag e2e).
#   3. A network namespace with lo and a node interface holding E2E_NODE_IP, a cgroup root and a
#      run directory, all named after this shell's pid; the test binary runs in that network
#      namespace and in a private mount namespace (nothing it mounts shows outside).
#   4. Teardown, always (trap): whatever is left in the namespace or the cgroup root is killed,
#      the namespace, cgroups and run directory removed. Logs are copied to .e2e/logs first.
# Environment: E2E_RUN (a -test.run regexp), E2E_KEEP=1 (keep the run directory), E2E_TIMEOUT.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "${ROOT}"
OUT="${E2E_OUT:-${ROOT}/.e2e}"
K8S_BIN="${E2E_K8S_BIN:?E2E_K8S_BIN: the directory hack/envtest-bins.sh --node builds into}"
IMG="${E2E_IMG:-ghcr.io/clinicpay/stripe-operator:e2e}"
PAUSE_IMG="e2e.local/pause:e2e"
NODE_IP="${E2E_NODE_IP:-10.200.0.1}"
POD_CIDR="${E2E_POD_CIDR:-10.201.0.0/24}"
SERVICE_CIDR="10.0.0.0/24" # test/e2e's serviceCIDR (envtest's default)
CNI_BIN="${E2E_CNI_BIN:-/usr/lib/cni}"
ID="stripe-e2e-$$"
NS="${ID}"
RUN_DIR="/run/${ID}"
CG_ROOT="/${ID}"

log() { printf 'e2e: %s\n' "$*" >&2; }
die() { printf 'e2e: FAIL: %s\n' "$*" >&2; exit 1; }
start=$(date +%s)
elapsed() { echo "$(( $(date +%s) - start ))s"; }

[[ "$(id -u)" == 0 ]] || die "make e2e needs root (network namespaces, mounts, cgroups, iptables)"
[[ "$(go env GOARCH)" == amd64 || "$(go env GOARCH)" == arm64 ]] || die "unsupported GOARCH $(go env GOARCH)"

# --- 1. packages and kernel features ------------------------------------------------------------
need_pkgs=()
command -v containerd >/dev/null || need_pkgs+=(containerd)
command -v ctr >/dev/null || need_pkgs+=(containerd)
command -v runc >/dev/null || need_pkgs+=(runc)
[[ -x "${CNI_BIN}/bridge" && -x "${CNI_BIN}/host-local" && -x "${CNI_BIN}/portmap" ]] || need_pkgs+=(containernetworking-plugins)
command -v iptables >/dev/null || need_pkgs+=(iptables)
command -v conntrack >/dev/null || need_pkgs+=(conntrack)
command -v unshare >/dev/null && command -v nsenter >/dev/null || need_pkgs+=(util-linux)
if ((${#need_pkgs[@]})); then
  log "installing ${need_pkgs[*]} (apt-get)"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

modprobe -q overlay 2>/dev/null || true
modprobe -q br_netfilter 2>/dev/null || true
grep -qw overlay /proc/filesystems || die "kernel feature missing: overlayfs (containerd's overlayfs snapshotter); load the overlay module"
[[ -d /sys/fs/cgroup ]] || die "kernel feature missing: cgroups (/sys/fs/cgroup)"
[[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]] || die "kernel feature missing: br_netfilter (bridge-nf-call-iptables; Service traffic between pods on the bridge)"

# --- 2. builds ------------------------------------------------------------------------------------
mkdir -p "${OUT}"
log "building node binaries (hack/envtest-bins.sh --node; idempotent)"
hack/envtest-bins.sh --node >/dev/null
for b in etcd kube-apiserver kubelet kube-controller-manager kube-scheduler kube-proxy; do
  [[ -x "${K8S_BIN}/${b}" ]] || die "${K8S_BIN}/${b} missing after hack/envtest-bins.sh --node"
done
log "building the runc wrapper, images and test binary"
go build -o "${OUT}/runc-wrapper" ./hack/e2e/runc-wrapper
go build -o "${OUT}/image" ./hack/e2e/image
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "${OUT}/pause" ./hack/e2e/pause
# The Dockerfile's two binaries, built as it builds them.
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${IMG##*:}" -o "${OUT}/manager" ./cmd
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "${OUT}/receiver" ./cmd/receiver
"${OUT}/image" -out "${OUT}/pause.tar" -tag "${PAUSE_IMG}" -entrypoint /pause -file "${OUT}/pause=/pause"
"${OUT}/image" -out "${OUT}/operator.tar" -tag "${IMG}" -entrypoint /manager -user 65532:65532 \
  -file "${OUT}/manager=/manager" -file "${OUT}/receiver=/receiver"
# The same image under a second tag: what `helm upgrade` to a new version rolls the receivers onto.
"${OUT}/image" -out "${OUT}/operator-next.tar" -tag "${IMG}-next" -entrypoint /manager -user 65532:65532 \
  -file "${OUT}/manager=/manager" -file "${OUT}/receiver=/receiver"
go test -c -tags e2e -o "${OUT}/e2e.test" ./test/e2e
log "built in $(elapsed)"

# --- 3. namespace, cgroup root, run directory ----------------------------------------------------
cleanup() {
  local rc=$?
  set +e
  log "tearing down ${ID}"
  mkdir -p "${OUT}/logs" && rm -rf "${OUT}/logs"/* && cp -r "${RUN_DIR}/logs/." "${OUT}/logs/" 2>/dev/null
  cp -r "${RUN_DIR}/pod-logs" "${OUT}/logs/pods" 2>/dev/null
  # Leftovers of a test binary that died without its own teardown: every process in the network
  # namespace (containerd, shims, components) and in the cgroup root (containers).
  local pids
  for _ in 1 2 3; do
    pids="$(ip netns pids "${NS}" 2>/dev/null; find /sys/fs/cgroup/*/"${CG_ROOT}" /sys/fs/cgroup"${CG_ROOT}" -name cgroup.procs -exec cat {} + 2>/dev/null)"
    [[ -z "${pids// /}" ]] && break
    log "killing leftover processes: $(echo ${pids} | tr '\n' ' ')"
    kill -9 ${pids} 2>/dev/null
    sleep 1
  done
  for d in /sys/fs/cgroup/*/"${CG_ROOT}" /sys/fs/cgroup"${CG_ROOT}"; do
    [[ -d "${d}" ]] && find "${d}" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  ip netns del "${NS}" 2>/dev/null
  # What kubelet and libcni write outside the run directory, at paths they do not let us choose:
  # log symlinks and cached CNI results of containers that were killed rather than removed.
  find /var/log/containers -maxdepth 1 -lname "${RUN_DIR}/*" -delete 2>/dev/null
  local sb
  for sb in "${RUN_DIR}"/containerd/root/io.containerd.grpc.v1.cri/sandboxes/*/; do
    [[ -d "${sb}" ]] && rm -f /var/lib/cni/results/*-"$(basename "${sb}")"-*
  done
  # Nothing should be mounted here in this mount namespace (the test ran in a private one).
  findmnt -rn -o TARGET | grep "^${RUN_DIR}" | sort -r | xargs -r -n1 umount -l
  if [[ "${E2E_KEEP:-}" == 1 ]]; then
    log "kept ${RUN_DIR}"
  else
    rm -rf "${RUN_DIR}"
  fi
  local left=""
  ip netns list | grep -qw "${NS}" && left+=" netns"
  for d in /sys/fs/cgroup/*/"${CG_ROOT}"; do [[ -d "${d}" ]] && left+=" ${d}"; done
  [[ -n "${left}" ]] && { log "teardown left:${left}"; ((rc == 0)) && rc=1; }
  log "done in $(elapsed) (rc=${rc}); logs in ${OUT}/logs"
  exit "${rc}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "${NS}" || die "kernel feature missing: network namespaces (ip netns add)"
nsx() { ip netns exec "${NS}" "$@"; }
nsx ip link set lo up
# The node's address on an interface of its own: a dummy if the kernel has it, else one end of a
# veth pair whose both ends stay in the namespace.
if nsx ip link add e2e0 type dummy 2>/dev/null; then
  :
else
  nsx ip link add e2e0 type veth peer name e2e0-peer || die "kernel feature missing: veth (and dummy)"
  nsx ip link set e2e0-peer up
fi
nsx ip link set e2e0 up
nsx ip addr add "${NODE_IP}/32" dev e2e0
# ClusterIPs need a route for connections from the namespace itself (kube-proxy's DNAT comes after
# the routing decision); pods route them through the bridge.
nsx ip route add "${SERVICE_CIDR}" dev e2e0 src "${NODE_IP}"
nsx ip link add e2e-probe type bridge 2>/dev/null || die "kernel feature missing: bridge (the CNI bridge plugin)"
nsx ip link del e2e-probe
nsx sysctl -qw net.ipv4.ip_forward=1
nsx sysctl -qw net.bridge.bridge-nf-call-iptables=1 || die "kernel feature missing: br_netfilter in network namespaces"
nsx iptables -t nat -L -n >/dev/null 2>&1 || die "kernel feature missing: netfilter NAT (iptables -t nat)"
nsx conntrack -C >/dev/null 2>&1 || die "kernel feature missing: conntrack (nf_conntrack)"
mkdir -p "${RUN_DIR}"
if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
  mkdir -p "/sys/fs/cgroup${CG_ROOT}"
else
  for h in /sys/fs/cgroup/*/; do
    [[ "${h}" == */unified/ ]] && continue
    mkdir -p "${h%/}${CG_ROOT}"
  done
  # A new cpuset cgroup starts with no CPUs and no memory nodes: give it its parent's.
  if [[ -d /sys/fs/cgroup/cpuset${CG_ROOT} ]]; then
    cat /sys/fs/cgroup/cpuset/cpuset.cpus >"/sys/fs/cgroup/cpuset${CG_ROOT}/cpuset.cpus"
    cat /sys/fs/cgroup/cpuset/cpuset.mems >"/sys/fs/cgroup/cpuset${CG_ROOT}/cpuset.mems"
  fi
fi

# --- 4. the tests ---------------------------------------------------------------------------------
log "running the e2e tests in network namespace ${NS}"
cd "${ROOT}/test/e2e"
unshare --mount --propagation slave -- nsenter --net="/run/netns/${NS}" -- env \
  E2E_RUN_DIR="${RUN_DIR}" E2E_NODE_IP="${NODE_IP}" E2E_POD_CIDR="${POD_CIDR}" E2E_K8S_BIN="${K8S_BIN}" \
  E2E_RUNC_WRAPPER="${OUT}/runc-wrapper" E2E_CGROUP_ROOT="${CG_ROOT}" E2E_CNI_BIN="${CNI_BIN}" \
  E2E_PAUSE_IMAGE="${PAUSE_IMG}" E2E_IMAGES="${OUT}/pause.tar ${OUT}/operator.tar ${OUT}/operator-next.tar" E2E_IMG="${IMG}" E2E_IMG_NEXT="${IMG}-next" \
  E2E_HELM="${E2E_HELM:-${ROOT}/bin/helm}" E2E_KUSTOMIZE="${E2E_KUSTOMIZE:-${ROOT}/bin/kustomize}" E2E_REPO="${ROOT}" \
  "${OUT}/e2e.test" -test.v -test.count=1 -test.timeout="${E2E_TIMEOUT:-30m}" ${E2E_RUN:+-test.run "${E2E_RUN}"}

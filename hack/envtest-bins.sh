#!/usr/bin/env bash
# Builds the envtest control plane (etcd, kube-apiserver) from the Go module proxy,
# because setup-envtest's downloads need the internet. With --node it also builds what a
# one-node cluster needs (kubelet, kube-controller-manager, kube-scheduler, kube-proxy) for
# `make e2e`. Idempotent: exits at once
# when the binaries are present. Output layout matches setup-envtest:
#   bin/k8s/<K8S_VERSION>-linux-<arch>/{etcd,kube-apiserver,kubectl}
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
K8S_VERSION="${K8S_VERSION:-1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-v3.7.3}"
GOARCH="$(go env GOARCH)"
OUT="${ROOT}/bin/k8s/${K8S_VERSION}-linux-${GOARCH}"
WORK="${ROOT}/bin/.envtest-build"

export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0

log() { printf 'envtest-bins: %s\n' "$*" >&2; }

# Keep the Go tool chatter in a log; show it only when a build fails.
BUILD_LOG="${ROOT}/bin/envtest-build.log"
quiet() {
  if ! "$@" >>"${BUILD_LOG}" 2>&1; then
    log "failed: $*"; tail -n 40 "${BUILD_LOG}" >&2; exit 1
  fi
}

build_etcd() {
  [[ -x "${OUT}/etcd" ]] && return 0
  log "building etcd ${ETCD_VERSION} (first run only)"
  local dir="${WORK}/etcd"
  rm -rf "${dir}" && mkdir -p "${dir}"
  (
    cd "${dir}"
    # `go install` refuses etcd (replace directives in its go.mod), so use a wrapper module.
    quiet go mod init envtest.local/etcd
    quiet go mod edit -go=1.26
    quiet go get -tool "go.etcd.io/etcd/server/v3@${ETCD_VERSION}"
    quiet go build -trimpath -o "${OUT}/etcd.tmp" go.etcd.io/etcd/server/v3
  )
  mv "${OUT}/etcd.tmp" "${OUT}/etcd"
}

# build_k8s builds the named k8s.io/kubernetes commands (kube-apiserver; with --node also kubelet,
# kube-controller-manager, kube-scheduler, kube-proxy) that are not in OUT yet, in one go build.
build_k8s() {
  local missing=()
  for c in "$@"; do [[ -x "${OUT}/${c}" ]] || missing+=("${c}"); done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  log "building ${missing[*]} v${K8S_VERSION} (first run only; several minutes)"
  local dir="${WORK}/k8s"
  rm -rf "${dir}" && mkdir -p "${dir}"
  local kmod
  kmod="$(go mod download -json "k8s.io/kubernetes@v${K8S_VERSION}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
  [[ -f "${kmod}" ]] || { log "cannot find go.mod of k8s.io/kubernetes@v${K8S_VERSION}"; exit 1; }
  local staging_version="v0.${K8S_VERSION#1.}"
  {
    echo "module envtest.local/k8s"
    echo
    echo "go 1.26"
    echo
    echo "require k8s.io/kubernetes v${K8S_VERSION}"
    echo
    # k8s.io/kubernetes replaces each staging module with ./staging/...; point them at the published versions.
    grep -oE '^[[:space:]]*(replace[[:space:]]+)?k8s\.io/[a-z0-9-]+[[:space:]]+=>[[:space:]]+\./staging/' "${kmod}" \
      | sed -E 's/^[[:space:]]*(replace[[:space:]]+)?(k8s\.io\/[a-z0-9-]+).*/\2/' | sort -u \
      | while read -r m; do echo "replace ${m} => ${m} ${staging_version}"; done
  } > "${dir}/go.mod"
  log "$(grep -c '^replace' "${dir}/go.mod") staging modules replaced with ${staging_version}"
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for c in "${missing[@]}"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "${c}"; done
    printf ')\n'
  } > "${dir}/tools.go"
  (
    cd "${dir}"
    quiet go mod tidy
    # Without the version ldflags the binaries report v0.0.0-master, which kubelet and the
    # apiserver's version checks refuse.
    local ld=""
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ld+=" -X ${p}.gitVersion=v${K8S_VERSION} -X ${p}.gitMajor=${K8S_VERSION%%.*}"
      ld+=" -X ${p}.gitMinor=$(echo "${K8S_VERSION}" | cut -d. -f2)"
    done
    local pkgs=()
    for c in "${missing[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/${c}"); done
    mkdir -p "${dir}/out"
    quiet go build -trimpath -ldflags "-s -w${ld}" -o "${dir}/out/" "${pkgs[@]}"
  )
  for c in "${missing[@]}"; do mv "${dir}/out/${c}" "${OUT}/${c}"; done
}

link_kubectl() {
  [[ -e "${OUT}/kubectl" ]] && return 0
  if command -v kubectl >/dev/null 2>&1; then ln -sf "$(command -v kubectl)" "${OUT}/kubectl"; fi
}

mkdir -p "${OUT}"
: >"${BUILD_LOG}"
build_etcd
if [[ "${1:-}" == "--node" ]]; then
  # What `make e2e` runs on top of the control plane: a real node and the controllers.
  build_k8s kube-apiserver kubelet kube-controller-manager kube-scheduler kube-proxy
else
  build_k8s kube-apiserver
fi
link_kubectl
rm -rf "${WORK}"
echo "${OUT}"

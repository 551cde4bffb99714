#!/usr/bin/env bash
# Builds the envtest control plane (etcd, kube-apiserver) from the Go module proxy,
# because setup-envtest's downloads need the internet. Idempotent: exits at once
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

build_apiserver() {
  [[ -x "${OUT}/kube-apiserver" ]] && return 0
  log "building kube-apiserver v${K8S_VERSION} (first run only; several minutes)"
  local dir="${WORK}/apiserver"
  rm -rf "${dir}" && mkdir -p "${dir}"
  local kmod
  kmod="$(go mod download -json "k8s.io/kubernetes@v${K8S_VERSION}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
  [[ -f "${kmod}" ]] || { log "cannot find go.mod of k8s.io/kubernetes@v${K8S_VERSION}"; exit 1; }
  local staging_version="v0.${K8S_VERSION#1.}"
  {
    echo "module envtest.local/apiserver"
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
  cat > "${dir}/tools.go" <<'GO'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
GO
  (
    cd "${dir}"
    quiet go mod tidy
    local ld=""
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ld+=" -X ${p}.gitVersion=v${K8S_VERSION} -X ${p}.gitMajor=${K8S_VERSION%%.*}"
      ld+=" -X ${p}.gitMinor=$(echo "${K8S_VERSION}" | cut -d. -f2)"
    done
    quiet go build -trimpath -ldflags "-s -w${ld}" -o "${OUT}/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
  )
  mv "${OUT}/kube-apiserver.tmp" "${OUT}/kube-apiserver"
}

link_kubectl() {
  [[ -e "${OUT}/kubectl" ]] && return 0
  if command -v kubectl >/dev/null 2>&1; then ln -sf "$(command -v kubectl)" "${OUT}/kubectl"; fi
}

mkdir -p "${OUT}"
: >"${BUILD_LOG}"
build_etcd
build_apiserver
link_kubectl
rm -rf "${WORK}"
echo "${OUT}"

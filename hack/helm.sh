#!/usr/bin/env bash
# Installs helm from the Go module proxy (helm.sh/helm/v3 builds offline with `go install`), for
# the chart test in test/manifests. Idempotent and quiet: does nothing when the pinned version is
# in place, and prints the Go tool output only when the install fails. Layout matches the
# Makefile's go-install-tool: bin/helm-<version> plus a symlink bin/helm. A cold build takes
# about 70 s; a warm one a few seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${HELM_VERSION:-v3.22.0}"
LOCALBIN="${LOCALBIN:-${ROOT}/bin}"
TARGET="${LOCALBIN}/helm-${VERSION}"
LINK="${LOCALBIN}/helm"

install_helm() {
  [[ -x "${TARGET}" ]] && return 0
  mkdir -p "${LOCALBIN}"
  # Install into a private directory first, so an interrupted or concurrent run never leaves
  # a half-written binary under the final name.
  local tmp
  tmp="$(mktemp -d "${LOCALBIN}/.helm.XXXXXX")"
  # Expanded now: tmp is local and gone by the time the EXIT trap runs.
  # shellcheck disable=SC2064
  trap "rm -rf '${tmp}'" EXIT
  if ! GOBIN="${tmp}" GOTOOLCHAIN=local go install "helm.sh/helm/v3/cmd/helm@${VERSION}" >"${tmp}/install.log" 2>&1; then
    printf 'helm: go install helm.sh/helm/v3/cmd/helm@%s failed:\n' "${VERSION}" >&2
    cat "${tmp}/install.log" >&2
    exit 1
  fi
  mv "${tmp}/helm" "${TARGET}"
}

install_helm
# Compared resolved, so that a bin/ that is a symlink (a git worktree sharing another's) matches.
if [[ "$(realpath -- "${LINK}" 2>/dev/null)" != "$(realpath -- "${TARGET}")" ]]; then
  ln -sfn "${TARGET}" "${LINK}"
fi

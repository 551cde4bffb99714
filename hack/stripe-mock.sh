#!/usr/bin/env bash
# Installs stripe-mock, Stripe's OpenAPI-backed API mock, from the Go module proxy for the
# contract test in test/contract. Idempotent and quiet: does nothing when the pinned version is
# in place, and prints only when the install fails. Layout matches the Makefile's
# go-install-tool: bin/stripe-mock-<version> plus a symlink bin/stripe-mock. The binary itself
# cannot tell its version (go install leaves it at "master"), so the file name carries it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${STRIPE_MOCK_VERSION:-v0.203.0}"
LOCALBIN="${LOCALBIN:-${ROOT}/bin}"
TARGET="${LOCALBIN}/stripe-mock-${VERSION}"
LINK="${LOCALBIN}/stripe-mock"

install_stripe_mock() {
  [[ -x "${TARGET}" ]] && return 0
  mkdir -p "${LOCALBIN}"
  # Install into a private directory first, so an interrupted or concurrent run never leaves
  # a half-written binary under the final name.
  local tmp
  tmp="$(mktemp -d "${LOCALBIN}/.stripe-mock.XXXXXX")"
  # Expanded now: tmp is local and gone by the time the EXIT trap runs.
  # shellcheck disable=SC2064
  trap "rm -rf '${tmp}'" EXIT
  if ! GOBIN="${tmp}" GOTOOLCHAIN=local go install "github.com/stripe/stripe-mock@${VERSION}" >"${tmp}/install.log" 2>&1; then
    printf 'stripe-mock: go install github.com/stripe/stripe-mock@%s failed:\n' "${VERSION}" >&2
    cat "${tmp}/install.log" >&2
    exit 1
  fi
  mv "${tmp}/stripe-mock" "${TARGET}"
}

install_stripe_mock
if [[ "$(readlink -- "${LINK}" 2>/dev/null)" != "${TARGET}" ]]; then
  ln -sfn "${TARGET}" "${LINK}"
fi

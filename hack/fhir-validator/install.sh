#!/usr/bin/env bash
# Installs the FHIR R4 validator (hack/fhir-validator: validate.js on npm "fhir", FHIR.js) into
# bin/fhir-validator for the fhirrelay tests, which run `node bin/fhir-validator/validate.js`.
# Idempotent and quiet: does nothing when the installed copy matches the committed package
# files, and prints only when the install fails. `npm ci` installs exactly what
# package-lock.json pins; node_modules lives under bin/ (gitignored), never in the repo.
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "${SRC}/../.." && pwd)"
LOCALBIN="${LOCALBIN:-${ROOT}/bin}"
DEST="${LOCALBIN}/fhir-validator"
FILES=(package.json package-lock.json validate.js)

for tool in node npm; do
  if ! command -v "${tool}" >/dev/null 2>&1; then
    printf 'fhir-validator: %s not found; install Node.js (Debian package nodejs) and npm\n' "${tool}" >&2
    exit 1
  fi
done

up_to_date() {
  local f
  for f in "${FILES[@]}"; do
    cmp -s "${SRC}/${f}" "${DEST}/${f}" || return 1
  done
  # The marker is written only after a successful npm ci, so an interrupted install
  # (files copied, node_modules half-written) is redone next time.
  cmp -s "${SRC}/package-lock.json" "${DEST}/node_modules/.installed-lock.json"
}

up_to_date && exit 0

mkdir -p "${DEST}"
for f in "${FILES[@]}"; do
  cp "${SRC}/${f}" "${DEST}/${f}"
done
log="$(mktemp)"
trap 'rm -f "${log}"' EXIT
if ! npm ci --prefix "${DEST}" --no-audit --no-fund --ignore-scripts >"${log}" 2>&1; then
  printf 'fhir-validator: npm ci --prefix %s failed:\n' "${DEST}" >&2
  cat "${log}" >&2
  exit 1
fi
cp "${SRC}/package-lock.json" "${DEST}/node_modules/.installed-lock.json"

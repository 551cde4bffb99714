#!/usr/bin/env bash
# Fails when a tracked file is a binary or larger than 1 MiB. Generated YAML (CRDs) is exempt from
# the size limit; nothing is exempt from the binary check.
set -euo pipefail
cd "$(dirname "$0")/.."
limit=$((1024 * 1024))
bad=0
while IFS= read -r -d '' f; do
  [ -f "$f" ] || continue
  size=$(stat -c %s "$f")
  if [ "$size" -gt "$limit" ] && [[ "$f" != *.yaml ]]; then
    echo "tracked file over 1 MiB: $f ($size bytes)" >&2
    bad=1
  fi
  # grep -I treats a file with NUL bytes as binary and so finds no text line in it.
  if [ "$size" -gt 0 ] && ! grep -Iq . "$f"; then
    echo "tracked binary file: $f" >&2
    bad=1
  fi
done < <(git ls-files -z)
exit "$bad"

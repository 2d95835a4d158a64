#!/usr/bin/env bash
# Runs every fuzz target of the repository (e2e aside) for a short time,
# one target per `go test -fuzz` (go fuzzes one target at a time), after
# the committed corpus in the package's testdata/fuzz/FuzzX. Exits non-zero
# when a target fails; go writes the failing input to testdata/fuzz/FuzzX/,
# to commit with the fix.
#   FUZZTIME   how long each target runs (default 10s; go's -fuzztime syntax)
#   GO         the go command (default go)
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-10s}

# Targets that must exist (issue 20's acceptance: the configuration file,
# the stamp, @meta.toml, a pack; and the peer messages): a rename must not
# quietly stop fuzzing them. FuzzReadPack is fuzzed when it exists.
required="FuzzDecode FuzzCheck FuzzConfig FuzzStamp FuzzMeta FuzzReadPack"

pkgs=$("$GO" list ./... | grep -v '/e2e$')
# `go test -list` prints a package's matching names, then "ok <package> ...".
# shellcheck disable=SC2086
listing=$("$GO" test -list '^Fuzz' $pkgs)
run=()
names=()
pending=()
while read -r first second _; do
  case $first in
  Fuzz*) pending+=("$first") ;;
  ok)
    for n in "${pending[@]}"; do
      run+=("$second:$n")
      names+=("$n")
    done
    pending=()
    ;;
  esac
done <<<"$listing"

for n in $required; do
  if ! printf '%s\n' "${names[@]}" | grep -qx "$n"; then
    echo "fuzz: $n is not a fuzz target of any package" >&2
    exit 1
  fi
done
if ! printf '%s\n' "${names[@]}" | grep -qx FuzzReadPack; then
  echo "fuzz: FuzzReadPack not written yet: skipped"
fi

failed=()
for t in "${run[@]}"; do
  pkg=${t%%:*} name=${t#*:}
  echo "fuzz: $name ($pkg) for $FUZZTIME"
  if ! "$GO" test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "$pkg"; then
    failed+=("$name ($pkg)")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: ${#run[@]} targets passed"

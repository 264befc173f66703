#!/bin/bash
# format-check.sh -- how far the product tree is from what .clang-format
# produces: the lines `clang-format` would change in each file that it
# would change, then the total. Reports only (exit 0), so that it can run
# before the tree is reformatted in one commit of its own; with --strict it
# fails when any line would change (for CI once `make format` is a no-op).
#
#   scripts/format-check.sh [--strict] [FILE...]   (default: every .c and .h
#                                                   of the product rooms)
set -euo pipefail
cd "$(dirname "$0")/.."
strict=0
if [ "${1:-}" = "--strict" ]; then strict=1; shift; fi
command -v clang-format >/dev/null || {
    echo "format-check: clang-format is not installed (scripts/deps.sh)" >&2
    exit 2
}
if [ $# -gt 0 ]; then
    files=("$@")
else
    mapfile -t files < <(ls lib/*.[ch] core/*.[ch] stats/*.[ch] bandits/*.[ch] \
        sql/*.[ch] codec/*.[ch] service/*.[ch] api/*.[ch] cli/*.[ch])
fi
changed=0 total=0
for f in "${files[@]}"; do
    n=$(wc -l < "$f")
    total=$((total + n))
    # removed or rewritten lines of the unified diff, headers excluded
    c=$(clang-format --style=file "$f" | diff -U0 "$f" - |
        grep -c -e '^-[^-]' -e '^-$' || true)
    if [ "$c" -gt 0 ]; then
        printf '%6d  %s\n' "$c" "$f"
        changed=$((changed + c))
    fi
done
echo "format-check: clang-format would change $changed of $total lines" \
     "in ${#files[@]} files"
if [ "$strict" = 1 ] && [ "$changed" -gt 0 ]; then
    exit 1
fi

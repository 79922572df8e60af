#!/usr/bin/env bash
# Checks that the sources keep their layers (the Makefile and docs/design.md
# describe them): a file of src/<layer>/ may include headers of its own
# layer or of a lower one, never of a higher one, and no modules include
# each other in a circle.  Headers outside src/ (PostgreSQL's, hiredis,
# libc) are not checked here; the build keeps them out of src/core/.
#
#   bash scripts/check-layers.sh        (exit status 1 on a violation)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
LAYERS=(core base services pipeline entry)

declare -A rank_of_layer header_layer
for i in "${!LAYERS[@]}"; do
    rank_of_layer[${LAYERS[$i]}]=$i
    for h in src/"${LAYERS[$i]}"/*.h; do
        [ -e "$h" ] || continue
        header_layer[$(basename "$h")]=${LAYERS[$i]}
    done
done

violations=0
edges=$(mktemp)
trap 'rm -f "$edges"' EXIT
for layer in "${LAYERS[@]}"; do
    for file in src/"$layer"/*.[ch]; do
        [ -e "$file" ] || continue
        module=$(basename "${file%.*}")
        while IFS= read -r header; do
            target=${header_layer[$header]:-}
            [ -n "$target" ] || continue
            if [ "${rank_of_layer[$target]}" -gt "${rank_of_layer[$layer]}" ]; then
                echo "check-layers: $file ($layer) includes $header ($target), a higher layer"
                violations=$((violations + 1))
            fi
            [ "${header%.h}" = "$module" ] || echo "${header%.h} $module" >>"$edges"
        done < <(sed -nE 's/^[[:space:]]*#[[:space:]]*include[[:space:]]+"([^"]+)".*/\1/p' "$file")
    done
done
if ! tsort "$edges" >/dev/null 2>"$edges.err"; then
    echo "check-layers: modules include each other in a circle:"
    sed 's/^/  /' "$edges.err"
    violations=$((violations + 1))
fi
rm -f "$edges.err"

if [ "$violations" -ne 0 ]; then
    echo "check-layers: $violations violation(s)"
    exit 1
fi
echo "check-layers: $(find src -name '*.[ch]' | wc -l) files in ${#LAYERS[@]} layers, every include points down or sideways, no circle"

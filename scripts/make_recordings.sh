#!/usr/bin/env bash
# Regenerate the shipped recordings: one real `MODE=auto` drill per incident on the local stack,
# its recording copied to incidents/<id>/recording.tar.gz when the drill passed.
#   make recordings                       every incident (about 6 minutes each; needs the engine)
#   make recordings INCIDENTS="kv-exhaustion slow-retrieval"
# SANDBOX overrides the command (default .venv/bin/sandbox).
set -uo pipefail
cd "$(dirname "$0")/.."
SANDBOX=${SANDBOX:-.venv/bin/sandbox}
ids=${INCIDENTS:-$(ls -d incidents/*/ | xargs -n1 basename)}
failed=()
for id in $ids; do
    out=$(mktemp -d "${TMPDIR:-/tmp}/sandbox-recording-$id.XXXXXX")
    echo "== $id: MODE=auto drill (report and recording in $out)"
    if $SANDBOX incident run "$id" --mode auto --report-dir "$out" && [ -f "$out/recording.tar.gz" ]; then
        cp "$out/recording.tar.gz" "incidents/$id/recording.tar.gz"
        echo "== $id: incidents/$id/recording.tar.gz ($(du -k "incidents/$id/recording.tar.gz" | cut -f1) KiB)"
    else
        echo "== $id: the drill failed; its recording is not shipped (see $out)"
        failed+=("$id")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "failed: ${failed[*]}"
    exit 1
fi

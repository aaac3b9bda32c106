#!/usr/bin/env bash
# ringstore vs peers vs the disk limit, in one run on one machine: the disk's own limits with
# tuning/fio-baseline.sh, then the same `ringstore bench` workloads against ringstore, the peers
# it starts (Garage, s3s-fs) and any running endpoints given, and a ratio table (tuning/compare.py).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"

usage() {
    cat <<'EOF_USAGE'
Usage: tuning/compare.sh [options]

One run, same machine, same client, same workloads:
  1. tuning/fio-baseline.sh in --data: the disk's limits (io_uring, O_DIRECT)
  2. ringstore serve --fsync always (from --binary), plus Garage (--garage BIN, durable:
     metadata_fsync and data_fsync on) and s3s-fs (--s3s-fs BIN; it never fsyncs), plus any
     --peer NAME=URL already running
  3. ringstore bench put-4k, get-4k, put-16m, get-16m and mixed against each (tuning/compare.py
     --help describes them), every report (JSON) and chart (SVG) kept in --out
  4. a markdown table, ratios first (ringstore / each peer, ringstore / disk limit), in
     OUT/compare.md and on stdout, with OUT/compare.json

Options:
  --binary PATH      ringstore binary (default target/release/ringstore; build it first)
  --data DIR         parent directory for the servers and fio, on the disk under test
                     (default bench-data/compare; what is made there is removed)
  --out DIR          reports, charts, fio JSON and the table (default target/compare)
  --garage PATH      start a single-node Garage from this binary
  --s3s-fs PATH      start s3s-fs from this binary
  --peer NAME=URL    include a running endpoint (repeatable; keys: see compare.py --help)
  --workloads LIST   comma list (default: all five)
  --duration SECS    seconds per workload and server (default 15)
  --fio-runtime SECS seconds per fio job (default 10)
  --skip-fio         do not run fio (no disk-limit column unless OUT/fio/summary.json exists)
  --dry-run          print every command; run nothing
  -h, --help         this help
EOF_USAGE
}

BINARY="$REPO/target/release/ringstore"
DATA="$REPO/bench-data/compare"
OUT="$REPO/target/compare"
FIO_RUNTIME=10
SKIP_FIO=0
DRY_RUN=0
PY_ARGS=()

need_value() {
    if [ $# -lt 2 ] || [ -z "$2" ]; then
        echo "compare.sh: $1 needs a value (see --help)" >&2
        exit 2
    fi
}

while [ $# -gt 0 ]; do
    case "$1" in
        --binary) need_value "$@"; BINARY=$2; shift ;;
        --data) need_value "$@"; DATA=$2; shift ;;
        --out) need_value "$@"; OUT=$2; shift ;;
        --garage|--s3s-fs|--peer|--workloads|--duration) need_value "$@"; PY_ARGS+=("$1" "$2"); shift ;;
        --fio-runtime) need_value "$@"; FIO_RUNTIME=$2; shift ;;
        --skip-fio) SKIP_FIO=1 ;;
        --dry-run) DRY_RUN=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "compare.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done

FIO=("$HERE/fio-baseline.sh" --dir "$DATA/fio" --out "$OUT/fio" --runtime "$FIO_RUNTIME" --size 512M)
PY=(python3 "$HERE/compare.py" --binary "$BINARY" --data "$DATA" --out "$OUT"
    --fio-summary "$OUT/fio/summary.json" "${PY_ARGS[@]}")

if [ "$DRY_RUN" = 1 ]; then
    echo "compare.sh: dry run; these would run:"
    [ "$SKIP_FIO" = 1 ] || "${FIO[@]}" --dry-run
    "${PY[@]}" --dry-run
    exit 0
fi
if [ ! -x "$BINARY" ]; then
    echo "compare.sh: $BINARY is not executable; build it (cargo build --release) or pass --binary" >&2
    exit 2
fi
mkdir -p "$DATA" "$OUT"
if [ "$SKIP_FIO" = 0 ]; then
    "${FIO[@]}" >&2
    rm -rf "$DATA/fio"
fi
"${PY[@]}"

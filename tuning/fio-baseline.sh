#!/usr/bin/env bash
# The disk's own limits, measured with fio (io_uring, O_DIRECT) in the directory ringstore would
# use: what a server on this disk can at best reach. Writes one fio JSON per job and a summary.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: tuning/fio-baseline.sh --dir DIR [options]

Runs fio with --ioengine=io_uring --direct=1 on files in DIR (on the disk under test; never tmpfs):
  seq-read     sequential read,  1 MiB blocks, iodepth 32
  seq-write    sequential write, 1 MiB blocks, iodepth 32
  rand-read    random read,  4 KiB blocks, iodepth 64
  rand-write   random write, 4 KiB blocks, iodepth 64
  write-sync   sequential write, 4 KiB blocks, fdatasync after every write (iodepth 1): the
               latency floor of a durable small PUT
Each job runs --runtime seconds with --jobs workers; results go to OUT/<job>.json (fio's JSON)
and OUT/summary.json, and a table (MiB/s, IOPS, p50/p99 latency) is printed.

Options:
  --dir DIR        directory for the test files (required; files are removed afterwards)
  --out DIR        where the JSON goes (default: target/fio-baseline)
  --size SIZE      file size per worker, fio syntax (default 1G)
  --runtime SECS   seconds per job (default 20)
  --jobs N         parallel workers per job (default: number of CPUs)
  --only LIST      comma list of jobs to run (default: all five)
  --dry-run        print the fio commands; run nothing, write nothing
  -h, --help       this help
EOF
}

DIR=""
OUT=target/fio-baseline
SIZE=1G
RUNTIME=20
JOBS=$(nproc)
ONLY="seq-read,seq-write,rand-read,rand-write,write-sync"
DRY_RUN=0

need_value() {
    if [ $# -lt 2 ] || [ -z "$2" ]; then
        echo "fio-baseline.sh: $1 needs a value (see --help)" >&2
        exit 2
    fi
}

while [ $# -gt 0 ]; do
    case "$1" in
        --dir) need_value "$@"; DIR=$2; shift ;;
        --out) need_value "$@"; OUT=$2; shift ;;
        --size) need_value "$@"; SIZE=$2; shift ;;
        --runtime) need_value "$@"; RUNTIME=$2; shift ;;
        --jobs) need_value "$@"; JOBS=$2; shift ;;
        --only) need_value "$@"; ONLY=$2; shift ;;
        --dry-run) DRY_RUN=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "fio-baseline.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done

if [ -z "$DIR" ]; then
    echo "fio-baseline.sh: --dir is required (a directory on the disk under test)" >&2
    exit 2
fi
for n in "$RUNTIME" "$JOBS"; do
    case "$n" in ''|*[!0-9]*|0) echo "fio-baseline.sh: '$n' is not a positive number" >&2; exit 2 ;; esac
done

# job_args NAME: fio arguments of one job.
job_args() {
    case "$1" in
        seq-read) echo "--rw=read --bs=1m --iodepth=32" ;;
        seq-write) echo "--rw=write --bs=1m --iodepth=32" ;;
        rand-read) echo "--rw=randread --bs=4k --iodepth=64" ;;
        rand-write) echo "--rw=randwrite --bs=4k --iodepth=64" ;;
        write-sync) echo "--rw=write --bs=4k --iodepth=1 --fdatasync=1" ;;
        *) return 1 ;;
    esac
}

IFS=, read -r -a SELECTED <<<"$ONLY"
for job in "${SELECTED[@]}"; do
    if ! job_args "$job" >/dev/null; then
        echo "fio-baseline.sh: unknown job '$job' (jobs: seq-read, seq-write, rand-read, rand-write, write-sync)" >&2
        exit 2
    fi
done

if [ "$DRY_RUN" = 0 ]; then
    command -v fio >/dev/null || { echo "fio-baseline.sh: fio is not installed (apt-get install fio)" >&2; exit 2; }
    mkdir -p "$DIR" "$OUT"
    if [ "$(stat -f -c %T "$DIR")" = tmpfs ]; then
        echo "fio-baseline.sh: $DIR is on tmpfs, which ignores O_DIRECT; pick a directory on the disk" >&2
        exit 2
    fi
fi

for job in "${SELECTED[@]}"; do
    # shellcheck disable=SC2046 # job_args is a word list on purpose
    cmd=(fio --name="$job" --directory="$DIR" --filename_format='fio-baseline.$jobnum' \
        --ioengine=io_uring --direct=1 --size="$SIZE" --numjobs="$JOBS" --time_based \
        --runtime="$RUNTIME" --ramp_time=2 --group_reporting --output-format=json \
        --output="$OUT/$job.json" $(job_args "$job"))
    if [ "$DRY_RUN" = 1 ]; then
        printf '%q ' "${cmd[@]}"
        echo
        continue
    fi
    echo "fio-baseline.sh: $job (${RUNTIME} s, $JOBS workers)..." >&2
    "${cmd[@]}"
done
[ "$DRY_RUN" = 1 ] && exit 0
rm -f "$DIR"/fio-baseline.*

python3 - "$OUT" "${SELECTED[@]}" <<'EOF'
import json, sys
out, jobs = sys.argv[1], sys.argv[2:]
summary = {}
print(f"{'job':<11} {'MiB/s':>9} {'IOPS':>10} {'p50 us':>9} {'p99 us':>9}")
for job in jobs:
    data = json.load(open(f"{out}/{job}.json"))["jobs"][0]
    side = data["read"] if data["read"]["io_bytes"] else data["write"]
    pct = side.get("clat_ns", {}).get("percentile", {})
    row = {
        "mib_per_s": side["bw_bytes"] / 2**20,
        "iops": side["iops"],
        "p50_us": pct.get("50.000000", 0) / 1000,
        "p99_us": pct.get("99.000000", 0) / 1000,
    }
    if job == "write-sync":
        sync = data.get("sync", {}).get("lat_ns", {})
        row["fdatasync_mean_us"] = sync.get("mean", 0) / 1000
    summary[job] = row
    print(f"{job:<11} {row['mib_per_s']:>9.1f} {row['iops']:>10.0f} {row['p50_us']:>9.1f} {row['p99_us']:>9.1f}")
json.dump(summary, open(f"{out}/summary.json", "w"), indent=2)
print(f"(fio JSON per job and summary.json in {out})")
EOF

#!/usr/bin/env bash
# Applies the host settings tuning/README.md recommends for benchmarking ringstore on NVMe.
# Idempotent: each setting is read first and written only when it differs; every line printed says
# what it found and what it did. `--dry-run` prints the same lines and changes nothing.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: tuning/apply.sh [--dry-run] [options]

Applies (as root) the benchmark-host settings of tuning/README.md, idempotently:
  - block devices: I/O scheduler `none`, read-ahead, nr_requests
  - IRQ affinity of each device's queues (and of --nic's) to --irq-cpus
  - CPU frequency governor on every CPU
  - memlock limit for io_uring (limits.d file; systemd units set LimitMEMLOCK themselves)
  - network sysctls: socket buffers, accept backlog, SYN backlog

Options:
  --dry-run              print every change it would make; change nothing (no root needed)
  --devices LIST         comma list of block devices (default: every nvme* device; e.g. nvme0n1,vdb)
  --read-ahead-kb N      read-ahead per device in KiB (default 128; O_DIRECT ignores it, other
                         readers of the disk do not)
  --nr-requests N        request queue depth per device (default 1023; capped by the device)
  --irq-cpus LIST        CPUs for device/NIC interrupts, e.g. 0-3 (default: leave IRQs alone)
  --nic NAME             network interface whose IRQs follow --irq-cpus (default: none)
  --governor NAME        CPU frequency governor (default performance)
  --memlock-user USER    user whose memlock limit becomes unlimited (default: root)
  --limits-file PATH     limits.d file to write (default /etc/security/limits.d/90-ringstore.conf)
  --sysctl-file PATH     sysctl.d file that makes the sysctls persistent
                         (default /etc/sysctl.d/90-ringstore.conf)
  -h, --help             this help

Exit status: 0 when everything is (or would be) as asked, 1 on a failed change, 2 on bad usage.
EOF
}

DRY_RUN=0
DEVICES=""
READ_AHEAD_KB=128
NR_REQUESTS=1023
IRQ_CPUS=""
NIC=""
GOVERNOR=performance
MEMLOCK_USER=root
LIMITS_FILE=/etc/security/limits.d/90-ringstore.conf
SYSCTL_FILE=/etc/sysctl.d/90-ringstore.conf
# Test hooks: a fake /sys and /proc tree (tests/tuning_scripts.rs proves idempotency on one).
SYSFS=${RINGSTORE_SYSFS_ROOT:-/sys}
PROCFS=${RINGSTORE_PROCFS_ROOT:-/proc}

need_value() {
    if [ $# -lt 2 ] || [ -z "$2" ]; then
        echo "apply.sh: $1 needs a value (see --help)" >&2
        exit 2
    fi
}

while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        --devices) need_value "$@"; DEVICES=$2; shift ;;
        --read-ahead-kb) need_value "$@"; READ_AHEAD_KB=$2; shift ;;
        --nr-requests) need_value "$@"; NR_REQUESTS=$2; shift ;;
        --irq-cpus) need_value "$@"; IRQ_CPUS=$2; shift ;;
        --nic) need_value "$@"; NIC=$2; shift ;;
        --governor) need_value "$@"; GOVERNOR=$2; shift ;;
        --memlock-user) need_value "$@"; MEMLOCK_USER=$2; shift ;;
        --limits-file) need_value "$@"; LIMITS_FILE=$2; shift ;;
        --sysctl-file) need_value "$@"; SYSCTL_FILE=$2; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "apply.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done

for n in "$READ_AHEAD_KB" "$NR_REQUESTS"; do
    case "$n" in ''|*[!0-9]*) echo "apply.sh: '$n' is not a number" >&2; exit 2 ;; esac
done
# (A fake sysfs root, as the tests use, needs no root.)
if [ "$DRY_RUN" = 0 ] && [ "$(id -u)" != 0 ] && [ -z "${RINGSTORE_SYSFS_ROOT:-}" ]; then
    echo "apply.sh: changing these settings needs root; run with sudo or use --dry-run" >&2
    exit 2
fi

FAILED=0
CHANGES=0

# set_file PATH WANTED [LABEL]: writes WANTED to a sysfs/procfs file unless it already holds it.
# A scheduler file reads like `mq-deadline [none]`: the bracketed word is the current value.
set_file() {
    local path=$1 wanted=$2 label=${3:-$1} current
    if [ ! -e "$path" ]; then
        echo "skip    $label: $path does not exist"
        return
    fi
    current=$(tr '\t' ' ' <"$path" 2>/dev/null || echo '?')
    if [[ $current == *"["*"]"* ]]; then
        current=$(sed -E 's/.*\[([^]]*)\].*/\1/' <<<"$current")
    fi
    if [ "$current" = "$wanted" ]; then
        echo "ok      $label = $wanted"
        return
    fi
    CHANGES=$((CHANGES + 1))
    if [ "$DRY_RUN" = 1 ]; then
        echo "change  $label: $current -> $wanted (dry run)"
    elif echo "$wanted" >"$path" 2>/dev/null; then
        echo "changed $label: $current -> $wanted"
    else
        echo "FAILED  $label: could not write $wanted to $path" >&2
        FAILED=1
    fi
}

# set_text PATH CONTENT LABEL: makes a config file hold exactly CONTENT.
set_text() {
    local path=$1 content=$2 label=$3
    if [ -f "$path" ] && [ "$(cat "$path")" = "$content" ]; then
        echo "ok      $label ($path)"
        return
    fi
    CHANGES=$((CHANGES + 1))
    if [ "$DRY_RUN" = 1 ]; then
        echo "change  $label: write $path (dry run):"
        sed 's/^/          /' <<<"$content"
    elif mkdir -p "$(dirname "$path")" && printf '%s\n' "$content" >"$path"; then
        echo "changed $label: wrote $path"
    else
        echo "FAILED  $label: could not write $path" >&2
        FAILED=1
    fi
}

block_devices() {
    if [ -n "$DEVICES" ]; then
        tr ',' '\n' <<<"$DEVICES"
        return
    fi
    local d
    for d in "$SYSFS"/block/nvme*; do
        [ -e "$d" ] && basename "$d"
    done
    return 0
}

tune_devices() {
    local found=0 dev q
    for dev in $(block_devices); do
        found=1
        q="$SYSFS/block/$dev/queue"
        set_file "$q/scheduler" none "$dev scheduler"
        set_file "$q/read_ahead_kb" "$READ_AHEAD_KB" "$dev read_ahead_kb"
        set_file "$q/nr_requests" "$NR_REQUESTS" "$dev nr_requests"
        tune_irqs "$dev"
    done
    if [ "$found" = 0 ]; then
        echo "skip    block devices: no nvme* device found (name them with --devices)"
    fi
}

# tune_irqs NAME: points every IRQ whose action names NAME (e.g. nvme0q1, eth0-TxRx-0) at --irq-cpus.
tune_irqs() {
    local name=$1 irq
    if [ -z "$IRQ_CPUS" ]; then
        echo "skip    $name IRQ affinity: no --irq-cpus given"
        return
    fi
    local base=${name%n[0-9]*} found=0
    for irq in $(awk -v n="$base" 'index($0, n) { sub(":", "", $1); print $1 }' "$PROCFS/interrupts"); do
        found=1
        set_file "$PROCFS/irq/$irq/smp_affinity_list" "$IRQ_CPUS" "IRQ $irq ($name) affinity"
    done
    if [ "$found" = 0 ]; then
        echo "skip    $name IRQ affinity: no interrupt in $PROCFS/interrupts names '$base'"
    fi
}

tune_cpus() {
    local gov found=0
    for gov in "$SYSFS"/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_governor; do
        [ -e "$gov" ] || continue
        found=1
        set_file "$gov" "$GOVERNOR" "$(basename "$(dirname "$(dirname "$gov")")") governor"
    done
    if [ "$found" = 0 ]; then
        echo "skip    CPU governor: no cpufreq on this machine (a VM or fixed clock)"
    fi
}

SYSCTLS=(
    "net.core.rmem_max=67108864"
    "net.core.wmem_max=67108864"
    "net.ipv4.tcp_rmem=4096 131072 67108864"
    "net.ipv4.tcp_wmem=4096 131072 67108864"
    "net.core.somaxconn=4096"
    "net.ipv4.tcp_max_syn_backlog=4096"
)

tune_sysctls() {
    local kv key value path persistent=""
    for kv in "${SYSCTLS[@]}"; do
        key=${kv%%=*}
        value=${kv#*=}
        path="$PROCFS/sys/${key//.//}"
        set_file "$path" "$value" "sysctl $key"
        persistent+="$key = $value"$'\n'
    done
    set_text "$SYSCTL_FILE" "${persistent%$'\n'}" "sysctls at boot"
}

tune_memlock() {
    set_text "$LIMITS_FILE" "$MEMLOCK_USER - memlock unlimited
$MEMLOCK_USER - nofile 1048576" "memlock and open files for $MEMLOCK_USER (new logins)"
    echo "note    current shell: ulimit -l = $(ulimit -l); systemd units: LimitMEMLOCK=infinity (tuning/ringstore.service)"
}

[ "$DRY_RUN" = 1 ] && echo "apply.sh: dry run, nothing is changed"
tune_devices
[ -n "$NIC" ] && tune_irqs "$NIC"
tune_cpus
tune_sysctls
tune_memlock
if [ "$DRY_RUN" = 1 ]; then
    echo "apply.sh: $CHANGES change(s) would be made"
else
    echo "apply.sh: $CHANGES change(s) made"
fi
exit "$FAILED"

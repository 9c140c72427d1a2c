#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for the slurm test tier (Debian 12, root, no systemd).
#
#   bash .ci/slurm.sh up     install slurmctld, slurmd, slurm-client and munge if missing, write
#                            /etc/slurm/slurm.conf for this host, start munged, slurmctld and slurmd
#                            from empty state, and wait until `sinfo` shows the node idle
#   bash .ci/slurm.sh down   cancel every job, then stop slurmd, slurmctld and munged by the PIDs
#                            in their pidfiles (a slurmstepd stuck on a hung step: by its PID)
#   bash .ci/slurm.sh diag   what to read when a test on this cluster failed: nodes and their
#                            reasons, the queue with pending reasons, the daemons' last log lines
#
# Both up and down are idempotent: `up` on a running cluster and `down` on a stopped one change
# nothing. A cluster that was killed rather than stopped (a machine's processes ended) leaves its
# state behind: `up` starts it empty, since its jobs' processes are gone and recovered jobs would
# be requeued onto the node the tests need. The daemons start with standard input, output and
# error on /dev/null: slurmd started with a closed standard input fails every batch launch
# ("launch_failed_requeued_held"), so CI's closed standard input must not reach it.
# Quiet when all goes well; on failure one line on stderr says what failed, and where its log is.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
RUN=/run/slurm
CTLD_PID=$RUN/slurmctld.pid
SLURMD_PID=$RUN/slurmd.pid
MUNGE_PID=/run/munge/munged.pid
LOG=/var/log/slurm
PARTITION=ci
APT_LOG=/tmp/slurm-ci-apt.log

die() { echo "slurm.sh: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (it installs packages and starts daemons)"

# the PID in pidfile $1 if that process is alive and runs executable $2, else nothing
live_pid() {
    local pid
    [ -s "$1" ] || return 0
    pid=$(tr -dc 0-9 < "$1")
    [ -n "$pid" ] && [ -e "/proc/$pid" ] || return 0
    [ "$(readlink -f "/proc/$pid/exe" 2>/dev/null)" = "$(readlink -f "$2")" ] && echo "$pid"
    return 0
}

# stop the daemon of pidfile $1 (executable $2): SIGTERM, then SIGKILL after 10 s
stop_pid() {
    local pid i
    pid=$(live_pid "$1" "$2")
    [ -n "$pid" ] || { rm -f "$1"; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 50); do [ -e "/proc/$pid" ] || break; sleep 0.2; done
    if [ -e "/proc/$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; sleep 0.5; fi
    [ -e "/proc/$pid" ] && die "$2 (PID $pid) does not exit"
    rm -f "$1"
}

install_packages() {
    dpkg -s slurmctld slurmd slurm-client munge >/dev/null 2>&1 && return 0
    export DEBIAN_FRONTEND=noninteractive
    apt-get update >"$APT_LOG" 2>&1 || die "apt-get update failed (see $APT_LOG)"
    apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge >>"$APT_LOG" 2>&1 \
        || die "apt-get install slurmctld slurmd slurm-client munge failed (see $APT_LOG)"
}

write_conf() {
    local host cpus mem_mb
    host=$(hostname -s)
    cpus=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)  # nproc obeys OMP_NUM_THREADS: CI sets it to 1
    mem_mb=$(awk '/^MemTotal:/ {printf "%d", $2 * 0.9 / 1024}' /proc/meminfo)
    mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd "$LOG" "$RUN"
    cat > "$CONF.new" <<EOF
# Written by .ci/slurm.sh: a one-node cluster for the slurm test tier.
ClusterName=ci
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
MpiDefault=none
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
KillWait=10
MinJobAge=60
GresTypes=gpu
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb Gres=gpu:1 State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    # one declared GPU without a device, so that a job may ask for --gres=gpu:1: the tests check
    # the GPU worker pool's routing here, not CUDA
    echo "NodeName=$host Name=gpu File=/dev/null Count=1" > /etc/slurm/gres.conf
    mv "$CONF.new" "$CONF"
}

start_munge() {
    [ -n "$(live_pid $MUNGE_PID /usr/sbin/munged)" ] && return 0
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge /etc/munge
    if [ ! -s /etc/munge/munge.key ]; then
        (umask 077; dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none)
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
    runuser -u munge -- /usr/sbin/munged </dev/null >/dev/null 2>&1 || die "munged does not start (see /var/log/munge/munged.log)"
    munge -n | unmunge >/dev/null 2>&1 || die "munge does not work: 'munge -n | unmunge' fails"
}

start_daemon() {  # $1 pidfile, $2 executable, $3 log
    local i
    [ -n "$(live_pid "$1" "$2")" ] && return 0
    "$2" </dev/null >/dev/null 2>&1 || die "$2 does not start (see $3)"
    for i in $(seq 50); do [ -n "$(live_pid "$1" "$2")" ] && return 0; sleep 0.2; done
    die "$2 did not write $1 (see $3)"
}

wait_idle() {
    local i state host
    host=$(hostname -s)
    for i in $(seq 120); do
        state=$(sinfo -h -n "$host" -o %T 2>/dev/null | head -n1 || true)
        case "$state" in
            idle|mixed|allocated|completing) return 0 ;;
            inval*) die "node $host is invalid: $(scontrol show node "$host" | grep -o 'Reason=.*') (see $LOG/slurmctld.log)" ;;
            down*|drain*) scontrol update NodeName="$host" State=RESUME >/dev/null 2>&1 || true ;;
        esac
        sleep 0.5
    done
    die "node $host is not idle after 60 s (sinfo says '${state:-nothing}'; see $LOG/slurmctld.log and $LOG/slurmd.log)"
}

# the step daemons of this node, by executable path
stepd_pids() {
    for p in /proc/[0-9]*; do
        [ "$(readlink -f "$p/exe" 2>/dev/null)" = "$(readlink -f /usr/sbin/slurmstepd)" ] && echo "${p#/proc/}"
    done || true
}

# a cluster that is not running starts empty: no recovered jobs, no stale step daemons
clear_state() {
    local pid
    for pid in $(stepd_pids); do kill -KILL "$pid" 2>/dev/null || true; done
    rm -rf /var/spool/slurmctld/* /var/spool/slurmd/*
}

up() {
    install_packages
    local running
    running=$(live_pid $CTLD_PID /usr/sbin/slurmctld)
    if [ -z "$running" ]; then
        [ -n "$(live_pid $SLURMD_PID /usr/sbin/slurmd)" ] && stop_pid $SLURMD_PID /usr/sbin/slurmd
        write_conf
        clear_state
    fi
    start_munge
    start_daemon $CTLD_PID /usr/sbin/slurmctld $LOG/slurmctld.log
    start_daemon $SLURMD_PID /usr/sbin/slurmd $LOG/slurmd.log
    wait_idle
}

down() {
    local i stepds pid
    if [ -n "$(live_pid $CTLD_PID /usr/sbin/slurmctld)" ]; then
        scancel --full --quiet --user=root 2>/dev/null || true
        for i in $(seq 60); do
            [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
            sleep 0.5
        done
    fi
    stepds=$(stepd_pids)  # killed by PID below if they outlive slurmd
    stop_pid $SLURMD_PID /usr/sbin/slurmd
    stop_pid $CTLD_PID /usr/sbin/slurmctld
    for pid in $stepds; do
        [ -e "/proc/$pid" ] || continue
        kill -TERM "$pid" 2>/dev/null || true
        sleep 2
        [ -e "/proc/$pid" ] && { echo "slurm.sh: slurmstepd $pid ignored SIGTERM, killing it" >&2; kill -KILL "$pid" 2>/dev/null || true; }
    done
    stop_pid $MUNGE_PID /usr/sbin/munged
}

diag() {
    local host
    host=$(hostname -s)
    echo "--- sinfo -R (nodes down or drained, and why)"; sinfo -R 2>&1 || true
    echo "--- scontrol show node $host"; scontrol show node "$host" 2>&1 | grep -E "State|Reason|Alloc|RealMemory" || true
    echo "--- squeue (state, reason)"; squeue -o "%.8i %.20j %.10T %.8M %R" 2>&1 || true
    echo "--- last lines of $LOG/slurmctld.log"; tail -n 30 "$LOG/slurmctld.log" 2>&1 || true
    echo "--- last lines of $LOG/slurmd.log"; tail -n 30 "$LOG/slurmd.log" 2>&1 || true
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    diag) diag ;;
    *) die "usage: bash .ci/slurm.sh up|down|diag" ;;
esac

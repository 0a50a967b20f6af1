#!/usr/bin/env bash
# A private, throw-away SLURM cluster of one node on loopback for the SLURM tests.
#
#   eval "$(bash scripts/test-slurm.sh start)"   # prints export lines, see below
#   bash scripts/test-slurm.sh stop              # stop the daemons and delete the directory
#
# `start` installs Debian's slurm-wlm and munge when they are missing (as root),
# then runs a private munged, slurmctld and slurmd from a fresh temporary
# directory: its own slurm.conf (one node `lrtnode` at 127.0.0.1 with 8 CPUs,
# one partition `debug`, requeue allowed), its own munge socket and free ports,
# so a system cluster, if any, is never touched. It prints:
#   export SLURM_CONF=<dir>/slurm.conf        (sbatch, squeue, scancel, scontrol read it)
#   export LRTRACK_TEST_SLURM_DIR=<dir>
# The daemons run as root (CI runs as root); not being root is an error.
set -euo pipefail

MARKER=.lrtrack-test-slurm  # only directories holding this file are ever stopped or deleted
NODE_CPUS=8

die() { echo "test-slurm.sh: $*" >&2; exit 1; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

install_missing() {
  local missing=()
  for pkg in slurm-wlm munge; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ "${#missing[@]}" -eq 0 ] && return
  [ "$(id -u)" = 0 ] || die "not root: cannot install ${missing[*]}"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

wait_for() {  # wait_for SECONDS COMMAND...: until the command succeeds
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

start() {
  [ "$(id -u)" = 0 ] || die "must run as root (slurmd starts jobs as their users)"
  install_missing
  local root
  root=$(mktemp -d "${TMPDIR:-/tmp}/lrtrack-slurm.XXXXXX")
  chmod 755 "$root"
  touch "$root/$MARKER"
  mkdir -p "$root/state" "$root/spool" "$root/munge"

  # munge: a key of our own and a private daemon (its socket in our directory)
  dd if=/dev/urandom of="$root/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$root/munge/munge.key"
  /usr/sbin/munged --force --key-file="$root/munge/munge.key" --socket="$root/munge/socket" \
    --pid-file="$root/munge/munged.pid" --log-file="$root/munge/munged.log" --seed-file="$root/munge/seed" \
    || { cat "$root/munge/munged.log" >&2; die "munged did not start"; }

  cat > "$root/slurm.conf" <<EOF
ClusterName=lrtrack-test
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# cred_expire: how long a requeued job waits before it may start again (default 120 s)
AuthInfo=socket=$root/munge/socket,cred_expire=5
CredType=cred/munge
StateSaveLocation=$root/state
SlurmdSpoolDir=$root/spool/%n
SlurmctldPidFile=$root/slurmctld.pid
SlurmdPidFile=$root/slurmd.pid
SlurmctldLogFile=$root/slurmctld.log
SlurmdLogFile=$root/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
MpiDefault=none
ReturnToService=2
JobRequeue=1
KillWait=30
MinJobAge=300
SlurmdParameters=config_overrides
NodeName=lrtnode NodeAddr=127.0.0.1 NodeHostname=$(hostname) CPUs=$NODE_CPUS State=UNKNOWN
PartitionName=debug Nodes=lrtnode Default=YES MaxTime=INFINITE State=UP
EOF
  export SLURM_CONF=$root/slurm.conf
  /usr/sbin/slurmctld -f "$SLURM_CONF" -i || { cat "$root/slurmctld.log" >&2; die "slurmctld did not start"; }
  wait_for 30 scontrol ping || { cat "$root/slurmctld.log" >&2; die "slurmctld does not answer"; }
  /usr/sbin/slurmd -f "$SLURM_CONF" -N lrtnode || { cat "$root/slurmd.log" >&2; die "slurmd did not start"; }
  wait_for 30 sh -c 'sinfo -h -N -o %T | grep -qE "^idle"' \
    || { sinfo -N >&2; cat "$root/slurmd.log" >&2; die "the node did not come up idle"; }

  echo "export SLURM_CONF=$SLURM_CONF"
  echo "export LRTRACK_TEST_SLURM_DIR=$root"
}

stop_pidfile() {  # stop the daemon whose pid is in FILE, waiting up to 10 s
  local pid
  [ -f "$1" ] || return 0
  pid=$(cat "$1")
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  kill -9 "$pid" 2>/dev/null || true
}

stop() {
  local root=${LRTRACK_TEST_SLURM_DIR:-}
  [ -n "$root" ] || die "LRTRACK_TEST_SLURM_DIR is not set (eval the output of 'start' first)"
  [ -f "$root/$MARKER" ] || die "$root was not made by this script; refusing to touch it"
  export SLURM_CONF=$root/slurm.conf
  scancel --full --quiet --user=root 2>/dev/null || true
  stop_pidfile "$root/slurmd.pid"
  stop_pidfile "$root/slurmctld.pid"
  stop_pidfile "$root/munge/munged.pid"
  rm -rf -- "$root"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Start a real single-node Slurm cluster on this machine (for `spectramind train env=hpc --multirun`
# and the tests marked `slurm`): Debian's slurm-wlm and munge, with slurmdbd on MariaDB so that
# `sacct` reports job states (submitit, behind Hydra's launcher, polls sacct; without accounting a
# cancelled job is never seen to end). Idempotent: when the cluster is up it only says so.
# No systemd is assumed: the daemons are started directly. Needs root to install and start.
# Exit 0 when the node is idle and sacct answers; non-zero with the reason otherwise.
set -euo pipefail

CLUSTER=spectramind
MARK="# written by bin/slurm-up.sh"
CONF=/etc/slurm/slurm.conf
DBD_CONF=/etc/slurm/slurmdbd.conf
LOGS=/var/log/slurm
NODE=$(hostname -s)

say() { echo "slurm-up: $*" >&2; }
die() { say "cannot start Slurm: $*"; exit 1; }

# Seconds until `$@` succeeds, at most $1 tries half a second apart.
wait_for() {
  local tries=$1
  shift
  for _ in $(seq "$tries"); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  return 1
}

node_ready() { sinfo -h -n "$NODE" -o %T 2>/dev/null | grep -Eq '^(idle|mixed|allocated)'; }
accounting_ready() { sacct -n -X -S now-1minutes >/dev/null 2>&1; }

if node_ready && accounting_ready; then
  say "cluster '$(scontrol show config 2>/dev/null | awk '/^ClusterName/ {print $3}')' is up (node $NODE $(sinfo -h -n "$NODE" -o %T))"
  exit 0
fi
[ "$(id -u)" = 0 ] || die "not running as root (needed to install and start slurmctld, slurmd, munged); run: sudo bash bin/slurm-up.sh"
if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
  die "$CONF exists and was not written by this script; it belongs to another cluster, left untouched"
fi

if ! command -v slurmctld >/dev/null || ! command -v slurmdbd >/dev/null || ! command -v munged >/dev/null \
  || ! command -v mariadbd >/dev/null; then
  command -v apt-get >/dev/null || die "slurm-wlm, slurmdbd, munge and mariadb-server are missing and there is no apt-get"
  say "installing slurm-wlm, slurmdbd, munge, mariadb-server (apt-get)"
  apt-get update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    slurm-wlm slurmdbd munge mariadb-server >/dev/null || die "apt-get install slurm-wlm slurmdbd munge mariadb-server failed"
fi

# munge: the key and the daemon (as its own user).
mkdir -p /etc/munge /run/munge /var/log/munge /var/lib/munge
[ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge
chmod 0700 /etc/munge && chmod 0400 /etc/munge/munge.key
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  say "starting munged"
  runuser -u munge -- munged --force || die "munged did not start (see /var/log/munge/munged.log)"
  wait_for 20 sh -c 'munge -n | unmunge' || die "munge credentials do not round-trip (see /var/log/munge/munged.log)"
fi

# MariaDB for slurmdbd: root connects through the local socket (unix_socket auth), so no password exists.
mkdir -p "$LOGS" /run/mysqld && chown mysql:mysql /run/mysqld
if ! mariadb-admin ping >/dev/null 2>&1; then
  [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql >/dev/null || die "mariadb-install-db failed"
  say "starting mariadbd"
  setsid mariadbd --user=mysql --bind-address=127.0.0.1 >>"$LOGS/mariadb.log" 2>&1 < /dev/null &
  wait_for 60 mariadb-admin ping || die "mariadbd did not answer (see $LOGS/mariadb.log)"
fi

mkdir -p /var/spool/slurmctld /var/spool/slurmd
cpus=$(nproc)
mem_mb=$(awk '/^MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
write_if_changed() {  # path, mode, content on stdin; prints "changed" when it rewrote the file
  local tmp
  tmp=$(mktemp "$1.XXXXXX")
  cat >"$tmp"
  chmod "$2" "$tmp"
  if cmp -s "$tmp" "$1" 2>/dev/null; then rm -f "$tmp"; else mv -f "$tmp" "$1" && echo changed; fi
}
dbd_changed=$(write_if_changed "$DBD_CONF" 600 <<EOF
$MARK
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=root
StorageLoc=slurm_acct_db
LogFile=$LOGS/slurmdbd.log
PidFile=/run/slurmdbd.pid
EOF
)
# No cgroups (containers rarely delegate them): linuxproc tracking, no task plugin.
conf_changed=$(write_if_changed "$CONF" 644 <<EOF
$MARK
ClusterName=$CLUSTER
SlurmctldHost=$NODE
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=600
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
NodeName=$NODE CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
)

# A daemon (found by its pid file) is restarted when its config changed, started when not running.
running() { [ -s "/run/$1.pid" ] && kill -0 "$(cat "/run/$1.pid")" 2>/dev/null; }
restart() {  # name, changed-flag, start command...
  local name=$1 changed=$2
  shift 2
  if running "$name"; then
    [ -z "$changed" ] && return 0
    say "restarting $name (its config changed)"
    kill "$(cat "/run/$name.pid")" || true
    wait_for 20 sh -c "! kill -0 $(cat "/run/$name.pid") 2>/dev/null" || die "$name did not stop"
  else
    say "starting $name"
  fi
  "$@" || die "$name did not start (see $LOGS/$name.log)"
}
restart slurmdbd "$dbd_changed" slurmdbd
wait_for 60 sacctmgr -n list cluster || die "slurmdbd does not answer (see $LOGS/slurmdbd.log)"
sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER" \
  || sacctmgr -i add cluster "$CLUSTER" >/dev/null || die "sacctmgr could not add cluster $CLUSTER"
restart slurmctld "$conf_changed" slurmctld
wait_for 60 scontrol ping || die "slurmctld does not answer (see $LOGS/slurmctld.log)"
restart slurmd "$conf_changed" slurmd
if ! wait_for 60 node_ready; then
  scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true
  wait_for 20 node_ready || die "node $NODE is $(sinfo -h -n "$NODE" -o '%T %E') (see $LOGS/slurmd.log)"
fi
wait_for 60 accounting_ready || die "sacct does not answer (see $LOGS/slurmdbd.log)"
say "cluster '$CLUSTER' is up: node $NODE, $cpus CPUs, ${mem_mb} MB, partition debug"

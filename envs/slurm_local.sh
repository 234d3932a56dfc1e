#!/usr/bin/env bash
# A real one-node SLURM cluster with accounting on this machine: what the SLURM test
# (tests/workflow/test_slurm.py) runs the pipeline on, and a way to try the SLURM profile
# (docs/cluster.md) without a cluster. Debian 12 (slurm-wlm 22.05), root, no systemd needed.
#
# Usage: envs/slurm_local.sh start|stop|status
#   start   install slurm-wlm, munge, slurmdbd and mariadb-server when missing (apt-get),
#           write /etc/slurm/slurm.conf and slurmdbd.conf for one node (this machine's CPUs
#           and memory), start munged, mariadbd, slurmdbd, slurmctld and slurmd, register
#           the account, and wait until the node is idle. Idempotent: running daemons are kept.
#   stop    stop the daemons that `start` started (by the pids it recorded), nothing else.
#   status  say which daemons run and what sinfo shows; exit 0 when the node is up, 3 if not.
#
# Environment (optional):
#   SLURM_LOCAL_ACCOUNT    account created for root (default: pipeline)
#   SLURM_LOCAL_PARTITION  the one partition (default: local)
#   SLURM_LOCAL_TIMEOUT    seconds to wait for each daemon and for the node (default: 60)
# Ports: slurmctld 6817, slurmd 6818, slurmdbd 6819, MariaDB 3306 (127.0.0.1 only).
# Jobs then need `-A <account>`: the SLURM profile reads it from $SBATCH_ACCOUNT.
set -euo pipefail

ACCOUNT=${SLURM_LOCAL_ACCOUNT:-pipeline}
PARTITION=${SLURM_LOCAL_PARTITION:-local}
TIMEOUT=${SLURM_LOCAL_TIMEOUT:-60}
CLUSTER=local
STATE_DIR=/run/slurm_local        # pids of the daemons this script started (gone after a reboot)
CONF_DIR=/etc/slurm
LOG_DIR=/var/log/slurm
MARKER="# Written by envs/slurm_local.sh (one-node test cluster); 'stop' leaves it in place."
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)   # start order; stop is the reverse

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
log() { echo "[slurm_local] $*"; }
die() { echo "[slurm_local] ERROR: $*" >&2; exit 1; }

pidfile_of() {
    case $1 in
        munged) echo /run/munge/munged.pid ;;
        mariadbd) echo /run/mysqld/mysqld.pid ;;
        *) echo "/run/$1.pid" ;;
    esac
}
port_of() {
    case $1 in
        mariadbd) echo 3306 ;; slurmdbd) echo 6819 ;; slurmctld) echo 6817 ;; slurmd) echo 6818 ;; *) echo "" ;;
    esac
}

# pid of a running daemon NAME whose pid file names a live process called NAME, else nothing
running_pid() {
    local f pid
    f=$(pidfile_of "$1")
    [[ -r $f ]] || return 1
    pid=$(tr -dc '0-9' < "$f")
    [[ -n $pid && -r /proc/$pid/comm && $(< "/proc/$pid/comm") == "$1" ]] || return 1
    echo "$pid"
}

# true when something listens on TCP port $1 (any address), read from /proc (no tools needed)
port_in_use() {
    local hex
    hex=$(printf ':%04X' "$1")
    awk -v p="$hex" 'FNR > 1 && $4 == "0A" && toupper(substr($2, length($2) - 4)) == p { found = 1 }
                     END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

wait_for() {  # wait_for WHAT COMMAND...: retry COMMAND for $TIMEOUT s
    local what=$1; shift
    local deadline=$((SECONDS + TIMEOUT))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

tail_log() { [[ -f $1 ]] && { echo "--- last lines of $1:" >&2; tail -n 15 "$1" >&2; }; return 0; }

require_root() {
    [[ $(id -u) -eq 0 ]] || die "must run as root (it installs packages, writes /etc/slurm and starts daemons); try: sudo $0 $*"
}

install_packages() {
    local missing=()
    [[ -x /usr/sbin/slurmctld && -x /usr/sbin/slurmd && -x /usr/bin/sbatch ]] || missing+=(slurm-wlm)
    [[ -x /usr/sbin/munged ]] || missing+=(munge)
    [[ -x /usr/sbin/slurmdbd ]] || missing+=(slurmdbd)
    [[ -x /usr/sbin/mariadbd ]] || missing+=(mariadb-server)
    ((${#missing[@]})) || return 0
    command -v apt-get >/dev/null || die "packages ${missing[*]} are missing and there is no apt-get: install them with your package manager"
    log "installing ${missing[*]} (apt-get)"
    # No package may start a daemon on its own: every daemon is started (and stopped) here.
    local policy=/usr/sbin/policy-rc.d own_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && own_policy=1
    fi
    local rc=0
    { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } || rc=$?
    ((own_policy)) && rm -f "$policy"
    ((rc == 0)) || die "apt-get could not install ${missing[*]} (exit $rc): check that Debian's package repositories are reachable"
}

check_port_free() {  # NAME: the daemon is not running; its port must be free
    local port
    port=$(port_of "$1")
    [[ -z $port ]] && return 0
    if port_in_use "$port"; then
        local who=""
        command -v ss >/dev/null && who=$(ss -Hltnp "sport = :$port" 2>/dev/null | head -n 2)
        die "port $port, which $1 needs, is taken by another process${who:+ ($who)}; stop that process (or the SLURM/MariaDB it belongs to) and run '$0 start' again"
    fi
}

record() { mkdir -p "$STATE_DIR"; echo "$2" > "$STATE_DIR/$1.pid"; }

start_munged() {
    if running_pid munged >/dev/null; then return 0; fi
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge
    if [[ ! -s /etc/munge/munge.key ]]; then
        log "creating /etc/munge/munge.key"
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
    chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    runuser -u munge -- /usr/sbin/munged || die "munged did not start (see /var/log/munge/munged.log)"
    wait_for munged running_pid munged || die "munged wrote no pid file within ${TIMEOUT} s"
    record munged "$(running_pid munged)"
    log "munged started (pid $(running_pid munged))"
}

start_mariadbd() {
    if ! running_pid mariadbd >/dev/null; then
        check_port_free mariadbd
        install -d -o mysql -g mysql -m 0755 /run/mysqld
        if [[ ! -d /var/lib/mysql/mysql ]]; then
            log "initialising the MariaDB data directory"
            mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null 2>&1 ||
                die "mariadb-install-db failed: remove /var/lib/mysql if it is a broken leftover and run '$0 start' again"
        fi
        setsid /usr/sbin/mariadbd --user=mysql --bind-address=127.0.0.1 --port=3306 \
            --pid-file=/run/mysqld/mysqld.pid --socket=/run/mysqld/mysqld.sock \
            --log-error="$LOG_DIR/mariadb.log" </dev/null >/dev/null 2>&1 &
        wait_for mariadbd mariadb-admin --socket=/run/mysqld/mysqld.sock ping ||
            { tail_log "$LOG_DIR/mariadb.log"; die "MariaDB did not answer within ${TIMEOUT} s"; }
        wait_for mariadbd running_pid mariadbd || die "MariaDB wrote no pid file within ${TIMEOUT} s"
        record mariadbd "$(running_pid mariadbd)"
        log "mariadbd started (pid $(running_pid mariadbd))"
    fi
}

# StoragePass of our slurmdbd.conf, or a new random one
db_password() {
    local f=$CONF_DIR/slurmdbd.conf
    if [[ -f $f ]] && grep -qF "$MARKER" "$f"; then
        sed -n 's/^StoragePass=//p' "$f"
    else
        od -An -N12 -tx1 /dev/urandom | tr -d ' \n'
    fi
}

check_ours() {  # FILE: refuse to overwrite a configuration this script did not write
    [[ ! -e $1 ]] || grep -qF "$MARKER" "$1" ||
        die "$1 exists and was not written by this script: this machine has its own SLURM set-up; use it (docs/cluster.md), or move $1 away to run the one-node test cluster"
}

write_slurmdbd_conf() {
    local pass=$1
    cat > "$CONF_DIR/slurmdbd.conf.new" <<EOF
$MARKER
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=root
LogFile=$LOG_DIR/slurmdbd.log
PidFile=/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StoragePort=3306
StorageUser=slurm
StoragePass=$pass
StorageLoc=slurm_acct_db
EOF
    chmod 600 "$CONF_DIR/slurmdbd.conf.new"
    mv "$CONF_DIR/slurmdbd.conf.new" "$CONF_DIR/slurmdbd.conf"
}

write_slurm_conf() {
    local host cpus mem_mb
    host=$(hostname -s)
    cpus=$(nproc)
    # what slurmd will find, less 5% for the system: a node configured with more memory than
    # it has is drained ("Low RealMemory")
    mem_mb=$(free -m | awk '/^Mem:/ { printf "%d", $2 * 0.95 }')
    cat > "$CONF_DIR/slurm.conf.new" <<EOF
$MARKER
ClusterName=$CLUSTER
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=600
# per-job CPU time and peak memory (MaxRSS) in sacct, sampled every 10 s (docs/cluster.md, paper-scale plan)
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=10
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
# sacct shows each job's --comment: the SLURM executor plugin writes rule_<rule>_wildcards_<...> there
AccountingStoreFlags=job_comment
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    mv "$CONF_DIR/slurm.conf.new" "$CONF_DIR/slurm.conf"
}

start_slurm_daemon() {  # NAME [ARGS...]: a forking SLURM daemon
    local name=$1; shift
    if running_pid "$name" >/dev/null; then return 0; fi
    check_port_free "$name"
    "/usr/sbin/$name" "$@" || { tail_log "$LOG_DIR/$name.log"; die "$name did not start"; }
    wait_for "$name" running_pid "$name" || { tail_log "$LOG_DIR/$name.log"; die "$name wrote no pid file within ${TIMEOUT} s"; }
    record "$name" "$(running_pid "$name")"
    log "$name started (pid $(running_pid "$name"))"
}

node_state() { sinfo -h -n "$(hostname -s)" -o %T 2>/dev/null | head -n 1; }
node_usable() { [[ $(node_state) =~ ^(idle|mixed|allocated|completing)$ ]]; }

cmd_start() {
    require_root start
    install_packages
    check_ours "$CONF_DIR/slurm.conf"
    check_ours "$CONF_DIR/slurmdbd.conf"
    local name
    for name in "${DAEMONS[@]}"; do  # before starting anything: every port we will need is free
        running_pid "$name" >/dev/null || check_port_free "$name"
    done
    install -d -m 0755 "$CONF_DIR" "$LOG_DIR" /var/spool/slurmctld /var/spool/slurmd
    start_munged
    munge -n | unmunge >/dev/null 2>&1 || die "munge does not work (munge -n | unmunge failed); see /var/log/munge/munged.log"
    start_mariadbd

    local pass
    pass=$(db_password)
    mariadb --socket=/run/mysqld/mysqld.sock -e "
        CREATE DATABASE IF NOT EXISTS slurm_acct_db;
        CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$pass';
        ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$pass';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';" ||
        die "could not create the accounting database in MariaDB (see $LOG_DIR/mariadb.log)"
    if ! running_pid slurmdbd >/dev/null; then write_slurmdbd_conf "$pass"; fi
    if ! running_pid slurmctld >/dev/null && ! running_pid slurmd >/dev/null; then write_slurm_conf; fi

    start_slurm_daemon slurmdbd
    wait_for slurmdbd sacctmgr -n list cluster ||
        { tail_log "$LOG_DIR/slurmdbd.log"; die "slurmdbd does not answer sacctmgr within ${TIMEOUT} s"; }
    # cluster, account and root's association before slurmctld starts (sacctmgr needs only slurmdbd)
    [[ -n $(sacctmgr -n -P list cluster "$CLUSTER" format=cluster) ]] || sacctmgr -i -Q add cluster "$CLUSTER" >/dev/null
    [[ -n $(sacctmgr -n -P list account "$ACCOUNT" format=account) ]] || sacctmgr -i -Q add account "$ACCOUNT" Cluster="$CLUSTER" >/dev/null
    [[ -n $(sacctmgr -n -P list assoc user=root account="$ACCOUNT" format=account) ]] ||
        sacctmgr -i -Q add user root Account="$ACCOUNT" Cluster="$CLUSTER" >/dev/null

    start_slurm_daemon slurmctld
    wait_for slurmctld scontrol ping || { tail_log "$LOG_DIR/slurmctld.log"; die "slurmctld does not answer within ${TIMEOUT} s"; }
    start_slurm_daemon slurmd
    if ! wait_for node node_usable; then
        tail_log "$LOG_DIR/slurmd.log"; tail_log "$LOG_DIR/slurmctld.log"
        die "node $(hostname -s) is '$(node_state)', not idle, after ${TIMEOUT} s (sinfo -R: $(sinfo -h -R 2>/dev/null | head -n 1))"
    fi
    log "up: node $(hostname -s) ($(nproc) CPUs) $(node_state) in partition '$PARTITION'; submit with account '$ACCOUNT' (export SBATCH_ACCOUNT=$ACCOUNT)"
}

cmd_stop() {
    require_root stop
    local i name pid file stopped=0
    for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do
        name=${DAEMONS[i]}
        file=$STATE_DIR/$name.pid
        [[ -f $file ]] || continue
        pid=$(tr -dc '0-9' < "$file")
        if [[ -n $pid && -r /proc/$pid/comm && $(< "/proc/$pid/comm") == "$name" ]]; then
            kill -TERM "$pid" 2>/dev/null || true
            local deadline=$((SECONDS + 30))
            while [[ -e /proc/$pid ]] && ((SECONDS < deadline)); do sleep 0.2; done
            if [[ -e /proc/$pid ]]; then
                log "$name (pid $pid) did not stop within 30 s: killing it"
                kill -KILL "$pid" 2>/dev/null || true
            fi
            log "$name stopped (pid $pid)"
            stopped=$((stopped + 1))
        fi
        rm -f "$file"
    done
    ((stopped)) || log "nothing to stop: no daemon started by this script is running"
}

cmd_status() {
    local name pid up=1 how
    for name in "${DAEMONS[@]}"; do
        if pid=$(running_pid "$name"); then
            how="started by someone else"
            [[ -f $STATE_DIR/$name.pid && $(< "$STATE_DIR/$name.pid") == "$pid" ]] && how="started by this script"
            echo "$name: running (pid $pid, $how)"
        else
            echo "$name: not running"; up=0
        fi
    done
    if ((up)) && node_usable; then
        echo "node $(hostname -s): $(node_state) (partition $(sinfo -h -o %P | head -n 1))"
        return 0
    fi
    echo "cluster: not up (start it with: $0 start)"
    return 3
}

case ${1:-} in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    -h | --help | help) usage ;;
    *) usage >&2; echo >&2; die "unknown or missing command '${1:-}': use start, stop or status" ;;
esac

#!/usr/bin/env bash
# The Slurm integration test (issue 17): a real single-node Slurm (Debian's slurm-wlm and munge,
# started here, localhost only) runs the scripts `sb slurm` writes; the merged table must equal
# the unsharded run's. Installs the packages when they are missing (root, apt), starts munged,
# slurmctld and slurmd from a temporary folder, and stops them at exit.
#   tests/slurm/run.sh [path/to/sb]     (default: target/debug/sb, built by `cargo test`)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
sb=$(realpath "${1:-$root/target/debug/sb}")
[ -x "$sb" ] || { echo "slurm test: no sb binary at $sb (run cargo build -p sb-cli first)" >&2; exit 1; }
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  echo "slurm test: installing slurm-wlm and munge" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q slurm-wlm munge >/dev/null 2>&1 || {
    apt-get update -q >/dev/null && apt-get install -y -q slurm-wlm munge >/dev/null
  }
fi
work=$(mktemp -d /tmp/sb-slurm.XXXXXX)
cleanup() {
  [ -n "${SLURM_CONF:-}" ] && scontrol shutdown >/dev/null 2>&1 || true
  [ -f "$work/munged.pid" ] && kill "$(cat "$work/munged.pid")" 2>/dev/null || true
  sleep 1
  rm -rf "$work"
}
trap cleanup EXIT

# munge: a key of our own, the daemon on a socket in the work folder.
mkdir -p "$work/munge"
dd if=/dev/urandom of="$work/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$work/munge/munge.key"
munged --force --key-file="$work/munge/munge.key" --socket="$work/munge/socket" \
  --pid-file="$work/munged.pid" --log-file="$work/munge/log" --seed-file="$work/munge/seed"
host=$(hostname -s)
mkdir -p "$work/state" "$work/spool"
cat >"$work/slurm.conf" <<CONF
ClusterName=sbtest
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$work/munge/socket
CredType=cred/munge
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
NodeName=$host CPUs=$(nproc) State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$work/slurm.conf"
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
for _ in $(seq 60); do
  sinfo -h -o %t 2>/dev/null | grep -q idle && break
  sleep 1
done
sinfo -h -o %t | grep -q idle || { echo "slurm test: the node never became idle" >&2; cat "$work"/*.log >&2; exit 1; }

# A small two-problem experiment, four jobs.
cat >"$work/tiny.yaml" <<'YAML'
name: tiny
seeds: [3, 4]
problems:
  - name: gauss
    sigma: 1.0
    pi0: {kind: gaussian, dim: 2, mean: -1.0, cov: 0.5}
    pi1: {kind: gaussian, dim: 2, mean: 1.0, cov: 1.0}
methods:
  - method: {kind: dsb, num_steps: 5}
    net: {hidden: [16]}
    train: {passes: 2, steps_per_pass: 20, batch_size: 32, lr: 1.0e-3, cache_size: 64}
  - method: {kind: dsbm, num_steps: 5, first_coupling: reference}
    net: {hidden: [16], time: concat}
    train: {passes: 2, steps_per_pass: 20, batch_size: 32, lr: 1.0e-3, cache_size: 64}
eval:
  samples: 50
  metrics: [w2, w1]
YAML
"$sb" slurm "$work/tiny.yaml" --jobs 3 --cpus 1 --out "$work/slurm" --sb "$sb"
sh "$work/slurm/submit.sh"
for _ in $(seq 300); do
  [ -z "$(squeue -h 2>/dev/null)" ] && break
  sleep 1
done
[ -z "$(squeue -h)" ] || { echo "slurm test: jobs still queued after 300 s" >&2; squeue >&2; exit 1; }
[ -f "$work/slurm/report/report.json" ] || {
  echo "slurm test: no merged report" >&2; cat "$work"/slurm/logs/* >&2; exit 1; }

# Each task ran its own shard, read from Slurm's environment (no --shard on its command line).
for i in 0 1 2; do
  grep -q "shard: $i/3" "$work/slurm/shard-$i/run.yaml" || {
    echo "slurm test: shard-$i did not run shard $i/3" >&2; cat "$work/slurm/shard-$i/run.yaml" >&2; exit 1; }
done

# The same experiment unsharded, and the two tables compared (wall times aside).
"$sb" run "$work/tiny.yaml" --out "$work/whole" --quiet >/dev/null
"$sb" report "$work/whole" --out "$work/whole-report" >/dev/null
strip() { sed -E 's/"wall_s": [0-9.e+-]+/"wall_s": 0/' "$1"; }
if ! diff <(strip "$work/whole-report/report.json") <(strip "$work/slurm/report/report.json") >&2; then
  echo "slurm test: the merged table differs from the unsharded run's" >&2
  exit 1
fi
echo "slurm test: 3 array tasks and the merge job ran on a local Slurm; the merged table equals the unsharded run's"

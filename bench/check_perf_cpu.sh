#!/bin/bash
# Server CPU (utime+stime, /proc/<pid>/stat) spent during a 10-second
# `etcdppctl check perf --load s`, next to the 1-minute load average before
# and after, and the run's verdict lines.
# usage: bench/check_perf_cpu.sh <server pid> <endpoint> <label>
# ETCDPPCTL (default build/bin/etcdppctl) names the client binary.
pid=$1; ep=$2; label=$3
ctl=${ETCDPPCTL:-build/bin/etcdppctl}
tick=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' /proc/$pid/stat; }
l0=$(cut -d' ' -f1 /proc/loadavg); c0=$(cpu)
out=$(ETCDPPCTL_CHECK_PERF_SECONDS=10 $ctl --endpoints $ep check perf --load s | tr '\r' '\n' | tail -4 | tr '\n' ' ')
c1=$(cpu); l1=$(cut -d' ' -f1 /proc/loadavg)
echo "$label: server CPU $(( (c1-c0)*1000/tick )) ms; load1 $l0/$l1; $out"

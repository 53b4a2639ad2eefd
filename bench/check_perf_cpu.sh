#!/bin/bash
# usage: cpu.sh <server pid> <endpoint> <label>
pid=$1; ep=$2; label=$3
tick=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' /proc/$pid/stat; }
l0=$(cut -d' ' -f1 /proc/loadavg); c0=$(cpu)
out=$(ETCDPPCTL_CHECK_PERF_SECONDS=10 /work/wt-ctlops/build/bin/etcdppctl --endpoints $ep check perf --load s | tr '\r' '\n' | tail -4 | tr '\n' ' ')
c1=$(cpu); l1=$(cut -d' ' -f1 /proc/loadavg)
echo "$label: server CPU $(( (c1-c0)*1000/tick )) ms for ~1500 puts (+1 delete-range); load1 $l0/$l1; $out"

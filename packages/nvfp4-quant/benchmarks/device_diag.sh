#!/bin/bash
# One device call (from the repo root) for a case the full run does not cover
# well: every carried build ($1/variants/<name>/_C.so) is timed on
# NVQ_VARIANT_MS x NVQ_VARIANT_KS (default M = 1024, 4096, 16384; K = 7168,
# 14336) and profiled by ncu on profile_one.py's NVQ_PROFILE case (default the
# MoE op at M=1024, K=7168: 4 rows per expert); then the tests run on
# NVQ_TEST_BUILD (default: the last variant) and warp-stall counters are read
# for NVQ_STALL_BUILDS. Logs go to $OUT; every step has its own time limit.
set -o pipefail
CARRY=${1:-.carry/nvq}
PKG=packages/nvfp4-quant
DST=$PKG/src/lowbit/nvfp4_quant
export PYTHONPATH=packages/cutlass-ext/src:$PKG/src:shared/src PYTHONUNBUFFERED=1
export NVQ_VARIANT_MS=${NVQ_VARIANT_MS:-1024,4096,16384} NVQ_VARIANT_KS=${NVQ_VARIANT_KS:-7168,14336}
PROFILE=${NVQ_PROFILE:-1024 7168 experts,silu_experts}
BASE=gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum,lts__t_sectors_op_write.sum,lts__t_requests_srcunit_tex_op_write.sum,l1tex__t_requests_pipe_lsu_mem_global_op_st.sum,l1tex__t_sectors_pipe_lsu_mem_global_op_st.sum,smsp__inst_executed.sum,smsp__issue_active.avg.pct_of_peak_sustained_active,sm__warps_active.avg.pct_of_peak_sustained_active,dram__throughput.avg.pct_of_peak_sustained_elapsed
STALL=gpu__time_duration.sum,smsp__warp_issue_stalled_lg_throttle_per_warp_active.pct,smsp__warp_issue_stalled_long_scoreboard_per_warp_active.pct,smsp__warp_issue_stalled_drain_per_warp_active.pct,smsp__warp_issue_stalled_barrier_per_warp_active.pct,smsp__warp_issue_stalled_short_scoreboard_per_warp_active.pct,smsp__warp_issue_stalled_mio_throttle_per_warp_active.pct
use() { cp "$CARRY"/variants/$1/_C.so "$CARRY"/variants/$1/_C_build_info.json $DST/; }
prof() {  # build, metrics, time limit
  use $1
  echo "== ncu $1 ($PROFILE)"
  timeout $3 ncu --metrics $2 -k regex:experts -c 2 python3 $PKG/benchmarks/profile_one.py $PROFILE 2>&1 \
    | grep -E "experts_kernel|gpu__|dram__|lts__|l1tex__|smsp__|sm__|ERR" | sed -e 's/  */ /g' -e 's/(lowbit::nvfp4::dev::[^)]*)//'
}
{
  nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,clocks.mem,power.draw --format=csv
  last=
  for v in "$CARRY"/variants/*/; do
    last=$(basename $v)
    use $last
    echo "== variant $last $(date +%T)"
    timeout ${NVQ_T_VARIANT:-55} python3 $PKG/benchmarks/variants.py $last 2>/dev/null | tee -a $OUT/variants.txt
    prof $last $BASE ${NVQ_T_NCU:-25} | tee -a $OUT/ncu.txt
  done
  use ${NVQ_TEST_BUILD:-$last}
  echo "== pytest ${NVQ_TEST_BUILD:-$last} $(date +%T)"
  timeout ${NVQ_T_TEST:-90} python3 -m pytest $PKG/tests -q -rs 2>&1 | tail -15
  for v in ${NVQ_STALL_BUILDS:-}; do prof $v $STALL ${NVQ_T_NCU:-25} | tee -a $OUT/ncu.txt; done
  echo "== done $(date +%T)"
} 2>&1 | tee $OUT/log.txt

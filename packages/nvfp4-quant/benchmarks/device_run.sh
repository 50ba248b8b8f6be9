#!/bin/bash
# One device call (from the repo root): compare the carried builds
# ($1/variants/<name>/_C.so, built here with different tuning knobs) at large
# sizes, pick the best (geometric mean of % of copy bandwidth), then run the
# tests, ncu counters, the full GPU benchmark and the selfcheck on it.
# NVQ_CPU_BENCH=1 also runs the CPU benchmark. Logs and results go to $OUT.
# Every step has its own time limit so the call ends inside ~330 s with logs.
set -o pipefail
CARRY=${1:-.carry/nvq}
PKG=packages/nvfp4-quant
DST=$PKG/src/lowbit/nvfp4_quant
export PYTHONPATH=packages/cutlass-ext/src:$PKG/src:shared/src PYTHONUNBUFFERED=1
{
  nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,clocks.mem,power.draw --format=csv
  python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(), torch.cuda.device_count())"
  for v in "$CARRY"/variants/*/; do
    cp "$v"/_C.so "$v"/_C_build_info.json $DST/ || exit 1
    echo "== variant $(basename $v) $(date +%T)"
    timeout ${NVQ_T_VARIANT:-35} python3 $PKG/benchmarks/variants.py "$(basename $v)" 2>/dev/null | tee -a $OUT/variants.txt
  done
  W=$(python3 -c "
import math, collections, sys
g = collections.defaultdict(list)
for line in open(sys.argv[1]):
    f = line.split()
    g[f[0]].append(math.log(float(f[-3].rstrip('%'))))
n = max(len(v) for v in g.values())
print(max((k for k in g if len(g[k]) == n), key=lambda k: sum(g[k]) / len(g[k])))" $OUT/variants.txt)
  echo "== winner $W $(date +%T)"
  cp "$CARRY"/variants/$W/_C.so "$CARRY"/variants/$W/_C_build_info.json $DST/
  echo "== pytest"; timeout ${NVQ_T_TEST:-90} python3 -m pytest $PKG/tests -q -rs 2>&1 | tail -25
  echo "== bench gpu $(date +%T)"; timeout ${NVQ_T_BENCH:-100} python3 $PKG/benchmarks/run.py --out $OUT/results 2>/dev/null
  echo "== ncu $(date +%T)"; timeout ${NVQ_T_NCU:-35} ncu --metrics gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,dram__bytes.sum,smsp__issue_active.avg.pct_of_peak_sustained_active,sm__warps_active.avg.pct_of_peak_sustained_active,smsp__inst_executed.sum -k regex:"dense|experts" -c 4 python3 $PKG/benchmarks/profile_one.py 2>&1 | grep -E "\(Dense|\(Expert|gpu__|dram__|smsp__|sm__" | sed 's/  */ /g'
  [ -n "$NVQ_CPU_BENCH" ] && { echo "== bench cpu"; python3 $PKG/benchmarks/run.py --device cpu --out $OUT/results 2>/dev/null; }
  echo "== selfcheck $(date +%T)"; timeout 15 python3 -c "import torch, lowbit.nvfp4_quant as q; [print(r) for r in q.selfcheck.run(torch.device('cuda'))]"
  echo "== done $(date +%T)"
} 2>&1 | tee $OUT/log.txt

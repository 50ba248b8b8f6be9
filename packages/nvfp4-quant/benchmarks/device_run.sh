#!/bin/bash
# One device call: tests, benchmark (GPU + CPU), ncu counters. Run from the
# repo root with the built _C.so (+ build info) in $1; logs and results go to $OUT.
set -o pipefail
CARRY=${1:-.carry/nvq}
PKG=packages/nvfp4-quant
cp "$CARRY"/_C.so "$CARRY"/_C_build_info.json $PKG/src/lowbit/nvfp4_quant/ || exit 1
export PYTHONPATH=packages/cutlass-ext/src:$PKG/src:shared/src PYTHONUNBUFFERED=1
LOG=$OUT/log.txt
{
  nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,clocks.mem,power.draw --format=csv
  python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(), torch.cuda.device_count())"
  echo "== pytest"; timeout 900 python3 -m pytest $PKG/tests -q -rs 2>&1 | tail -60
  echo "== ncu"; timeout 300 ncu --metrics gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,dram__bytes.sum,smsp__issue_active.avg.pct_of_peak_sustained_active,sm__warps_active.avg.pct_of_peak_sustained_active,smsp__inst_executed.sum -k regex:"dense|experts" python3 $PKG/benchmarks/profile_one.py 2>&1 | grep -E "kernel|gpu__|dram__|smsp__|sm__" | sed 's/  */ /g' | head -80
  echo "== bench gpu"; python3 $PKG/benchmarks/run.py --out $OUT/results 2>/dev/null
  echo "== bench cpu"; python3 $PKG/benchmarks/run.py --device cpu --out $OUT/results 2>/dev/null
  for v in "$CARRY"/variants/*/; do
    [ -f "$v/_C.so" ] || continue
    cp "$v/_C.so" $PKG/src/lowbit/nvfp4_quant/_C.so
    echo "== variant $(basename $v)"; python3 $PKG/benchmarks/variants.py "$(basename $v)" 2>/dev/null
  done
  cp "$CARRY"/_C.so $PKG/src/lowbit/nvfp4_quant/
  echo "== selfcheck"; python3 -c "import torch, lowbit.nvfp4_quant as q; [print(r) for r in q.selfcheck.run(torch.device('cuda'))]"
} 2>&1 | tee $LOG

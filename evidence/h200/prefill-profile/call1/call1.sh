#!/usr/bin/env bash
# device call 1 of 2026-12-02 (third session): where a prefill's time goes. `graphrun dump --stage fused
# --phase prefill --profile` (new: events around every group, and the step as bench runs it: wall,
# GPU span, host issue time) on the 7B at 512 and 2,048 tokens and the 1.5B at 512; prefill kernels
# launched with programmatic stream serialization (GRAPHRUN_PREFILL_PDL=1, an experiment) against
# plain launches, same binary, arms off/on/on/off; Nsight sections of one 512-token gate/up GEMM.
set -u
cd carry && for f in *.xz; do [ -e "$f" ] && xz -d -T0 $f; done; chmod +x *; cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O; G=$C/graphrun
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache
export PATH=$PATH:/usr/local/cuda/bin
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.sm,memory.total,driver_version --format=csv > $O/nvidia-smi.txt
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $G synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== prefill profiles $(date +%T)"
for mp in 7b:512 7b:2048 1.5b:512 0.5b:512; do m=${mp%:*}; p=${mp#*:}
  timeout 90 $G dump --stage fused --phase prefill --profile --prompt $p /tmp/gr/$m.gguf > $O/profile_prefill_${m}_$p.txt 2>&1
  echo "== $m pp$p"; sed -n '/^per kernel/,$p' $O/profile_prefill_${m}_$p.txt | cut -c1-200; done
GRAPHRUN_PREFILL_PDL=1 timeout 90 $G dump --stage fused --phase prefill --profile --prompt 512 /tmp/gr/7b.gguf > $O/profile_prefill_7b_512_pdl.txt 2>&1
echo "== 7b pp512 with prefill PDL"; grep "as bench" $O/profile_prefill_7b_512_pdl.txt
echo "=== bench prefill PDL off/on $(date +%T)"
for m in 7b 1.5b 0.5b; do for b in off on on off; do E=0; [ $b = on ] && E=1
  GRAPHRUN_PREFILL_PDL=$E timeout 120 $G bench /tmp/gr/$m.gguf -p 512,2048,8192 -n 16 -r 3 --json > $O/bench_${m}_${b}_$(date +%s%N).json 2>>$O/bench_${m}_$b.err; done
  python3 - $O $m <<'PY'
import json,glob,sys,statistics as st
o,m=sys.argv[1],sys.argv[2]
r={}
for b in ("off","on"):
    for f in sorted(glob.glob(f"{o}/bench_{m}_{b}_*.json")):
        try: d=json.load(open(f))
        except Exception as e: print("bad",f,e); continue
        for t in d["tests"]: r.setdefault((t["test"],t["depth"],b),[]).append(t["tok_s"])
for (t,dp,b) in sorted(r):
    if b=="off":
        x,y=r[(t,dp,"off")],r.get((t,dp,"on"),[0])
        print(f"{m} {t:>6} off {' '.join('%.0f'%v for v in x)}  on {' '.join('%.0f'%v for v in y)}  ({100*(st.mean(y)/st.mean(x)-1):+.1f}%)")
PY
done
echo "=== ncu gate/up GEMM of a 512-token prefill $(date +%T)"
timeout 150 ncu --kernel-name regex:'^mmq_pair_q4_k$' --launch-skip 30 --launch-count 1 --section SpeedOfLight --section ComputeWorkloadAnalysis --section SchedulerStats --section WarpStateStats --section InstructionStats --section SourceCounters --section Occupancy --section MemoryWorkloadAnalysis -o /tmp/rep_pair $G bench /tmp/gr/7b.gguf -p 512 -n 1 -r 1 > /tmp/ncu_pair.log 2>&1; tail -2 /tmp/ncu_pair.log
ncu -i /tmp/rep_pair.ncu-rep --page details > $O/ncu_mmq_pair_q4_k_pp512.txt 2>&1
ncu -i /tmp/rep_pair.ncu-rep --page source --csv --print-source sass > $O/ncu_mmq_pair_q4_k_pp512_sass.csv 2>&1; gzip $O/ncu_mmq_pair_q4_k_pp512_sass.csv
grep -E "Duration|Issued Ipc A|No Eligible|Stall|stall" $O/ncu_mmq_pair_q4_k_pp512.txt | head -30 | cut -c1-160
cd $OUT && tar czf r.tgz r && rm -rf r

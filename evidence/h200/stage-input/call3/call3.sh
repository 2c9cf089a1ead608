#!/usr/bin/env bash
# device call (2026-12-02, second session): is the 0.5B's loss with staged inputs (branch stage-input, bbfe856)
# the programmatic launches? The branch's binary, tg128 at depth 0, GRAPHRUN_STAGE_INPUT 0/1 × GRAPHRUN_PDL 1/0,
# arms interleaved (s0p1 s1p1 s0p0 s1p0, then reversed).
set -u
cd carry && for f in *.xz; do xz -d -T0 $f; done; chmod +x *; cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O; G=$C/graphrun
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.sm,memory.total,driver_version --format=csv > $O/nvidia-smi.txt
mkdir -p /tmp/gr; for p in 0.5b 1.5b; do $G synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
for m in 0.5b 1.5b; do for a in s0p1 s1p1 s0p0 s1p0 s1p0 s0p0 s1p1 s0p1; do
  GRAPHRUN_STAGE_INPUT=${a:1:1} GRAPHRUN_PDL=${a:3:1} timeout 60 $G bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0 -r 2 --json > $O/bench_${m}_${a}_$(date +%s%N).json 2>>$O/bench_${m}_$a.err; done
  python3 - $O $m <<'PY'
import json,glob,sys,statistics as st
o,m=sys.argv[1],sys.argv[2]
r={}
for a in ("s0p1","s1p1","s0p0","s1p0"):
    for f in sorted(glob.glob(f"{o}/bench_{m}_{a}_*.json")):
        for t in json.load(open(f))["tests"]:
            if t["test"].startswith("tg"): r.setdefault(a,[]).append(t["tok_s"])
for p in ("1","0"):
    x,y=r[f"s0p{p}"],r[f"s1p{p}"]
    print(f"{m} tg128 PDL={p}: stage=0 {' '.join('%.1f'%v for v in x)}  stage=1 {' '.join('%.1f'%v for v in y)}  ({100*(st.mean(y)/st.mean(x)-1):+.1f}%)")
PY
done
cd $OUT && tar czf r.tgz r && rm -rf r

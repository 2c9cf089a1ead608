#!/usr/bin/env bash
# device call (2026-12-02, second session): call 1's binary (decode kernels staging their own input) with
# GRAPHRUN_STAGE_INPUT=0 (prep launches, as main) and =1, interleaved in one call: is the 0.5B's loss the
# staging itself, and where (fused profiles of both ways)?
set -u
cd carry && for f in *.xz; do xz -d -T0 $f; done; chmod +x *; cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O; G=$C/graphrun
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.sm,memory.total,driver_version --format=csv > $O/nvidia-smi.txt
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $G synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
for m in 0.5b 1.5b 7b; do for v in 0 1 1 0; do
  GRAPHRUN_STAGE_INPUT=$v timeout 100 $G bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096 -r 2 --json > $O/bench_${m}_s${v}_$(date +%s%N).json 2>>$O/bench_${m}_s$v.err; done
  python3 - $O $m <<'PY'
import json,glob,sys,statistics as st
o,m=sys.argv[1],sys.argv[2]
r={}
for b in ("s0","s1"):
    for f in sorted(glob.glob(f"{o}/bench_{m}_{b}_*.json")):
        d=json.load(open(f))
        for t in d["tests"]: r.setdefault((t["test"],t["depth"],b),[]).append(t["tok_s"])
for (t,dp,b) in sorted(r):
    if b=="s0" and t.startswith("tg"):
        x,y=r[(t,dp,"s0")],r[(t,dp,"s1")]
        print(f"{m} {t:>6} d{dp:<5} stage=0 {' '.join('%.1f'%v for v in x)}  stage=1 {' '.join('%.1f'%v for v in y)}  ({100*(st.mean(y)/st.mean(x)-1):+.1f}%)")
PY
done
for m in 0.5b 7b; do for v in 0 1; do GRAPHRUN_STAGE_INPUT=$v timeout 60 $G dump --stage fused --profile /tmp/gr/$m.gguf > $O/profile_${m}_s$v.txt 2>&1; done
  T='{for(i=1;i<=NF;i++) if($i=="us") {print $1, $2, $(i-1); break}}'
  paste <(grep -E "^k[0-9]+ " $O/profile_${m}_s0.txt | awk "$T") <(grep -E "^k[0-9]+ " $O/profile_${m}_s1.txt | awk "$T" | cut -d" " -f3) | sed -n 1,6p
  grep total $O/profile_${m}_s0.txt $O/profile_${m}_s1.txt; done
cd $OUT && tar czf r.tgz r && rm -rf r

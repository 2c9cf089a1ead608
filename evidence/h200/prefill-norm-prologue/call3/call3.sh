#!/usr/bin/env bash
# device call 3 of 2026-12-02 (third session): the prefill GEMM groups take the RMSNorm before them
# when their matmuls are all that read it (gate/up always; Q/K/V when one launch holds all three):
# the prep kernel norms and quantizes the rows in one launch (a CTA of 256 threads per row, as the
# rms_norm kernel's). base = 753c2ab's code (call 2's `qkv` binary), new = working tree.
# Parity: greedy tokens and trace_exact against base, backend_ops, gpu_persistent; speed: bench
# base/new/new/base, prefill profiles. Then hopbench (evidence/h200/persistent-hop/hopbench.cu).
set -u
cd carry && for f in *.xz; do [ -e "$f" ] && xz -d -T0 $f; done; chmod +x *; cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O; G=$C/graphrun; B=$C/graphrun-base
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
export PATH=$PATH:/usr/local/cuda/bin
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.sm,memory.total,driver_version --format=csv > $O/nvidia-smi.txt
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $G synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== greedy tokens base vs new $(date +%T)"
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(30)]))")
for m in 0.5b 1.5b 7b; do for b in base new; do X=$G; [ $b = base ] && X=$B
  timeout 60 $X run /tmp/gr/$m.gguf -p "$P" -n 32 --ids > $O/run_${m}_$b.txt 2> $O/run_${m}_$b.err; done
  cmp -s $O/run_${m}_base.txt $O/run_${m}_new.txt && echo "$m tokens equal" || echo "$m TOKENS DIFFER"; done
echo "=== trace_exact new vs base (prefill of ~650 tokens + 3 decode steps) $(date +%T)"
for m in 0.5b 1.5b 7b; do for b in base new; do X=$G; [ $b = base ] && X=$B
  $X trace /tmp/gr/$m.gguf -p "$P" --gpu --decode 3 --nodes 'blk.0.*,blk.13.*,blk.23.*,blk.27.*,output*,result*' -o /tmp/tr_${m}_$b > /dev/null 2>&1; done
  $G diff /tmp/tr_${m}_new /tmp/tr_${m}_base --contract trace_exact > $O/trace_new_vs_base_$m.txt 2>&1; echo "diff exit $?" >> $O/trace_new_vs_base_$m.txt
  echo "$m: $(grep -E "verdict" $O/trace_new_vs_base_$m.txt | cut -c1-150)"; done
echo "=== bench A/B $(date +%T)"
for m in 7b 1.5b 0.5b; do for b in base new new base; do X=$G; [ $b = base ] && X=$B
  timeout 120 $X bench /tmp/gr/$m.gguf -p 512,2048,8192 -n 16 -r 3 --json > $O/bench_${m}_${b}_$(date +%s%N).json 2>>$O/bench_${m}_$b.err; done
  python3 - $O $m <<'PY'
import json,glob,sys,statistics as st
o,m=sys.argv[1],sys.argv[2]
r={}
for b in ("base","new"):
    for f in sorted(glob.glob(f"{o}/bench_{m}_{b}_*.json")):
        try: d=json.load(open(f))
        except Exception as e: print("bad",f,e); continue
        for t in d["tests"]: r.setdefault((t["test"],t["depth"],b),[]).append(t["tok_s"])
for (t,dp,b) in sorted(r):
    if b=="base":
        x,y=r[(t,dp,"base")],r.get((t,dp,"new"),[0])
        f=lambda v:' '.join('%.0f'%u for u in v)
        print(f"{m} {t:>6} base {f(x)}  new {f(y)} ({100*(st.mean(y)/st.mean(x)-1):+.1f}%)")
PY
done
echo "=== prefill profiles (new) $(date +%T)"
for mp in 7b:512 1.5b:512; do m=${mp%:*}; p=${mp#*:}
  timeout 90 $G dump --stage fused --phase prefill --profile --prompt $p /tmp/gr/$m.gguf > $O/profile_prefill_${m}_$p.txt 2>&1
  echo "== $m pp$p"; sed -n '/^per kernel/,$p' $O/profile_prefill_${m}_$p.txt | cut -c1-200; done
echo "=== backend_ops, gpu_persistent (new) $(date +%T)"
GRAPHRUN_PARITY_REPORT=$O/backend_ops.jsonl timeout 100 $C/backend_ops --ignored --nocapture --test-threads 1 > $O/backend_ops.log 2>&1; echo "backend_ops exit $?" >> $O/backend_ops.log; grep -E "test result|exit" $O/backend_ops.log | head; grep -c "prep+mmq" $O/backend_ops.jsonl; gzip $O/backend_ops.jsonl
timeout 100 $C/gpu_persistent --ignored --nocapture --test-threads 1 > $O/gpu_persistent.log 2>&1; echo "gpu_persistent exit $?" >> $O/gpu_persistent.log; grep -E "test result|exit" $O/gpu_persistent.log | cut -c1-160
echo "=== hopbench (issue #11: one dependent hop of a persistent kernel vs a launch) $(date +%T)"
timeout 120 $C/hopbench > $O/hopbench.txt 2>&1; cat $O/hopbench.txt
cd $OUT && tar czf r.tgz r && rm -rf r

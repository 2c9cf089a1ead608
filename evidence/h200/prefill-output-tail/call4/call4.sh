#!/usr/bin/env bash
# device call 4 of 2026-12-02 (third session): the output tail (Graph::output_tail: the last block
# after its attention, the final norm, the logits) at the logit rows only, in both executors; and the
# persistent kernel's watchdog staggered by instruction. base = bfa572f's code (call 3's new binary),
# new = working tree. Parity: greedy tokens and trace (trace_exact: every record but the tail's last
# rows, whose products now come from the one-row kernels) against base, gpu_persistent, gpu_e2e (GPU vs
# interpreter traces at 183, 647 and 2,000 tokens); speed: bench base/new/new/base, prefill profile.
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
echo "=== traces new vs base (prefill of ~650 tokens + 3 decode steps) $(date +%T)"
for m in 0.5b 1.5b 7b; do for b in base new; do X=$G; [ $b = base ] && X=$B
  $X trace /tmp/gr/$m.gguf -p "$P" --gpu --decode 3 --nodes 'blk.0.*,blk.13.*,blk.23.*,blk.27.*,output*,result*,logits' -o /tmp/tr_${m}_$b > /dev/null 2>&1; done
  $G diff /tmp/tr_${m}_new /tmp/tr_${m}_base --contract trace_exact --json > $O/trace_new_vs_base_$m.json 2>&1
  $G diff /tmp/tr_${m}_new /tmp/tr_${m}_base --contract trace_exact > $O/trace_new_vs_base_$m.txt 2>&1; echo "diff exit $?" >> $O/trace_new_vs_base_$m.txt
  python3 - $O/trace_new_vs_base_$m.json $m <<'PY'
import json,sys
r=json.load(open(sys.argv[1])); m=sys.argv[2]
ns=r["nodes"]; bad=[n for n in ns if n["nmse"]!=0]
print(f"{m}: {len(ns)} records compared, {len(bad)} not bit-identical: " + ", ".join(f'{n["node"]}@{n["pos"]} s{n["step"]} {n["nmse"]:.1e}' for n in bad[:12]))
print(f"   only in new: {len(r['only_in_a'])}, only in base: {len(r['only_in_b'])}")
PY
done
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
echo "=== prefill profile (new) $(date +%T)"
timeout 90 $G dump --stage fused --phase prefill --profile --prompt 512 /tmp/gr/7b.gguf > $O/profile_prefill_7b_512.txt 2>&1
sed -n '/^per kernel/,$p' $O/profile_prefill_7b_512.txt | cut -c1-200; grep -E "^k19[0-9] " $O/profile_prefill_7b_512.txt | cut -c1-120
echo "=== gpu_persistent (new) $(date +%T)"
timeout 100 $C/gpu_persistent --ignored --nocapture --test-threads 1 > $O/gpu_persistent.log 2>&1; echo "gpu_persistent exit $?" >> $O/gpu_persistent.log; grep -E "^test |watchdog|test result|exit" $O/gpu_persistent.log | cut -c1-220
left=$((585 - SECONDS)); echo "gpu_e2e with $left s $(date +%T)"
[ $left -gt 30 ] && { timeout $left $C/gpu_e2e --ignored --nocapture --test-threads 1 > $O/gpu_e2e.log 2>&1; echo "gpu_e2e exit $? (limit $left s)" >> $O/gpu_e2e.log; grep -E "^test |test result|panicked|exit" $O/gpu_e2e.log | cut -c1-200; }
cd $OUT && tar czf r.tgz r && rm -rf r

#!/usr/bin/env bash
# device call 2 of 2026-12-02 (third session): base = 22096c2's binary (main), new = working tree: decode-step kernels
# launched with programmatic stream serialization (PDL; prefill launches plain), every kernel waiting for its
# predecessor in griddepcontrol.wait, matvec/qkv prefetching their first tile's weights into L2 before the wait.
# Matvec tile code as on main (call 1's preload variant dropped). nopdl = new with GRAPHRUN_PDL=0.
# Same-call A/B (tg128 at depth 0 and 4,096, pp512), greedy tokens and trace_exact new vs base, backend_ops,
# gpu_batch (batched rows = single-row bits), gpu_persistent, gpu_e2e at 183/647/2,000 tokens, 7B decode profile.
set -u
cd carry && for f in *.xz; do xz -d -T0 $f; done; chmod +x graphrun* backend_ops gpu_batch gpu_persistent gpu_e2e; cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O; G=$C/graphrun; B=$C/graphrun-base
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total,driver_version --format=csv > $O/nvidia-smi.txt
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $G synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== bench A/B $(date +%T)"
for m in 7b 1.5b 0.5b; do
  for b in base new nopdl new base nopdl; do X=$G; [ $b = base ] && X=$B; E=1; [ $b = nopdl ] && E=0
    GRAPHRUN_PDL=$E timeout 60 $X bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096 -r 2 --json > $O/bench_${m}_${b}_$(date +%s).json 2>$O/bench_${m}_${b}.err; done
done
python3 - $O <<'PY'
import json,glob,sys,collections
r=collections.defaultdict(list)
for f in sorted(glob.glob(sys.argv[1]+'/bench_*.json')):
    try: j=json.load(open(f))
    except Exception as e: print(f, 'unreadable', e); continue
    m,b=f.split('/')[-1].split('_')[1:3]
    print(f.split('/')[-1], ' '.join(f"{t['test']}@d{t['depth']}={t['tok_s']:.1f}" for t in j['tests']))
    for t in j['tests']: r[(m,t['test']+'@d'+str(t['depth']),b)].append(t['tok_s'])
for (m,t,b),v in sorted(r.items()): print('mean',m,t,b,round(sum(v)/len(v),1))
PY
echo "=== greedy tokens base vs new $(date +%T)"
for m in 0.5b 1.5b 7b; do for b in base new; do X=$G; [ $b = base ] && X=$B
  timeout 60 $X run /tmp/gr/$m.gguf -p "def fibonacci(n):" -n 64 --ids > $O/run_${m}_$b.txt 2> $O/run_${m}_$b.err; done
  cmp -s $O/run_${m}_base.txt $O/run_${m}_new.txt && echo "$m tokens equal" || echo "$m TOKENS DIFFER"; done
echo "=== trace_exact new vs base $(date +%T)"
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(30)]))")
for b in base new; do X=$G; [ $b = base ] && X=$B
  $X trace /tmp/gr/1.5b.gguf -p "$P" --gpu --decode 3 --nodes 'blk.0.*,blk.13.*,blk.27.*,output*,result*' -o /tmp/tr_$b 2>&1 | tail -1
  $X trace /tmp/gr/7b.gguf -p "$P" --gpu --decode 3 --nodes 'blk.0.*,blk.27.*,output*,result*' -o /tmp/tr3_$b 2>&1 | tail -1; done
for x in "tr 1.5b" "tr3 7b"; do set -- $x
  $G diff /tmp/$1_new /tmp/$1_base --contract trace_exact > $O/trace_new_vs_base_$2.txt 2>&1; echo "diff exit $?" >> $O/trace_new_vs_base_$2.txt; grep -E "compared|verdict|exit" $O/trace_new_vs_base_$2.txt | cut -c1-200; done
echo "=== profile 7b new and base $(date +%T)"
timeout 60 $G dump /tmp/gr/7b.gguf --stage fused --phase decode --profile > $O/profile_7b_new.txt 2>&1
timeout 60 $B dump /tmp/gr/7b.gguf --stage fused --phase decode --profile > $O/profile_7b_base.txt 2>&1
echo "=== ops $(date +%T)"
GRAPHRUN_PARITY_REPORT=$O/backend_ops.jsonl timeout 60 $C/backend_ops --ignored --nocapture --test-threads 1 > $O/backend_ops.log 2>&1; echo "backend_ops exit $?" >> $O/backend_ops.log; tail -2 $O/backend_ops.log
echo "=== batch $(date +%T)"
timeout 100 $C/gpu_batch --ignored --nocapture --test-threads 1 > $O/gpu_batch.log 2>&1; echo "gpu_batch exit $?" >> $O/gpu_batch.log; grep -E "test result|exit" $O/gpu_batch.log
echo "=== persistent $(date +%T)"
left=$((560 - SECONDS)); [ $left -gt 30 ] && { timeout $((left < 110 ? left : 110)) $C/gpu_persistent --ignored --nocapture --test-threads 1 > $O/gpu_persistent.log 2>&1; echo "gpu_persistent exit $?" >> $O/gpu_persistent.log; grep -E "test result|exit" $O/gpu_persistent.log; }
echo "=== e2e $(date +%T)"
left=$((575 - SECONDS)); [ $left -gt 40 ] && { GRAPHRUN_E2E_LENGTHS=183,647,2000 GRAPHRUN_E2E_PRESETS=tiny,tiny-llama,0.5b GRAPHRUN_E2E_REPORT=$O/gpu_e2e.jsonl timeout $left $C/gpu_e2e synthetic --ignored --nocapture > $O/gpu_e2e.log 2>&1; echo "gpu_e2e exit $? (limit $left s)" >> $O/gpu_e2e.log; tail -3 $O/gpu_e2e.log; }
cd $OUT && tar czf r.tgz r && rm -rf r

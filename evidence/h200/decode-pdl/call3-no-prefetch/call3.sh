#!/usr/bin/env bash
# device call 3 of 2026-12-02 (third session): which half of call 2's change paid. base = 22096c2's binary (main);
# pf = call 2's new binary (PDL for decode steps + the matvec/qkv L2 prefetch of their first tile before the wait);
# new = working tree: PDL for decode steps, every wrapper waits first, no prefetch (matvec/qkv bodies as on main).
# Same-call A/B (tg128 at depth 0 and 4,096, pp512), then greedy tokens and trace_exact new vs base, gpu_batch with
# new's kernels (carried test binary built from this tree).
set -u
cd carry && for f in *.xz; do xz -d -T0 $f; done; chmod +x graphrun* gpu_batch 2>/dev/null; cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total,driver_version --format=csv > $O/nvidia-smi.txt
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $C/graphrun synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== bench A/B $(date +%T)"
for m in 7b 1.5b 0.5b; do
  for b in base pf new new pf base; do X=$C/graphrun; [ $b = base ] && X=$C/graphrun-base; [ $b = pf ] && X=$C/graphrun-pf
    timeout 60 $X bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096 -r 2 --json > $O/bench_${m}_${b}_$(date +%s).json 2>$O/bench_${m}_${b}.err; done
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
for m in 0.5b 1.5b 7b; do for b in base new; do X=$C/graphrun; [ $b = base ] && X=$C/graphrun-base
  timeout 60 $X run /tmp/gr/$m.gguf -p "def fibonacci(n):" -n 64 --ids > $O/run_${m}_$b.txt 2> $O/run_${m}_$b.err; done
  cmp -s $O/run_${m}_base.txt $O/run_${m}_new.txt && echo "$m tokens equal" || echo "$m TOKENS DIFFER"; done
echo "=== trace_exact new vs base $(date +%T)"
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(30)]))")
for b in base new; do X=$C/graphrun; [ $b = base ] && X=$C/graphrun-base
  $X trace /tmp/gr/7b.gguf -p "$P" --gpu --decode 3 --nodes 'blk.0.*,blk.27.*,output*,result*' -o /tmp/tr3_$b 2>&1 | tail -1; done
$C/graphrun diff /tmp/tr3_new /tmp/tr3_base --contract trace_exact > $O/trace_new_vs_base_7b.txt 2>&1; echo "diff exit $?" >> $O/trace_new_vs_base_7b.txt; grep -E "compared|verdict|exit" $O/trace_new_vs_base_7b.txt | cut -c1-200
echo "=== profile 7b new $(date +%T)"
timeout 60 $C/graphrun dump /tmp/gr/7b.gguf --stage fused --phase decode --profile > $O/profile_7b_new.txt 2>&1; tail -1 $O/profile_7b_new.txt
if [ -x $C/gpu_batch ]; then echo "=== batch $(date +%T)"
  timeout 100 $C/gpu_batch --ignored --nocapture --test-threads 1 > $O/gpu_batch.log 2>&1; echo "gpu_batch exit $?" >> $O/gpu_batch.log; grep -E "test result|exit" $O/gpu_batch.log; fi
cd $OUT && tar czf r.tgz r && rm -rf r

#!/usr/bin/env bash
# device call 5 of 2026-12-02 (third session): the committed rule. base = 22096c2's binary (main); new = working tree:
# call 4's variant, but a matvec prefetches before the wait only when its grid is one wave AND its weights take at
# most half the L2 (call 4: the 7B's one-wave Q6_K down, 56 MB, prefetched and lost). Same-call A/B, greedy tokens.
set -u
cd carry && for f in *.xz; do xz -d -T0 $f; done; chmod +x graphrun*; cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O; G=$C/graphrun; B=$C/graphrun-base
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total,driver_version --format=csv > $O/nvidia-smi.txt
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $G synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== bench A/B $(date +%T)"
for m in 7b 1.5b 0.5b; do
  for b in base new new base; do X=$G; [ $b = base ] && X=$B
    timeout 60 $X bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096 -r 2 --json > $O/bench_${m}_${b}_$(date +%s).json 2>$O/bench_${m}_${b}.err; done
done
python3 - $O <<'PY'
import json,glob,sys,collections
r=collections.defaultdict(list)
for f in sorted(glob.glob(sys.argv[1]+'/bench_*.json')):
    try: j=json.load(open(f))
    except Exception as e: print(f, 'unreadable', e); continue
    m,b=f.split('/')[-1].split('_')[1:3]
    for t in j['tests']: r[(m,t['test']+'@d'+str(t['depth']),b)].append(t['tok_s'])
for (m,t,b),v in sorted(r.items()): print('mean',m,t,b,round(sum(v)/len(v),1),[round(x,1) for x in v])
PY
echo "=== greedy tokens base vs new $(date +%T)"
for m in 0.5b 1.5b 7b; do for b in base new; do X=$G; [ $b = base ] && X=$B
  timeout 60 $X run /tmp/gr/$m.gguf -p "def fibonacci(n):" -n 64 --ids > $O/run_${m}_$b.txt 2> $O/run_${m}_$b.err; done
  cmp -s $O/run_${m}_base.txt $O/run_${m}_new.txt && echo "$m tokens equal" || echo "$m TOKENS DIFFER"; done
timeout 60 $G dump /tmp/gr/7b.gguf --stage fused --phase decode --profile > $O/profile_7b_new.txt 2>&1; tail -1 $O/profile_7b_new.txt
cd $OUT && tar czf r.tgz r && rm -rf r

#!/usr/bin/env bash
# device call 1 of 2026-12-02 (third session): decode matvec kernels and programmatic dependent launch (PDL).
# base = 22096c2's binary (main); new = working tree: every kernel waits for its predecessor in
# griddepcontrol.wait (PDL launches on sm_90), the matvec loads every row's weight unit before its first dot
# (same dots, same order), and matvec/qkv prefetch their first tile's weights into L2 before the wait.
# 1. mvbench (scripts in this folder): the matvec family's generated source, base and new with launch-bound variants,
#    timed alone on 7B/1.5B/0.5B shapes (rotating weight copies) and as 28 layers of attn_out + gate/up + down.
# 2. graphrun: greedy tokens base vs new (CUDA-graph decode), trace_exact new vs base, same-call A/B of
#    base / new / new with GRAPHRUN_PDL=0, and the fused decode profile of the 7B.
set -u
cd carry && for f in *.xz; do xz -d -T0 $f; done; chmod +x graphrun* mvbench_*; cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O; G=$C/graphrun; B=$C/graphrun-base
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total,driver_version --format=csv > $O/nvidia-smi.txt
echo "=== mvbench $(date +%T)"
for v in base new new_b3 new_b2 new_sw2; do timeout 60 $C/mvbench_$v $v plain >> $O/mvbench.txt 2>&1; done
for v in new new_b3 new_b2 new_sw2; do timeout 60 $C/mvbench_$v $v pdl >> $O/mvbench.txt 2>&1; done
cat $O/mvbench.txt
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $G synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== greedy tokens base vs new $(date +%T)"
for m in 0.5b 1.5b 7b; do for b in base new; do X=$G; [ $b = base ] && X=$B
  timeout 60 $X run /tmp/gr/$m.gguf -p "def fibonacci(n):" -n 64 --ids > $O/run_${m}_$b.txt 2> $O/run_${m}_$b.err; done
  cmp -s $O/run_${m}_base.txt $O/run_${m}_new.txt && echo "$m tokens equal" || echo "$m TOKENS DIFFER"; done
echo "=== trace_exact new vs base $(date +%T)"
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(30)]))")
for b in base new; do X=$G; [ $b = base ] && X=$B
  $X trace /tmp/gr/1.5b.gguf -p "$P" --gpu --decode 3 --nodes 'blk.0.*,blk.13.*,blk.27.*,output*,result*' -o /tmp/tr_$b 2>&1 | tail -1; done
$G diff /tmp/tr_new /tmp/tr_base --contract trace_exact > $O/trace_new_vs_base_1.5b.txt 2>&1; echo "diff exit $?" >> $O/trace_new_vs_base_1.5b.txt; grep -E "compared|verdict|exit" $O/trace_new_vs_base_1.5b.txt | cut -c1-200
echo "=== bench A/B $(date +%T)"
for m in 7b 1.5b 0.5b; do
  for b in base new nopdl new base nopdl; do X=$G; [ $b = base ] && X=$B; E=1; [ $b = nopdl ] && E=0
    GRAPHRUN_PDL=$E timeout 60 $X bench /tmp/gr/$m.gguf -p 512 -n 128 -r 2 --json > $O/bench_${m}_${b}_$(date +%s).json 2>$O/bench_${m}_${b}.err; done
done
python3 - $O <<'PY'
import json,glob,sys,collections
r=collections.defaultdict(list)
for f in sorted(glob.glob(sys.argv[1]+'/bench_*.json')):
    try: j=json.load(open(f))
    except Exception as e: print(f, 'unreadable', e); continue
    m,b=f.split('/')[-1].split('_')[1:3]
    print(f.split('/')[-1], ' '.join(f"{t['test']}={t['tok_s']:.1f}" for t in j['tests']))
    for t in j['tests']: r[(m,t['test'],b)].append(t['tok_s'])
for (m,t,b),v in sorted(r.items()): print('mean',m,t,b,round(sum(v)/len(v),1))
PY
echo "=== profile 7b new (PDL) and base $(date +%T)"
timeout 60 $G dump /tmp/gr/7b.gguf --stage fused --phase decode --profile > $O/profile_7b_new.txt 2>&1; head -12 $O/profile_7b_new.txt
timeout 60 $B dump /tmp/gr/7b.gguf --stage fused --phase decode --profile > $O/profile_7b_base.txt 2>&1; head -12 $O/profile_7b_base.txt
cd $OUT && tar czf r.tgz r && rm -rf r

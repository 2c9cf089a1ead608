#!/usr/bin/env bash
# device call 3 of 2026-12-03: base = 2558a86 (graphrun-base), new = working tree: as call 1 (Q, K and a V of another
# weight type of the same activation format in one GEMM launch, mmq_*_v_*), with V's tiles first in the grid instead
# of last. Parity (backend_ops; trace_exact new vs base on 7B, 1.5B, 0.5B and a 7,579-token 0.5B prompt), an A/B
# round (base/new/new/base) and the 7B pp512 prefill profile of each.
set -u
cd carry && for f in *.xz; do [ $f = llama-cpp-src.tar.xz ] || xz -d -T0 $f; done; chmod +x graphrun graphrun-base backend_ops; cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O; G=$C/graphrun; B=$C/graphrun-base
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.sm,memory.total,driver_version --format=csv > $O/nvidia-smi.txt; cat $O/nvidia-smi.txt
mkdir -p /tmp/gr; for p in 7b 1.5b 0.5b; do $G synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== ops $(date +%T) $SECONDS s"
GRAPHRUN_PARITY_REPORT=$O/backend_ops.jsonl timeout 90 $C/backend_ops --ignored --nocapture --test-threads 1 > $O/backend_ops.log 2>&1; echo "backend_ops exit $?" >> $O/backend_ops.log; grep -E "test result|exit" $O/backend_ops.log
python3 - $O/backend_ops.jsonl <<'PY'
import json,sys,collections
n=bad=0; nz=[]; per=collections.Counter()
for l in open(sys.argv[1]):
    r=json.loads(l); n+=1; bad+= not r['ok']
    if 'mmq' in r['kernel']: per[r['kernel']]+=1
    if 'mmq' in r['kernel'] and 'pair' not in r['kernel'] and r['nmse']!=0: nz.append((r['kernel'], r['value'], r['nmse']))
print('records', n, 'out of band', bad, '; mmq checks per kernel', dict(per), '; single-matrix mmq checks with NMSE != 0:', nz or 'none')
PY
echo "=== trace_exact new vs base $(date +%T) $SECONDS s"
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(30)]))")
for m in 1.5b 7b 0.5b; do for b in base new; do X=$G; [ $b = base ] && X=$B
  $X trace /tmp/gr/$m.gguf -p "$P" --gpu --decode 2 --nodes 'blk.0.*,blk.13.*,blk.23.*,output*,result*,logits' -o /tmp/tr_${m}_$b > /dev/null 2>&1; done
  $G diff /tmp/tr_${m}_new /tmp/tr_${m}_base --contract trace_exact > $O/trace_new_vs_base_$m.txt 2>&1; echo "diff exit $?" >> $O/trace_new_vs_base_$m.txt
  grep -E "compared|verdict|exit" $O/trace_new_vs_base_$m.txt | cut -c1-200; done
# the legacy types' copy path at a long prompt in chunks (0.5B: Q5_0/Q8_0/Q6_K)
P2=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(300)]))")
for b in base new; do X=$G; [ $b = base ] && X=$B
  $X trace /tmp/gr/0.5b.gguf -p "$P2" --gpu --ctx 8192 --decode 2 --nodes 'blk.0.*,blk.23.*,output*,result*,logits' -o /tmp/trl_$b > $O/trace_long_$b.log 2>&1; done
$G diff /tmp/trl_new /tmp/trl_base --contract trace_exact > $O/trace_new_vs_base_0.5b_long.txt 2>&1; echo "diff exit $?" >> $O/trace_new_vs_base_0.5b_long.txt
grep -E "compared|verdict|exit" $O/trace_new_vs_base_0.5b_long.txt | cut -c1-200; grep -iE "prompt|tokens" $O/trace_long_new.log | head -3
echo "=== bench A/B $(date +%T) $SECONDS s"
for m in 7b 1.5b 0.5b; do
  for b in base new new base; do X=$G; [ $b = base ] && X=$B
    timeout 60 $X bench /tmp/gr/$m.gguf -p 512,2048,8192 -n 8 -r 3 --json > $O/bench_${m}_${b}_$(date +%s%N).json 2>>$O/bench_${m}_${b}.err; done
done
python3 - $O <<'PY'
import json,glob,sys,collections
o=sys.argv[1]; acc=collections.defaultdict(list)
for f in sorted(glob.glob(o+'/bench_*.json')):
    try: j=json.load(open(f))
    except Exception as e: print(f, 'unreadable', e); continue
    m,b=f.split('/')[-1].split('_')[1:3]
    print(m, b, ' '.join(f"{t['test']}={t['tok_s']:.0f}" for t in j['tests']))
    for t in j['tests']: acc[(m,t['test'],b)].append(t['tok_s'])
for (m,t,b),v in sorted(acc.items()):
    if b!='base': base=acc[(m,t,'base')]; print(f"{m} {t}: base {sum(base)/len(base):.0f} {b} {sum(v)/len(v):.0f} {b}/base {sum(v)/len(v)/(sum(base)/len(base)):.4f}")
PY
echo "=== prefill profiles 7B 512 $(date +%T) $SECONDS s"
for b in base new; do X=$G; [ $b = base ] && X=$B
  timeout 40 $X dump /tmp/gr/7b.gguf --stage fused --phase prefill --profile --prompt 512 > $O/profile_prefill_7b_512_$b.txt 2>&1; tail -2 $O/profile_prefill_7b_512_$b.txt; done
echo "=== end $(date +%T) $SECONDS s"
cd $OUT && tar czf r.tgz r && rm -rf r

#!/usr/bin/env bash
# device call 4 of 2026-12-02 (fourth session): base = deb20eb's binary (call 1's), new = working tree: the prefill
# GEMM's cp.async copies address shared memory by 32-bit offsets from one base (cp_async16_at / cp_async4_at)
# instead of converting a generic 64-bit pointer per copy (ptxas: 6-8% fewer instructions in the K loop).
# Parity (backend_ops; trace_exact new vs base), two A/B rounds (base/new/new/base), prefill profiles of both,
# llama.cpp's llama-bench rebuilt in the background and run after, then graphrun new and base once more.
set -u
cd carry && for f in *.xz; do [ $f = llama-cpp-src.tar.xz ] || xz -d -T0 $f; done; chmod +x graphrun graphrun-base backend_ops; cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O; G=$C/graphrun; B=$C/graphrun-base
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
export PATH=$PATH:/usr/local/cuda/bin
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.sm,memory.total,driver_version --format=csv > $O/nvidia-smi.txt
LC=/tmp/lcpp; mkdir -p $LC && xz -dc $C/llama-cpp-src.tar.xz | tar xf - -C $LC
( cd $LC/src && cmake -B build -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
    -DCMAKE_BUILD_TYPE=Release > $O/lcpp_configure.log 2>&1 && t0=$SECONDS && cmake --build build --target llama-bench -j 15 > $O/lcpp_build.log 2>&1; \
    echo "build exit $? after $((SECONDS - t0)) s" >> $O/lcpp_build.log ) &
BUILD=$!
mkdir -p /tmp/gr; for p in 7b 1.5b 0.5b; do $G synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== ops $(date +%T) $SECONDS s"
GRAPHRUN_PARITY_REPORT=$O/backend_ops.jsonl timeout 70 $C/backend_ops --ignored --nocapture --test-threads 1 > $O/backend_ops.log 2>&1; echo "backend_ops exit $?" >> $O/backend_ops.log; grep -E "test result|exit" $O/backend_ops.log
python3 - $O/backend_ops.jsonl <<'PY'
import json,sys
n=bad=0; pair=[]
for l in open(sys.argv[1]):
    r=json.loads(l); n+=1; bad+= not r['ok']
    if 'mmq' in r['kernel'] and 'pair' not in r['kernel'] and r['nmse']!=0: pair.append(('nonzero', r['kernel'], r['value'], r['nmse']))
print('records', n, 'out of band', bad); print('\n'.join(map(str, pair)) or 'every single-matrix mmq check NMSE 0')
PY
echo "=== trace_exact new vs base $(date +%T) $SECONDS s"
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(30)]))")
for m in 1.5b 7b; do for b in base new; do X=$G; [ $b = base ] && X=$B
  $X trace /tmp/gr/$m.gguf -p "$P" --gpu --decode 2 --nodes 'blk.0.*,blk.13.*,blk.27.*,output*,result*,logits' -o /tmp/tr_${m}_$b > /dev/null 2>&1; done
  $G diff /tmp/tr_${m}_new /tmp/tr_${m}_base --contract trace_exact > $O/trace_new_vs_base_$m.txt 2>&1; echo "diff exit $?" >> $O/trace_new_vs_base_$m.txt
  grep -E "compared|verdict|exit" $O/trace_new_vs_base_$m.txt | cut -c1-200; done
echo "=== bench A/B $(date +%T) $SECONDS s"
for m in 7b 1.5b 0.5b; do
  for b in base new new base; do X=$G; [ $b = base ] && X=$B
    timeout 60 $X bench /tmp/gr/$m.gguf -p 512,2048,8192 -n 32 -r 3 --json > $O/bench_${m}_${b}_$(date +%s%N).json 2>$O/bench_${m}_${b}.err; done
done
echo "=== bench A/B round 2 $(date +%T) $SECONDS s"
for m in 7b 1.5b; do
  for b in base new new base; do X=$G; [ $b = base ] && X=$B
    timeout 60 $X bench /tmp/gr/$m.gguf -p 512,2048,8192 -n 32 -r 3 --json > $O/bench_${m}_${b}_$(date +%s%N).json 2>>$O/bench_${m}_${b}.err; done
done
echo "=== prefill profiles 7B 512 $(date +%T) $SECONDS s"
for b in new base; do X=$G; [ $b = base ] && X=$B
  timeout 40 $X dump /tmp/gr/7b.gguf --stage fused --phase prefill --profile --prompt 512 > $O/profile_prefill_7b_512_$b.txt 2>&1; grep -A9 "per kernel" $O/profile_prefill_7b_512_$b.txt; done
echo "=== waiting for the llama.cpp build $(date +%T) $SECONDS s"
while kill -0 $BUILD 2>/dev/null && [ $SECONDS -lt 450 ]; do sleep 3; done
tail -1 $O/lcpp_build.log
LB=$LC/src/build/bin/llama-bench
for m in 7b 1.5b; do
  echo "=== llama.cpp $m, then graphrun new $(date +%T) $SECONDS s"
  [ -x $LB ] && timeout 60 $LB -m /tmp/gr/$m.gguf -ngl 99 -fa 1 -p 512,2048,8192 -n 0 -r 3 -o json > $O/llamabench_pp_$m.json 2> $O/llamabench_pp_$m.err
  for b in new base; do X=$G; [ $b = base ] && X=$B
    [ $SECONDS -lt 540 ] && timeout 30 $X bench /tmp/gr/$m.gguf -p 512,2048,8192 -n 32 -r 3 --json > $O/graphrun_after_${m}_$b.json 2> $O/graphrun_after_${m}_$b.err; done
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
    if b=='new': base=acc[(m,t,'base')]; print(f"{m} {t}: base {sum(base)/len(base):.0f} new {sum(v)/len(v):.0f} new/base {sum(v)/len(v)/(sum(base)/len(base)):.4f}")
for m in ['7b','1.5b']:
    try:
        for t in json.load(open(f'{o}/llamabench_pp_{m}.json')): print('llama.cpp', m, f"pp{t['n_prompt']}", round(t['avg_ts'],1), '+-', round(t['stddev_ts'],1), [round(x) for x in t.get('samples_ts',[])])
    except Exception as e: print('llama-bench', m, e)
    for b in ['new','base']:
        try: print('graphrun', b, 'after', m, ' '.join(f"{t['test']}={t['tok_s']:.0f} {[round(x) for x in t['runs']]}" for t in json.load(open(f'{o}/graphrun_after_{m}_{b}.json'))['tests']))
        except Exception as e: print('graphrun after', b, m, e)
PY
echo "=== end $(date +%T) $SECONDS s"
cd $OUT && tar czf r.tgz r && rm -rf r

#!/usr/bin/env bash
# device call 1 of 2026-12-02 (third session): base = 6f5c696's binary (main), new = working tree: Q4_K prefill
# GEMMs (mmq_q4_k, mmq_pair_q4_k) on the split-scale MMA (weights unpacked as q·sl and q·sh planes, sc = 8·sh + sl;
# the super-block's integer sums lo + 8·hi replace the per-group scale multiply-adds). Every other kernel unchanged.
# Parity (backend_ops; trace_exact new vs base), the A/B, Nsight GEMM times, and llama.cpp
# (llama-cpp-python 0.3.36's vendor/llama.cpp) built here in the background, measured after.
set -u
cd carry && for f in *.xz; do [ $f = llama-cpp-src.tar.xz ] || xz -d -T0 $f; done; chmod +x graphrun* backend_ops gpu_persistent; cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O; G=$C/graphrun; B=$C/graphrun-base
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
export PATH=$PATH:/usr/local/cuda/bin
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total,driver_version --format=csv > $O/nvidia-smi.txt
LC=/tmp/lcpp; mkdir -p $LC/src && xz -dc $C/llama-cpp-src.tar.xz | tar xf - -C $LC/src
( cd $LC/src && cmake -B build -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
    -DCMAKE_BUILD_TYPE=Release > $O/lcpp_configure.log 2>&1 && t0=$SECONDS && cmake --build build --target llama-bench -j 12 > $O/lcpp_build.log 2>&1; \
    echo "build exit $? after $((SECONDS - t0)) s" >> $O/lcpp_build.log ) &
BUILD=$!
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $G synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== ops $(date +%T)"
GRAPHRUN_PARITY_REPORT=$O/backend_ops.jsonl timeout 70 $C/backend_ops --ignored --nocapture --test-threads 1 > $O/backend_ops.log 2>&1; echo "backend_ops exit $?" >> $O/backend_ops.log; tail -3 $O/backend_ops.log
python3 - $O/backend_ops.jsonl <<'PY'
import json,sys
w={}; n=0; bad=0
for l in open(sys.argv[1]):
    r=json.loads(l); n+=1; bad+= not r['ok']
    if 'q4_k' not in r['kernel'].lower() or 'mmq' not in r['kernel']: continue
    tag=r['kernel']+' '+r['act']; q=r['nmse']/r['band']
    if q>=w.get(tag,(-1,))[0]: w[tag]=(q,r['nmse'],r['band'],r['ok'],r['value'])
print('records',n,'out of band',bad)
for t,v in sorted(w.items()): print('worst',t,'nmse %.3e band %.1e ok %s (%s)'%(v[1],v[2],v[3],v[4]))
PY
echo "=== trace_exact new vs base $(date +%T)"
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(30)]))")
P2=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(300)]))")
for b in base new; do X=$G; [ $b = base ] && X=$B
  $X trace /tmp/gr/1.5b.gguf -p "$P" --gpu --decode 2 --nodes 'blk.0.*,blk.13.*,blk.27.*,output*,result*' -o /tmp/tr_$b 2>&1 | tail -1
  $X trace /tmp/gr/1.5b.gguf -p "$P2" --ctx 8192 --gpu --decode 2 --nodes 'blk.0.*,blk.27.*,output*,result*' -o /tmp/tr2_$b 2>&1 | tail -1
  $X trace /tmp/gr/7b.gguf -p "$P" --gpu --decode 2 --nodes 'blk.0.*,blk.27.*,output*,result*' -o /tmp/tr3_$b 2>&1 | tail -1; done
for x in "tr 1.5b_651" "tr2 1.5b_long" "tr3 7b_651"; do set -- $x
  $G diff /tmp/$1_new /tmp/$1_base --contract trace_exact > $O/trace_new_vs_base_$2.txt 2>&1; echo "diff exit $?" >> $O/trace_new_vs_base_$2.txt; grep -E "compared|verdict|exit" $O/trace_new_vs_base_$2.txt | cut -c1-200; done
echo "=== bench A/B $(date +%T)"
for m in 7b 1.5b 0.5b; do
  for b in base new new base; do X=$G; [ $b = base ] && X=$B
    timeout 60 $X bench /tmp/gr/$m.gguf -p 512,2048,8192 -n 32 -r 2 --json > $O/bench_${m}_${b}_$(date +%s).json 2>$O/bench_${m}_${b}.err; done
done
python3 - $O <<'PY'
import json,glob,sys
for f in sorted(glob.glob(sys.argv[1]+'/bench_*.json')):
    try: j=json.load(open(f))
    except Exception as e: print(f, 'unreadable', e); continue
    print(f.split('/')[-1], ' '.join(f"{t['test']}={t['tok_s']:.0f}" for t in j['tests']))
PY
echo "=== ncu GEMM times pp512, 7B, new and base (real clocks) $(date +%T)"
for b in new base; do X=$G; [ $b = base ] && X=$B
  [ $SECONDS -lt 330 ] && timeout 60 ncu --clock-control none --kernel-name regex:'^mmq' --metrics gpu__time_duration.sum --csv --print-units base $X bench /tmp/gr/7b.gguf -p 512 -n 1 -r 1 > $O/ncu_mmq_pp512_7b_$b.csv 2> $O/ncu_mmq_pp512_7b_$b.err; tail -1 $O/ncu_mmq_pp512_7b_$b.err
done
python3 - $O <<'PY'
import csv,sys,collections
for b in ['base','new']:
    try:
        rows=[r for r in csv.reader(open(f'{sys.argv[1]}/ncu_mmq_pp512_7b_{b}.csv')) if len(r)>10]
        h=rows[0]; ki=h.index('Kernel Name'); vi=h.index('Metric Value')
        t=collections.defaultdict(float); n=collections.Counter()
        for r in rows[1:]: t[r[ki]]+=float(r[vi]); n[r[ki]]+=1
        print(b, ' '.join(f'{k}:{n[k]}x {v/1e6:.2f}ms' for k,v in sorted(t.items())), 'total %.2f ms'%(sum(t.values())/1e6))
    except Exception as e: print('ncu', b, e)
PY
echo "=== waiting for the llama.cpp build $(date +%T)"
while kill -0 $BUILD 2>/dev/null && [ $SECONDS -lt 430 ]; do sleep 3; done
tail -1 $O/lcpp_build.log
LB=$LC/src/build/bin/llama-bench
for m in 7b 1.5b; do
  echo "=== llama.cpp and graphrun $m $(date +%T)"
  [ -x $LB ] && timeout 70 $LB -m /tmp/gr/$m.gguf -ngl 99 -fa 1 -p 512,2048,8192 -n 128 -r 2 -o json > $O/llamabench_$m.json 2> $O/llamabench_$m.err
  timeout 40 $G bench /tmp/gr/$m.gguf -p 512,2048,8192 -n 128 -r 2 --json > $O/graphrun_n128_$m.json 2> $O/graphrun_n128_$m.err
done
python3 - $O <<'PY'
import json,sys
o=sys.argv[1]
for m in ['7b','1.5b']:
    try:
        for t in json.load(open(f'{o}/llamabench_{m}.json')): print('llama.cpp', m, f"pp{t['n_prompt']} tg{t['n_gen']}", round(t['avg_ts'],1), '+-', round(t['stddev_ts'],1), t.get('samples_ts'))
    except Exception as e: print('llama-bench json unreadable', m, e)
    try: print('graphrun', m, ' '.join(f"{t['test']}={t['tok_s']:.0f} {t['runs']}" for t in json.load(open(f'{o}/graphrun_n128_{m}.json'))['tests']))
    except Exception as e: print('graphrun json unreadable', m, e)
PY
echo "=== persistent (prompts of 1 to 2,049 tokens, then decode) in the time left $(date +%T)"
left=$((580 - SECONDS)); [ $left -gt 30 ] && { timeout $left $C/gpu_persistent --ignored --nocapture --test-threads 1 > $O/gpu_persistent.log 2>&1; echo "gpu_persistent exit $? (limit $left s)" >> $O/gpu_persistent.log; grep -E "^test |test result|exit" $O/gpu_persistent.log; }
cd $OUT && tar czf r.tgz r && rm -rf r

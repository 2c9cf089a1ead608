#!/usr/bin/env bash
# device call 4 of 2026-12-02 (third session): the committed variant. base = 22096c2's binary (main);
# new = working tree: decode-step kernels launched with programmatic stream serialization (PDL), every kernel waiting
# for its predecessor first; matvec_* prefetch their first tile into L2 before the wait only when their grid is one
# wave (the host's `prefetch` argument); qkv_* prefetch each warp's first row pair. Same-call A/B (tg128 at depth 0 and 4,096, pp512), greedy tokens + trace_exact new vs base,
# backend_ops, gpu_batch, gpu_persistent, the 7B decode profile; llama.cpp (llama-cpp-python 0.3.36's vendor/llama.cpp)
# built in the background and measured last (tg128 at depth 0 and 4,096).
set -u
cd carry && for f in *.xz; do xz -d -T0 $f; done; chmod +x graphrun* backend_ops gpu_batch gpu_persistent; cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O; G=$C/graphrun; B=$C/graphrun-base
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
export PATH=$PATH:/usr/local/cuda/bin
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total,driver_version --format=csv > $O/nvidia-smi.txt
LC=$PWD/target/lcpp
[ -d $LC/src ] || { mkdir -p $LC && tar xf $C/llama-cpp-src.tar -C $LC; }
( cd $LC/src && cmake -B build -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
    -DCMAKE_BUILD_TYPE=Release > $O/lcpp_configure.log 2>&1 && t0=$SECONDS && cmake --build build --target llama-bench -j 10 > $O/lcpp_build.log 2>&1; \
    echo "build exit $? after $((SECONDS - t0)) s" >> $O/lcpp_build.log ) &
BUILD=$!
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
echo "=== trace_exact new vs base $(date +%T)"
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(30)]))")
for b in base new; do X=$G; [ $b = base ] && X=$B
  $X trace /tmp/gr/1.5b.gguf -p "$P" --gpu --decode 3 --nodes 'blk.0.*,blk.13.*,blk.27.*,output*,result*' -o /tmp/tr_$b 2>&1 | tail -1
  $X trace /tmp/gr/7b.gguf -p "$P" --gpu --decode 3 --nodes 'blk.0.*,blk.27.*,output*,result*' -o /tmp/tr3_$b 2>&1 | tail -1; done
for x in "tr 1.5b" "tr3 7b"; do set -- $x
  $G diff /tmp/$1_new /tmp/$1_base --contract trace_exact > $O/trace_new_vs_base_$2.txt 2>&1; echo "diff exit $?" >> $O/trace_new_vs_base_$2.txt; grep -E "compared|verdict|exit" $O/trace_new_vs_base_$2.txt | cut -c1-200; done
timeout 60 $G dump /tmp/gr/7b.gguf --stage fused --phase decode --profile > $O/profile_7b_new.txt 2>&1; tail -1 $O/profile_7b_new.txt
echo "=== ops $(date +%T)"
GRAPHRUN_PARITY_REPORT=$O/backend_ops.jsonl timeout 60 $C/backend_ops --ignored --nocapture --test-threads 1 > $O/backend_ops.log 2>&1; echo "backend_ops exit $?" >> $O/backend_ops.log; tail -2 $O/backend_ops.log
echo "=== batch $(date +%T)"
timeout 100 $C/gpu_batch --ignored --nocapture --test-threads 1 > $O/gpu_batch.log 2>&1; echo "gpu_batch exit $?" >> $O/gpu_batch.log; grep -E "test result|exit" $O/gpu_batch.log
echo "=== persistent $(date +%T)"
timeout 100 $C/gpu_persistent --ignored --nocapture --test-threads 1 > $O/gpu_persistent.log 2>&1; echo "gpu_persistent exit $?" >> $O/gpu_persistent.log; grep -E "test result|exit" $O/gpu_persistent.log
echo "=== waiting for the llama.cpp build $(date +%T)"
while kill -0 $BUILD 2>/dev/null && [ $SECONDS -lt 440 ]; do sleep 3; done
tail -1 $O/lcpp_build.log
LB=$LC/src/build/bin/llama-bench
for m in 7b 1.5b; do
  left=$((575 - SECONDS)); [ -x $LB ] && [ $left -gt 20 ] && { echo "=== llama.cpp $m $(date +%T)"; timeout $left $LB -m /tmp/gr/$m.gguf -ngl 99 -fa 1 -p 512 -n 128 -d 0,4096 -r 2 -o json > $O/llamabench_$m.json 2> $O/llamabench_$m.err; }
done
python3 - $O <<'PY'
import json,sys
for m in ['7b','1.5b']:
    try:
        for t in json.load(open(f'{sys.argv[1]}/llamabench_{m}.json')): print('llama.cpp', m, f"pp{t['n_prompt']} tg{t['n_gen']} d{t.get('n_depth')}", round(t['avg_ts'],1), '+-', round(t['stddev_ts'],1), t.get('samples_ts'))
    except Exception as e: print('llama-bench json unreadable', m, e)
PY
cd $OUT && tar czf r.tgz r && rm -rf r

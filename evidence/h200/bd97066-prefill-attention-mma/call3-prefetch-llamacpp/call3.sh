#!/usr/bin/env bash
# device call 3 (2026-12-01; call 2 ran this with a broken new binary: its cp.async copies were never committed, so not waited for): att = 84d0225 (prefill attention on tensor cores); new = working tree (att + the
# mmq-prefetch branch: cp.async staging of the next chunk's activations, L1 prefetch of the chunk after);
# llama.cpp = llama-cpp-python 0.3.36 sdist's vendor/llama.cpp, pruned to llama-bench, built here for sm_90
set -u
cd carry && for f in *.xz; do xz -d -T0 $f; done; chmod +x graphrun* backend_ops gpu_persistent; cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O; G=$C/graphrun; A=$C/graphrun-att
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
export PATH=$PATH:/usr/local/cuda/bin
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total,driver_version --format=csv > $O/nvidia-smi.txt
(which cmake ninja nvcc gcc g++; cmake --version | head -1; nvcc --version | tail -2; nproc) > $O/tools.txt 2>&1; cat $O/tools.txt
LC=$PWD/target/lcpp  # git-ignored, outside carry/: a warm machine keeps a half-done build for the next call
[ -d $LC/src ] || { mkdir -p $LC && tar xf $C/llama-cpp-src.tar -C $LC; }
( cd $LC/src && cmake -B build -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
    -DCMAKE_BUILD_TYPE=Release > $O/lcpp_configure.log 2>&1 && t0=$SECONDS && cmake --build build --target llama-bench -j 14 > $O/lcpp_build.log 2>&1; \
    echo "build exit $? after $((SECONDS - t0)) s" >> $O/lcpp_build.log ) &
BUILD=$!
mkdir -p /tmp/gr; for p in 1.5b 7b; do $G synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== trace $(date +%T)"
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(30)]))")
for b in att new; do X=$G; [ $b = att ] && X=$A
  $X trace /tmp/gr/1.5b.gguf -p "$P" --gpu --decode 2 --nodes 'blk.0.*,blk.13.*,blk.27.*,output*,result*' -o /tmp/tr_$b 2>&1 | tail -1; done
$G diff /tmp/tr_new /tmp/tr_att --contract trace_exact > $O/trace_new_vs_att_1.5b.txt 2>&1; echo "diff exit $?" >> $O/trace_new_vs_att_1.5b.txt; tail -3 $O/trace_new_vs_att_1.5b.txt
echo "=== bench $(date +%T)"
for m in 7b 1.5b; do for b in att new new att; do X=$G; [ $b = att ] && X=$A
  timeout 100 $X bench /tmp/gr/$m.gguf -p 512,2048,8192 -n 32 -r 2 --json > $O/bench_${m}_${b}_$(date +%s).json 2>$O/bench_${m}_${b}.err; done; done
python3 - $O <<'PY'
import json,glob,sys
for f in sorted(glob.glob(sys.argv[1]+'/bench_*.json')):
    try: j=json.load(open(f))
    except Exception as e: print(f, 'unreadable', e); continue
    print(f.split('/')[-1], ' '.join(f"{t['test']}={t['tok_s']:.0f}" for t in j['tests']))
PY
echo "=== ops $(date +%T)"
GRAPHRUN_PARITY_REPORT=$O/backend_ops.jsonl timeout 60 $C/backend_ops --ignored --nocapture --test-threads 1 > $O/backend_ops.log 2>&1; echo "backend_ops exit $?" >> $O/backend_ops.log; tail -3 $O/backend_ops.log
echo "=== waiting for the llama.cpp build $(date +%T)"
while kill -0 $BUILD 2>/dev/null && [ $SECONDS -lt 440 ]; do sleep 5; done
tail -3 $O/lcpp_build.log
LB=$LC/src/build/bin/llama-bench
if [ -x $LB ]; then
  for m in 7b 1.5b; do
    echo "=== llama-bench $m $(date +%T)"
    timeout 90 $LB -m /tmp/gr/$m.gguf -ngl 99 -fa 1 -p 512,2048,8192 -n 128 -r 2 -o json > $O/llamabench_$m.json 2> $O/llamabench_$m.err; tail -2 $O/llamabench_$m.err
    timeout 60 $G bench /tmp/gr/$m.gguf -p 512,2048,8192 -n 128 -r 2 --json > $O/graphrun_bench_$m.json 2>$O/graphrun_bench_$m.err
    python3 - $O $m <<'PY'
import json,sys
o,m=sys.argv[1],sys.argv[2]
try:
    for t in json.load(open(f'{o}/llamabench_{m}.json')): print('llama.cpp', m, f"pp{t['n_prompt']} tg{t['n_gen']}", round(t['avg_ts'],1), '+-', round(t['stddev_ts'],1))
except Exception as e: print('llama-bench json unreadable', e)
j=json.load(open(f'{o}/graphrun_bench_{m}.json')); print('graphrun', m, ' '.join(f"{t['test']}={t['tok_s']:.1f}" for t in j['tests']))
PY
  done
fi
left=$((560 - SECONDS)); echo "=== persistent ($left s left) $(date +%T)"
[ $left -gt 40 ] && { timeout $left $C/gpu_persistent prompts_of_every_length_then_decode_match_the_interpreter --ignored --nocapture > $O/gpu_persistent_lengths.log 2>&1; echo "exit $?" >> $O/gpu_persistent_lengths.log; tail -4 $O/gpu_persistent_lengths.log; }
cd $OUT && tar czf r.tgz r && rm -rf r

#!/usr/bin/env bash
# device call 4 of 2026-12-03: graphrun at f2e5b48 against llama.cpp's llama-bench built in this call (llama-cpp-python
# 0.3.36's vendor/llama.cpp, scripts/llama-cpp-src) on the same synthetic files. Order: graphrun round 1 (during the
# llama.cpp build), llama.cpp, graphrun round 2 (idle host).
set -u
cd carry && for f in *.xz; do [ $f = llama-cpp-src.tar.xz ] || xz -d -T0 $f; done; chmod +x graphrun; cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O; G=$C/graphrun
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
echo "=== graphrun round 1 $(date +%T) $SECONDS s"
for m in 7b 1.5b 0.5b; do
  timeout 60 $G bench /tmp/gr/$m.gguf -p 512,2048,8192 -n 128 -d 0,4096 -r 3 --json > $O/graphrun_r1_$m.json 2> $O/graphrun_r1_$m.err
done
echo "=== prefill profile 7B 512 $(date +%T) $SECONDS s"
timeout 40 $G dump /tmp/gr/7b.gguf --stage fused --phase prefill --profile --prompt 512 > $O/profile_prefill_7b_512.txt 2>&1; tail -3 $O/profile_prefill_7b_512.txt
echo "=== waiting for the llama.cpp build $(date +%T) $SECONDS s"
while kill -0 $BUILD 2>/dev/null && [ $SECONDS -lt 470 ]; do sleep 3; done
tail -1 $O/lcpp_build.log
LB=$LC/src/build/bin/llama-bench
for m in 7b 1.5b; do
  echo "=== llama.cpp $m $(date +%T) $SECONDS s"
  [ -x $LB ] && timeout 60 $LB -m /tmp/gr/$m.gguf -ngl 99 -fa 1 -p 512,2048,8192 -n 0 -r 3 -o json > $O/llamabench_pp_$m.json 2> $O/llamabench_pp_$m.err
  [ -x $LB ] && timeout 40 $LB -m /tmp/gr/$m.gguf -ngl 99 -fa 1 -p 0 -n 128 -d 0,4096 -r 3 -o json > $O/llamabench_tg_$m.json 2> $O/llamabench_tg_$m.err
done
echo "=== graphrun round 2 $(date +%T) $SECONDS s"
for m in 7b 1.5b; do
  [ $SECONDS -lt 540 ] && timeout 45 $G bench /tmp/gr/$m.gguf -p 512,2048,8192 -n 128 -d 0,4096 -r 3 --json > $O/graphrun_r2_$m.json 2> $O/graphrun_r2_$m.err
done
python3 - $O <<'PY'
import json,sys,os
o=sys.argv[1]
def g(f):
    try: return json.load(open(f'{o}/{f}'))
    except Exception as e: return None
for m in ['7b','1.5b','0.5b']:
    for f in [f'graphrun_r1_{m}.json', f'graphrun_r2_{m}.json']:
        j=g(f)
        if j: print(f, ' '.join(f"{t['test']}{'@d'+str(t['depth']) if t['depth'] else ''}={t['tok_s']:.0f} {[round(x) for x in t['runs']]}" for t in j['tests']))
    for f in [f'llamabench_pp_{m}.json', f'llamabench_tg_{m}.json']:
        j=g(f)
        if j:
            for t in j: print(f, f"pp{t['n_prompt']} tg{t['n_gen']} d{t.get('n_depth',0)}", round(t['avg_ts'],1), '+-', round(t['stddev_ts'],1), [round(x) for x in t.get('samples_ts',[])])
PY
echo "=== end $(date +%T) $SECONDS s"
cd $OUT && tar czf r.tgz r && rm -rf r

#!/usr/bin/env bash
# Session 60, call 2 (H200 only): llama.cpp (llama-cpp-python 0.3.36's vendor/llama.cpp, scripts/llama-cpp-src, built
# in the background from the start) against graphrun on the same synthetic files, -p 512 -n 128 -d 0,4096,8192 -r 2,
# graphrun's runs before and after llama-bench's: main's kernels (876fa01, dir base/ of carry/c12.tar.xz) and
# branch qkv-order (dir ord/). While llama.cpp builds: gpu_e2e synthetic on ord at 1, 129 and 513 tokens.
# usage: bash carry/call13.sh. Carry carry/c12.tar.xz, carry/llama-cpp-src.tar.xz, carry/call13.sh.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
O=$OUT/r; mkdir -p $O; C=$PWD/carry
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu,compute_cap --format=csv > $O/nvidia-smi.csv; cat $O/nvidia-smi.csv
LC=$(mktemp -d); tar xJf $C/llama-cpp-src.tar.xz -C $LC
ARCH=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d .)
( t0=$SECONDS; cd $LC/src && cmake -B build -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=$ARCH -DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
    -DCMAKE_BUILD_TYPE=Release > $O/lcpp_configure.log 2>&1 && nice -n 10 cmake --build build --target llama-bench -j 14 > $O/lcpp_build.log 2>&1; \
    echo "build exit $? after $((SECONDS - t0)) s" >> $O/lcpp_build.log ) &
BUILD=$!
X=$(mktemp -d); xz -dc $C/c12.tar.xz | tar xf - -C $X; chmod +x $X/*/*
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $X/base/graphrun synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== gpu_e2e during the build $(date +%T) ($SECONDS s)"
GRAPHRUN_E2E_PRESETS=tiny,tiny-llama,0.5b,1.5b GRAPHRUN_E2E_LENGTHS=513 timeout 200 $X/ord/gpu_e2e synthetic --ignored --nocapture > $O/gpu_e2e_513.log 2>&1; echo "gpu_e2e exit $? ($SECONDS s)"; grep -E "^test result|FAIL" $O/gpu_e2e_513.log | tail -3; pack
echo "=== waiting for the llama.cpp build $(date +%T) ($SECONDS s)"
while kill -0 $BUILD 2>/dev/null && [ $SECONDS -lt 420 ]; do sleep 2; done
tail -1 $O/lcpp_build.log
LB=$LC/src/build/bin/llama-bench
for m in 7b 1.5b 0.5b; do
  echo "=== llama.cpp and graphrun $m $(date +%T) ($SECONDS s)"
  for a in base ord; do timeout 40 $X/$a/graphrun bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096,8192 -r 2 --json > $O/bench_${m}_graph_${a}_$(date +%s%N).json 2>> $O/bench_${m}_graph_$a.err; done
  [ -x $LB ] && timeout 60 $LB -m /tmp/gr/$m.gguf -ngl 99 -fa 1 -p 512 -n 128 -d 0,4096,8192 -r 2 -o json > $O/llamabench_$m.json 2> $O/llamabench_$m.err
  for a in ord base; do timeout 40 $X/$a/graphrun bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096,8192 -r 2 --json > $O/bench_${m}_graph_${a}_$(date +%s%N).json 2>> $O/bench_${m}_graph_$a.err; done
  pack
done
python3 - $O <<'PY' | tee $O/vs_llama.txt
import json,sys,glob,statistics as st
o=sys.argv[1]
for m in ['7b','1.5b','0.5b']:
    try: ll={(f"pp{t['n_prompt']}" if t['n_gen']==0 else f"tg{t['n_gen']}", t.get('n_depth',0)): (t['avg_ts'], t.get('stddev_ts',0)) for t in json.load(open(f'{o}/llamabench_{m}.json'))}
    except Exception as e: print('llama-bench json unreadable', m, e); continue
    for a in ['base','ord']:
        r={}
        for f in glob.glob(f'{o}/bench_{m}_graph_{a}_*.json'):
            for t in json.load(open(f))['tests']: r.setdefault((t['test'],t['depth']),[]).extend(t['runs'])
        for k in sorted(ll):
            g=st.mean(r[k]) if k in r else float('nan')
            print(f"{m} {a:4} {k[0]} d{k[1]}: llama.cpp {ll[k][0]:.1f} (sd {ll[k][1]:.1f})  graphrun {g:.1f} [{' '.join('%.0f' % x for x in r.get(k, []))}]  ({g/ll[k][0]:.2f}x)")
PY
echo "=== profiles $(date +%T) ($SECONDS s)"
for m in 7b 1.5b; do timeout 40 $X/base/graphrun dump /tmp/gr/$m.gguf --stage fused --profile > $O/profile_$m.txt 2> $O/profile_$m.err; echo "profile $m exit $?: $(grep 'total kernel time' $O/profile_$m.txt)"; done
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O

#!/usr/bin/env bash
# Session 56's last call: (1) q6plane (../q6plane.cu: the Q6_K decode matvecs over aligned planes against the
# generated kernel, same bits); (2) llama.cpp (llama-cpp-python 0.3.36's vendor/llama.cpp, built in the
# background from the start) and graphrun on the same files, -p 512 -n 128 -d 0,4096,8192 -r 2: base = main 235aaaf's
# code (carry/mu.tar.xz, dir mu/), chain = main 7a1c85b's (carry/ch.tar.xz, dir ch/), interleaved, then llama-bench,
# then both again. Carry exactly carry/mu.tar.xz, carry/ch.tar.xz, carry/q6plane.xz, carry/llama-cpp-src.tar.xz,
# carry/benchsum2.py.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache
O=$OUT/r; mkdir -p $O; C=$PWD/carry
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu,compute_cap --format=csv > $O/nvidia-smi.csv; cat $O/nvidia-smi.csv
LC=/tmp/lcpp; mkdir -p $LC && tar xJf $C/llama-cpp-src.tar.xz -C $LC
ARCH=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d .)
( t0=$SECONDS; cd $LC/src && cmake -B build -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=$ARCH -DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
    -DCMAKE_BUILD_TYPE=Release > $O/lcpp_configure.log 2>&1 && nice -n 10 cmake --build build --target llama-bench -j 12 > $O/lcpp_build.log 2>&1; \
    echo "build exit $? after $((SECONDS - t0)) s" >> $O/lcpp_build.log ) &
BUILD=$!
mkdir -p /tmp/x && for t in mu ch; do xz -dc $C/$t.tar.xz | tar xf - -C /tmp/x; done; xz -dc $C/q6plane.xz > /tmp/x/q6plane; chmod +x /tmp/x/*/* /tmp/x/q6plane
echo "=== q6plane $(date +%T) ($SECONDS s)"
timeout 150 /tmp/x/q6plane > $O/q6plane.txt 2>&1; echo "q6plane exit $?"; cat $O/q6plane.txt; pack
declare -A A=([base]=/tmp/x/mu/graphrun [chain]=/tmp/x/ch/graphrun)
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do /tmp/x/ch/graphrun synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== bench $(date +%T) ($SECONDS s)"
for m in 7b 1.5b 0.5b; do for b in base chain chain base; do
  timeout 60 ${A[$b]} bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096,8192 -r 2 --json > $O/bench_${m}_graph_${b}_$(date +%s%N).json 2>>$O/bench_${m}_graph_$b.err; done
  python3 $C/benchsum2.py $O $m graph base chain | tee -a $O/bench_summary.txt; pack; done
echo "=== waiting for the llama.cpp build $(date +%T) ($SECONDS s)"
while kill -0 $BUILD 2>/dev/null && [ $SECONDS -lt 500 ]; do sleep 2; done
tail -1 $O/lcpp_build.log
LB=$LC/src/build/bin/llama-bench
for m in 7b 1.5b 0.5b; do
  echo "=== llama.cpp and graphrun $m $(date +%T) ($SECONDS s)"
  [ -x $LB ] && timeout 60 $LB -m /tmp/gr/$m.gguf -ngl 99 -fa 1 -p 512 -n 128 -d 0,4096,8192 -r 2 -o json > $O/llamabench_$m.json 2> $O/llamabench_$m.err
  for b in chain base; do timeout 40 ${A[$b]} bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096,8192 -r 2 --json > $O/bench_${m}_graph_${b}_$(date +%s%N).json 2>> $O/bench_${m}_graph_$b.err; done
  pack
done
for m in 7b 1.5b 0.5b; do python3 $C/benchsum2.py $O $m graph base chain; done | tee $O/bench_summary_all.txt
python3 - $O <<'PY' | tee $O/vs_llama.txt
import json,sys,glob,statistics as st
o=sys.argv[1]
for m in ['7b','1.5b','0.5b']:
    try: ll={(f"pp{t['n_prompt']}" if t['n_gen']==0 else f"tg{t['n_gen']}", t.get('n_depth',0)): t['avg_ts'] for t in json.load(open(f'{o}/llamabench_{m}.json'))}
    except Exception as e: print('llama-bench json unreadable', m, e); continue
    r={}
    for f in glob.glob(f'{o}/bench_{m}_graph_chain_*.json'):
        for t in json.load(open(f))['tests']: r.setdefault((t['test'],t['depth']),[]).extend(t['runs'])
    for k in sorted(ll):
        g=st.mean(r[k]) if k in r else float('nan')
        print(f"{m} {k[0]} d{k[1]}: llama.cpp {ll[k]:.1f}  graphrun {g:.1f}  ({g/ll[k]:.2f}x)")
PY
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O

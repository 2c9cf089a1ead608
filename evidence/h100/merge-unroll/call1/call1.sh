#!/usr/bin/env bash
# merge-unroll call 1: prep_merge loads the partials after its first 32 in chunks of 32 issued together (branch
# merge-unroll, carry/mu.tar.xz, dir mu/: graphrun, backend_ops) against main (carry/mp.tar.xz, dir mp/: the
# merge-prep build, c7bc052 = main's code). Same sums in the same order: tokens must be equal.
# (1) greedy tokens 1.5B/7B, short and 4,979-token prompts; (2) bench A/B base new new base, -d 0,4096,8192;
# (3) backend_ops; (4) llama.cpp (llama-cpp-python 0.3.36's vendor/llama.cpp, carry/llama-cpp-src.tar.xz from
# scripts/llama-cpp-src), built in the background from the start, then llama-bench and graphrun (main, mp/) on
# the same files, -p 512 -n 128 -d 0,4096,8192 -r 2.
# Carry exactly carry/mp.tar.xz, carry/mu.tar.xz, carry/benchsum2.py, carry/llama-cpp-src.tar.xz.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
export PATH=$PATH:/usr/local/cuda/bin
O=$OUT/r; mkdir -p $O; C=$PWD/carry
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu,compute_cap --format=csv > $O/nvidia-smi.csv; cat $O/nvidia-smi.csv
LC=/tmp/lcpp; mkdir -p $LC && tar xJf $C/llama-cpp-src.tar.xz -C $LC
# (a shell variable named CC would be read by cmake as the C compiler: ARCH.)
ARCH=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d .)
( t0=$SECONDS; cd $LC/src && cmake -B build -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=$ARCH -DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
    -DCMAKE_BUILD_TYPE=Release > $O/lcpp_configure.log 2>&1 && nice -n 10 cmake --build build --target llama-bench -j 12 > $O/lcpp_build.log 2>&1; \
    echo "build exit $? after $((SECONDS - t0)) s" >> $O/lcpp_build.log ) &
BUILD=$!
mkdir -p /tmp/x && for t in mp mu; do xz -dc $C/$t.tar.xz | tar xf - -C /tmp/x; done; chmod +x /tmp/x/*/*
declare -A X=([base]=/tmp/x/mp/graphrun [new]=/tmp/x/mu/graphrun)
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do ${X[base]} synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== greedy tokens $(date +%T) ($SECONDS s)"
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(40)]))")
PL=$(python3 -c "print(' '.join(['def g%d(x): return x+%d' % (i,i) for i in range(200)]))")
for m in 1.5b 7b; do for L in short long; do
  Q="$P"; n=32; [ $L = long ] && Q="$PL" && n=16
  for b in base new; do timeout 60 ${X[$b]} run /tmp/gr/$m.gguf -p "$Q" -n $n --ctx 8192 --ids > $O/run_${m}_${L}_$b.txt 2> $O/run_${m}_${L}_$b.err; done
  cmp -s $O/run_${m}_${L}_base.txt $O/run_${m}_${L}_new.txt && [ -s $O/run_${m}_${L}_new.txt ] && echo "$m $L: tokens equal ($(wc -w < $O/run_${m}_${L}_new.txt))" || echo "$m $L: TOKENS DIFFER"
done; done | tee $O/tokens.txt; pack
echo "=== bench A/B $(date +%T) ($SECONDS s)"
for m in 1.5b 7b 0.5b; do for b in base new new base; do
  timeout 60 ${X[$b]} bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096,8192 -r 2 --json > $O/bench_${m}_graph_${b}_$(date +%s%N).json 2>>$O/bench_${m}_graph_$b.err; done
  python3 $C/benchsum2.py $O $m graph base new | grep tg | tee -a $O/bench_summary.txt; pack; done
timeout 40 /tmp/x/mu/backend_ops --ignored --nocapture > $O/backend_ops.log 2>&1; echo "backend_ops: exit $?"; grep -E "test result" $O/backend_ops.log
echo "=== waiting for the llama.cpp build $(date +%T) ($SECONDS s)"
while kill -0 $BUILD 2>/dev/null && [ $SECONDS -lt 500 ]; do sleep 2; done
tail -1 $O/lcpp_build.log
LB=$LC/src/build/bin/llama-bench
for m in 7b 1.5b 0.5b; do
  echo "=== llama.cpp and graphrun $m $(date +%T) ($SECONDS s)"
  [ -x $LB ] && timeout 60 $LB -m /tmp/gr/$m.gguf -ngl 99 -fa 1 -p 512 -n 128 -d 0,4096,8192 -r 2 -o json > $O/llamabench_$m.json 2> $O/llamabench_$m.err
  timeout 40 ${X[base]} bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096,8192 -r 2 --json > $O/bench_${m}_vsllama_$(date +%s%N).json 2>> $O/bench_${m}_vsllama.err
  pack
done
python3 - $O <<'PY' | tee $O/vs_llama.txt
import json,sys,glob,statistics as st
o=sys.argv[1]
for m in ['7b','1.5b','0.5b']:
    try:
        for t in json.load(open(f'{o}/llamabench_{m}.json')): print('llama.cpp', m, f"pp{t['n_prompt']} tg{t['n_gen']} d{t.get('n_depth',0)}", round(t['avg_ts'],1), '+-', round(t['stddev_ts'],1), t.get('samples_ts'))
    except Exception as e: print('llama-bench json unreadable', m, e)
    for f in glob.glob(f'{o}/bench_{m}_vsllama_*.json'):
        try: print('graphrun', m, ' '.join(f"{t['test']}@d{t['depth']}={st.mean(t['runs']):.1f} {t['runs']}" for t in json.load(open(f))['tests']))
        except Exception as e: print('graphrun json unreadable', m, e)
PY
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O

#!/usr/bin/env bash
# merge-prep-batch call 1: the deferred attention merge in batched decode steps too (branch merge-prep-batch,
# carry/mb.tar.xz, dir mb/: graphrun, gpu_batch), against main's behaviour (carry/ag.tar.xz, dir ag/: main
# 22db7be + att-geom's knobs, left unset here, so main's code path). Also llama.cpp (llama-cpp-python 0.3.36's
# vendor/llama.cpp, carry/llama-cpp-src.tar.xz from scripts/llama-cpp-src) built in the background and run
# after, against graphrun (mb: its single-row decode is main's) on the same files. Carry exactly carry/mb.tar.xz,
# carry/ag.tar.xz, carry/llama-cpp-src.tar.xz.
# (1) gpu_batch on the branch (batched rows bit-identical to each sequence alone, now both deferred);
# (2) serve 1, 2, 4, 8 streams, 1.5B and 7B, base new new base (short prompts: few splits, a no-regression
# check); (3) llama-bench and graphrun on the same files, -p 512 -n 128 -d 0,4096 -r 2.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
export PATH=$PATH:/usr/local/cuda/bin
O=$OUT/r; mkdir -p $O; C=$PWD/carry
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu,compute_cap --format=csv > $O/nvidia-smi.csv; cat $O/nvidia-smi.csv
LC=/tmp/lcpp; mkdir -p $LC && tar xJf $C/llama-cpp-src.tar.xz -C $LC
# (att-geom call 1 named this CC, which cmake reads as the C compiler: its configure failed.)
ARCH=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d .)
( t0=$SECONDS; cd $LC/src && cmake -B build -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=$ARCH -DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
    -DCMAKE_BUILD_TYPE=Release > $O/lcpp_configure.log 2>&1 && nice -n 10 cmake --build build --target llama-bench -j 12 > $O/lcpp_build.log 2>&1; \
    echo "build exit $? after $((SECONDS - t0)) s" >> $O/lcpp_build.log ) &
BUILD=$!
mkdir -p /tmp/x && for t in mb ag; do xz -dc $C/$t.tar.xz | tar xf - -C /tmp/x; done; chmod +x /tmp/x/*/*
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do /tmp/x/mb/graphrun synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== gpu_batch (new) $(date +%T) ($SECONDS s)"
GRAPHRUN_BIN=/tmp/x/mb/graphrun timeout 120 /tmp/x/mb/gpu_batch --ignored --nocapture --test-threads 1 > $O/gpu_batch.log 2>&1
echo "gpu_batch: exit $? ($SECONDS s)"; grep -E "test result" $O/gpu_batch.log; pack
serve_run() {  # arm dir, preset, tag
  /tmp/x/$1/graphrun serve /tmp/gr/$2.gguf --parallel 8 --ctx 1024 --port 18090 2> $O/serve_server_$3.log & S=$!
  for i in $(seq 60); do curl -s http://127.0.0.1:18090/health > /dev/null 2>&1 && break; sleep 0.5; done
  timeout 80 python3 tests/serve/bench_streams.py http://127.0.0.1:18090/v1 --streams 1,2,4,8 --tokens 128 --reps 2 --pid $S > $O/servebench_$3.txt 2>&1
  echo "== serve $3 $(grep median $O/servebench_$3.txt | python3 -c 'import sys,json; print(" ".join(str(json.loads(l)["median_aggregate_decode_tok_s"]) for l in sys.stdin))') ($SECONDS s)"
  kill $S; wait $S 2>/dev/null
}
echo "=== serve A/B $(date +%T) ($SECONDS s)"
for p in 1.5b 7b; do serve_run ag $p ${p}_base1; serve_run mb $p ${p}_new1; serve_run mb $p ${p}_new2; serve_run ag $p ${p}_base2; pack; done
echo "=== waiting for the llama.cpp build $(date +%T) ($SECONDS s)"
while kill -0 $BUILD 2>/dev/null && [ $SECONDS -lt 470 ]; do sleep 2; done
tail -1 $O/lcpp_build.log
LB=$LC/src/build/bin/llama-bench
for m in 7b 1.5b 0.5b; do
  echo "=== llama.cpp and graphrun $m $(date +%T) ($SECONDS s)"
  [ -x $LB ] && timeout 80 $LB -m /tmp/gr/$m.gguf -ngl 99 -fa 1 -p 512 -n 128 -d 0,4096 -r 2 -o json > $O/llamabench_$m.json 2> $O/llamabench_$m.err
  timeout 60 /tmp/x/mb/graphrun bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096 -r 2 --json > $O/bench_${m}_vsllama_$(date +%s%N).json 2>> $O/bench_${m}_vsllama.err
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

#!/usr/bin/env bash
# att-geom call 1: decode attention's split geometry now that the merge is spread over prep_merge's CTAs
# (main 22db7be + the experiment knobs of branch att-geom: GRAPHRUN_ATT_SPLITS=m takes ceil(m·SMs / KV heads)
# splits, GRAPHRUN_ATT_NC=32 stages 32 positions at a time). Arms of one binary (carry/ag.tar.xz, dir ag/:
# graphrun, gpu_e2e): def (main's geometry), s2, n32, s2n32. Also llama.cpp (llama-cpp-python 0.3.36's
# vendor/llama.cpp, carry/llama-cpp-src.tar.xz from scripts/llama-cpp-src) built in the background and run
# after, against graphrun's default arm on the same files. Carry exactly carry/ag.tar.xz,
# carry/llama-cpp-src.tar.xz, carry/benchsum2.py.
# (1) bench A/B interleaved (def s2 n32 s2n32 s2n32 n32 s2 def) at depths 0, 4,096, 8,192 on the 7B, 1.5B,
# 0.5B; (2) llama-bench and graphrun (def) on the same files, -p 512 -n 128 -d 0,4096 -r 2;
# (3) gpu_e2e synthetic, capped, under the knobs of the best arm if time is left.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
export PATH=$PATH:/usr/local/cuda/bin
O=$OUT/r; mkdir -p $O; C=$PWD/carry
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $O/nvidia-smi.csv; cat $O/nvidia-smi.csv
LC=/tmp/lcpp; mkdir -p $LC && tar xJf $C/llama-cpp-src.tar.xz -C $LC
CC=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d .)
( cd $LC/src && cmake -B build -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=$CC -DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
    -DCMAKE_BUILD_TYPE=Release > $O/lcpp_configure.log 2>&1 && t0=$SECONDS && nice -n 10 cmake --build build --target llama-bench -j 12 > $O/lcpp_build.log 2>&1; \
    echo "build exit $? after $((SECONDS - t0)) s" >> $O/lcpp_build.log ) &
BUILD=$!
mkdir -p /tmp/x && xz -dc $C/ag.tar.xz | tar xf - -C /tmp/x && chmod +x /tmp/x/ag/*
cat > /tmp/x/arm <<'SH'
#!/usr/bin/env bash
a=$1; shift
case $a in s2|s2n32) export GRAPHRUN_ATT_SPLITS=2;; esac
case $a in n32|s2n32) export GRAPHRUN_ATT_NC=32;; esac
exec /tmp/x/ag/graphrun "$@"
SH
chmod +x /tmp/x/arm
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do /tmp/x/ag/graphrun synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== bench A/B $(date +%T) ($SECONDS s)"
for m in 7b 1.5b 0.5b; do for b in def s2 n32 s2n32 s2n32 n32 s2 def; do
  timeout 90 /tmp/x/arm $b bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096,8192 -r 2 --json > $O/bench_${m}_graph_${b}_$(date +%s%N).json 2>>$O/bench_${m}_graph_$b.err; done
  python3 $C/benchsum2.py $O $m graph def s2 n32 s2n32 | tee -a $O/bench_summary.txt; pack; done
echo "=== waiting for the llama.cpp build $(date +%T) ($SECONDS s)"
while kill -0 $BUILD 2>/dev/null && [ $SECONDS -lt 470 ]; do sleep 2; done
tail -1 $O/lcpp_build.log
LB=$LC/src/build/bin/llama-bench
for m in 7b 1.5b 0.5b; do
  echo "=== llama.cpp and graphrun $m $(date +%T) ($SECONDS s)"
  [ -x $LB ] && timeout 80 $LB -m /tmp/gr/$m.gguf -ngl 99 -fa 1 -p 512 -n 128 -d 0,4096 -r 2 -o json > $O/llamabench_$m.json 2> $O/llamabench_$m.err
  timeout 60 /tmp/x/arm def bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096 -r 2 --json > $O/bench_${m}_vsllama_def_$(date +%s%N).json 2>> $O/bench_${m}_vsllama_def.err
  pack
done
python3 - $O <<'PY' | tee $O/vs_llama.txt
import json,sys,glob,statistics as st
o=sys.argv[1]
for m in ['7b','1.5b','0.5b']:
    try:
        for t in json.load(open(f'{o}/llamabench_{m}.json')): print('llama.cpp', m, f"pp{t['n_prompt']} tg{t['n_gen']} d{t.get('n_depth',0)}", round(t['avg_ts'],1), '+-', round(t['stddev_ts'],1), t.get('samples_ts'))
    except Exception as e: print('llama-bench json unreadable', m, e)
    for f in glob.glob(f'{o}/bench_{m}_vsllama_def_*.json'):
        try: print('graphrun', m, ' '.join(f"{t['test']}@d{t['depth']}={st.mean(t['runs']):.1f} {t['runs']}" for t in json.load(open(f))['tests']))
        except Exception as e: print('graphrun json unreadable', m, e)
PY
pack
L=$((560 - SECONDS)); echo "=== gpu_e2e synthetic under s2n32, $L s $(date +%T)"
if [ $L -gt 30 ]; then
  GRAPHRUN_ATT_SPLITS=2 GRAPHRUN_ATT_NC=32 GRAPHRUN_BIN=/tmp/x/ag/graphrun GRAPHRUN_E2E_PRESETS=tiny,0.5b,1.5b GRAPHRUN_E2E_LENGTHS=129,513 \
    timeout $L /tmp/x/ag/gpu_e2e synthetic --ignored --nocapture > $O/gpu_e2e_s2n32.log 2>&1
  echo "gpu_e2e: exit $? ($SECONDS s)"; grep -E "test result" $O/gpu_e2e_s2n32.log | head -3; grep -c "tokens interp" $O/gpu_e2e_s2n32.log
fi
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O

#!/usr/bin/env bash
# mv-balance call 2: decode matvec grids of several waves capped at one wave (src/exec/cuda/geometry.rs,
# matvec_wave), the K split unchanged, so the same bits. One binary, the working tree on main 0657972
# (carry/mw.tar.xz, dir mw/: graphrun, gpu_e2e; dir mws/: the same, stamped). Arms: base = GRAPHRUN_MV_ONE_WAVE=0
# (main's grids, main's code path), wave = default.
# (1) greedy tokens, which must be equal; (2) bench A/B interleaved; (2b) prefetch-head rerun: branch prefetch-head's
# build (carry/ph.tar.xz, dir ph/), GRAPHRUN_PREFETCH_HEAD 0, 1024, 2048, nine interleaved 7B runs
# (evidence/h100/prefetch-head/: one call, +1.0% at 2048, inconclusive); (3) timelines; (4) gpu_e2e synthetic on
# wave; (5) llama.cpp (llama-cpp-python 0.3.36's vendor/llama.cpp, built in the background from the start) and
# graphrun (wave) on the same files, -p 512 -n 128 -d 0,4096,8192 -r 2.
# Carry exactly carry/mw.tar.xz, carry/ph.tar.xz, carry/llama-cpp-src.tar.xz, carry/benchsum2.py.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
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
mkdir -p /tmp/x && for t in mw ph; do xz -dc $C/$t.tar.xz | tar xf - -C /tmp/x; done; chmod +x /tmp/x/*/*
N=/tmp/x/mw/graphrun S=/tmp/x/mws/graphrun
declare -A E=([base]=0 [wave]=1)
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $N synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== greedy tokens $(date +%T) ($SECONDS s)"
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(40)]))")
PL=$(python3 -c "print(' '.join(['def g%d(x): return x+%d' % (i,i) for i in range(200)]))")
for m in 7b 1.5b 0.5b; do for L in short long; do
  Q="$P"; n=32; [ $L = long ] && Q="$PL" && n=16
  for b in base wave; do GRAPHRUN_MV_ONE_WAVE=${E[$b]} timeout 60 $N run /tmp/gr/$m.gguf -p "$Q" -n $n --ctx 8192 --ids > $O/run_${m}_${L}_$b.txt 2> $O/run_${m}_${L}_$b.err; done
  cmp -s $O/run_${m}_${L}_base.txt $O/run_${m}_${L}_wave.txt && [ -s $O/run_${m}_${L}_wave.txt ] && echo "$m $L: tokens equal ($(wc -w < $O/run_${m}_${L}_wave.txt))" || echo "$m $L: TOKENS DIFFER"
done; done | tee $O/tokens.txt; pack
echo "=== bench $(date +%T) ($SECONDS s)"
for m in 7b 1.5b 0.5b; do for b in base wave wave base base wave; do
  GRAPHRUN_MV_ONE_WAVE=${E[$b]} timeout 60 $N bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096,8192 -r 2 --json > $O/bench_${m}_graph_${b}_$(date +%s%N).json 2>>$O/bench_${m}_graph_$b.err; done
  python3 $C/benchsum2.py $O $m graph base wave | tee -a $O/bench_summary.txt; pack; done
echo "=== prefetch-head rerun (7B) $(date +%T) ($SECONDS s)"
for h in 0 1024 2048 2048 1024 0 0 1024 2048; do
  GRAPHRUN_PREFETCH_HEAD=$h timeout 60 /tmp/x/ph/graphrun bench /tmp/gr/7b.gguf -p 512 -n 128 -d 0,4096 -r 2 --json > $O/bench_7b_ph_h${h}_$(date +%s%N).json 2>>$O/bench_7b_ph_h$h.err; done
python3 $C/benchsum2.py $O 7b ph h0 h1024 h2048 | grep tg | tee -a $O/bench_summary.txt; pack
echo "=== timelines $(date +%T) ($SECONDS s)"
for m in 7b 1.5b 0.5b; do for b in base wave; do
  GRAPHRUN_MV_ONE_WAVE=${E[$b]} timeout 60 $S dump --stage fused --timeline --prompt 512 /tmp/gr/$m.gguf > $O/timeline_${m}_$b.txt 2>> $O/timeline.err
  echo "$m $b: exit $?"; head -1 $O/timeline_${m}_$b.txt; grep -A8 "^per kernel" $O/timeline_${m}_$b.txt | cut -c1-110
done; done; pack
echo "=== gpu_e2e synthetic on wave $(date +%T) ($SECONDS s)"
GRAPHRUN_E2E_PRESETS=tiny,tiny-llama,0.5b,1.5b GRAPHRUN_E2E_LENGTHS=1,7,129,513 timeout 170 /tmp/x/mw/gpu_e2e synthetic --ignored --nocapture > $O/gpu_e2e.log 2>&1; echo "gpu_e2e exit $?"; grep -E "test result|FAIL" $O/gpu_e2e.log | tail -5
echo "=== waiting for the llama.cpp build $(date +%T) ($SECONDS s)"
while kill -0 $BUILD 2>/dev/null && [ $SECONDS -lt 470 ]; do sleep 2; done
tail -1 $O/lcpp_build.log
LB=$LC/src/build/bin/llama-bench
for m in 7b 1.5b 0.5b; do
  echo "=== llama.cpp and graphrun $m $(date +%T) ($SECONDS s)"
  [ -x $LB ] && timeout 60 $LB -m /tmp/gr/$m.gguf -ngl 99 -fa 1 -p 512 -n 128 -d 0,4096,8192 -r 2 -o json > $O/llamabench_$m.json 2> $O/llamabench_$m.err
  timeout 40 $N bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096,8192 -r 2 --json > $O/bench_${m}_vsllama_$(date +%s%N).json 2>> $O/bench_${m}_vsllama.err
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

#!/usr/bin/env bash
# tail-hoist call 1 (2026-12-05, session 49): main 718f8e7 (base, carry/base.tar.xz dir b/) vs branch tail-hoist
# (new, carry/new.tar.xz dir n/). The change: Q/K/V items get their bias and RoPE cos/sin before the grid wait, and
# residual matvecs load the residual before their dots (same arithmetic). Also llama.cpp (llama-cpp-python 0.3.36's
# vendor/llama.cpp) built in the background and measured after, against graphrun on the same files.
# (1) greedy tokens 0.5b/1.5b/7b, graph and persistent decode; (2) trace_exact new vs base; (3) backend_ops (new);
# (4) bench A/B interleaved; (5) fused profiles 1.5b; (6) llama-bench vs graphrun (new and base).
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
export PATH=$PATH:/usr/local/cuda/bin
O=$OUT/r; mkdir -p $O; C=$PWD/carry
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $O/nvidia-smi.csv
LC=/tmp/lcpp; mkdir -p $LC && tar xJf $C/llama-cpp-src.tar.xz -C $LC
( cd $LC/src && cmake -B build -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
    -DCMAKE_BUILD_TYPE=Release > $O/lcpp_configure.log 2>&1 && t0=$SECONDS && nice -n 10 cmake --build build --target llama-bench -j 12 > $O/lcpp_build.log 2>&1; \
    echo "build exit $? after $((SECONDS - t0)) s" >> $O/lcpp_build.log ) &
BUILD=$!
mkdir -p /tmp/x && xz -dc $C/base.tar.xz | tar xf - -C /tmp/x && xz -dc $C/new.tar.xz | tar xf - -C /tmp/x && chmod +x /tmp/x/*/*
B=/tmp/x/b; N=/tmp/x/n
declare -A X=([base]=$B/graphrun [new]=$N/graphrun)
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $B/graphrun synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== greedy tokens $(date +%T) ($SECONDS s)"
for m in 0.5b 1.5b 7b; do for k in graph persistent; do for b in base new; do
  timeout 60 ${X[$b]} run /tmp/gr/$m.gguf -p "def fibonacci(n):" -n 96 --ids --decode-kernel $k > $O/run_${m}_${k}_$b.txt 2> $O/run_${m}_${k}_$b.err; done
  cmp -s $O/run_${m}_${k}_base.txt $O/run_${m}_${k}_new.txt && echo "$m $k: tokens equal ($(wc -c < $O/run_${m}_${k}_new.txt) bytes)" || echo "$m $k: TOKENS DIFFER"; done; done | tee $O/tokens.txt; pack
echo "=== trace new vs base $(date +%T) ($SECONDS s)"
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(30)]))")
for m in 1.5b 7b; do for b in base new; do
  timeout 60 ${X[$b]} trace /tmp/gr/$m.gguf -p "$P" --gpu --decode 3 --nodes 'blk.0.*,blk.13.*,blk.27.*,output*,result*' -o /tmp/tr_${m}_$b > /dev/null 2>&1; done
  $N/graphrun diff /tmp/tr_${m}_new /tmp/tr_${m}_base --contract trace_exact > $O/trace_new_vs_base_${m}_trace_exact.txt 2>&1; echo "diff exit $?" >> $O/trace_new_vs_base_${m}_trace_exact.txt
  echo "$m trace_exact: $(grep -E "compared|verdict|exit" $O/trace_new_vs_base_${m}_trace_exact.txt | tr '\n' ' ' | cut -c1-200)"; done; pack
echo "=== backend_ops on new $(date +%T) ($SECONDS s)"
timeout 90 $N/backend_ops --ignored --nocapture --test-threads 1 > $O/backend_ops.log 2>&1
echo "backend_ops: exit $? ($SECONDS s)"; grep "test result" $O/backend_ops.log; pack
echo "=== bench A/B $(date +%T) ($SECONDS s)"
for m in 0.5b 1.5b 7b; do for b in base new new base; do
  timeout 100 ${X[$b]} bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096 -r 2 --json > $O/bench_${m}_graph_${b}_$(date +%s%N).json 2>>$O/bench_${m}_graph_$b.err; done
  python3 $C/benchsum2.py $O $m graph base new | tee -a $O/bench_summary.txt; pack; done
echo "=== fused profiles 1.5b $(date +%T) ($SECONDS s)"
for b in base new; do timeout 60 ${X[$b]} dump --stage fused --profile /tmp/gr/1.5b.gguf > $O/profile_1.5b_$b.txt 2>&1; echo "1.5b $b: exit $?"; done; pack
echo "=== nsys kernel trace of 1.5b decode (new) $(date +%T) ($SECONDS s)"
NS=$(command -v nsys || ls /usr/local/cuda/bin/nsys /opt/nvidia/nsight-systems/*/bin/nsys 2>/dev/null | head -1)
echo "nsys: ${NS:-none}"
if [ -n "$NS" ]; then
  for m in 1.5b 7b; do
  timeout 90 $NS profile -t cuda --cuda-graph-trace=node -o /tmp/ns_$m --force-overwrite true $N/graphrun run /tmp/gr/$m.gguf -p "def f(x):" -n 24 --ids > $O/nsys_$m.log 2>&1
  timeout 60 $NS stats --report cuda_gpu_trace --format csv -o /tmp/ns_${m}_trace /tmp/ns_$m.nsys-rep >> $O/nsys_$m.log 2>&1
  ls /tmp/ns_${m}_trace* >> $O/nsys_$m.log 2>&1; f=$(ls /tmp/ns_${m}_trace*.csv 2>/dev/null | head -1); [ -n "$f" ] && tail -n 1200 "$f" | gzip > $O/nsys_${m}_gputrace_tail.csv.gz
  done; pack
fi
echo "=== waiting for the llama.cpp build $(date +%T) ($SECONDS s)"
while kill -0 $BUILD 2>/dev/null && [ $SECONDS -lt 470 ]; do sleep 2; done
tail -1 $O/lcpp_build.log
LB=$LC/src/build/bin/llama-bench
for m in 7b 1.5b 0.5b; do
  echo "=== llama.cpp and graphrun $m $(date +%T) ($SECONDS s)"
  [ -x $LB ] && timeout 80 $LB -m /tmp/gr/$m.gguf -ngl 99 -fa 1 -p 512 -n 128 -d 0,4096 -r 2 -o json > $O/llamabench_$m.json 2> $O/llamabench_$m.err
  timeout 60 $N/graphrun bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096 -r 2 --json > $O/bench_${m}_vsllama_new_$(date +%s%N).json 2>> $O/bench_${m}_vsllama_new.err
done
python3 - $O <<'PY'
import json,sys,glob,statistics as st
o=sys.argv[1]
for m in ['7b','1.5b','0.5b']:
    try:
        for t in json.load(open(f'{o}/llamabench_{m}.json')): print('llama.cpp', m, f"pp{t['n_prompt']} tg{t['n_gen']} d{t.get('n_depth',0)}", round(t['avg_ts'],1), '+-', round(t['stddev_ts'],1), t.get('samples_ts'))
    except Exception as e: print('llama-bench json unreadable', m, e)
    for f in glob.glob(f'{o}/bench_{m}_vsllama_new_*.json'):
        try: print('graphrun', m, ' '.join(f"{t['test']}@d{t['depth']}={st.mean(t['runs']):.1f} {t['runs']}" for t in json.load(open(f))['tests']))
        except Exception as e: print('graphrun json unreadable', m, e)
PY
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O

#!/usr/bin/env bash
# Session 62: call15 without the qkv-pipe arm (that build sank its second loads; see ../README.md). The Q/K/V pair
# dot's loads, two variants against main d14e417 (dir base/ of carry/c17.tar.xz; its machine code is 9376750's):
# ord/ = branch qkv-order (both rows' unit loads before either quad exchange; graphrun, backend_ops, gpu_persistent,
# gpu_e2e, gpu_batch), l1/ = qkv-l1 (that plus an L1 prefetch of each warp's row pair before the grid wait;
# graphrun, backend_ops).
# In order: bench A/B -p 512 -n 128 -d 0,4096 -r 2 (arms base ord l1 l1 ord base; 7B, 1.5B, 0.5B presets);
# the 7B's fused profile per arm; on an H200 only, llama.cpp (llama-cpp-python 0.3.36's vendor/llama.cpp) starts
# building in the background; greedy tokens after a short and a 4,439-token prompt; backend_ops on ord and l1;
# gpu_persistent and short gpu_e2e on ord (l1 differs from ord in the qkv_* kernels only, which the persistent
# kernel does not use); on an H200, llama-bench -p 512 -n 128 -d 0,4096,8192 -r 2 between graphrun runs of base and
# whichever of ord and l1 had the higher 7B tg128 mean; gpu_batch on ord if time is left. Each step's results are
# packed as they come.
# usage: bash carry/call17.sh. Carry carry/c17.tar.xz, carry/llama-cpp-src.tar.xz, carry/call17.sh, carry/benchsum2.py.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
O=$OUT/r; mkdir -p $O; C=$PWD/carry
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu,compute_cap --format=csv > $O/nvidia-smi.csv; cat $O/nvidia-smi.csv
X=$(mktemp -d); xz -dc $C/c17.tar.xz | tar xf - -C $X; chmod +x $X/*/*
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $X/base/graphrun synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== bench $(date +%T) ($SECONDS s)"
for m in 7b 1.5b 0.5b; do for a in base ord l1 l1 ord base; do
  timeout 45 $X/$a/graphrun bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096 -r 2 --json > $O/bench_${m}_graph_${a}_$(date +%s%N).json 2>> $O/bench_${m}_$a.err
done; python3 $C/benchsum2.py $O $m graph base ord l1 | tee -a $O/bench_summary.txt; pack; done
BEST=$(python3 - $O <<'PY'
import json,glob,sys,statistics as st
o=sys.argv[1]; m={}
for a in ['ord','l1']:
    r=[x for f in glob.glob(f'{o}/bench_7b_graph_{a}_*.json') for t in json.load(open(f))['tests'] if t['test']=='tg128' and t['depth']==0 for x in t['runs']]
    m[a]=st.mean(r) if r else 0
print(max(m,key=m.get))
PY
)
echo "llama.cpp against: $BEST (suites on ord)" | tee $O/best.txt
echo "=== profiles $(date +%T) ($SECONDS s)"
for a in base ord l1; do timeout 40 $X/$a/graphrun dump /tmp/gr/7b.gguf --stage fused --profile > $O/profile_7b_$a.txt 2> $O/profile_7b_$a.err; echo "profile $a exit $?: $(grep 'total kernel time' $O/profile_7b_$a.txt)"; done; pack
H200=0; grep -q H200 $O/nvidia-smi.csv && H200=1
if [ $H200 = 1 ]; then
  echo "=== llama.cpp build starts $(date +%T) ($SECONDS s)"
  LC=$(mktemp -d); tar xJf $C/llama-cpp-src.tar.xz -C $LC
  ARCH=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d .)
  ( t0=$SECONDS; cd $LC/src && cmake -B build -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=$ARCH -DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF \
      -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
      -DCMAKE_BUILD_TYPE=Release > $O/lcpp_configure.log 2>&1 && nice -n 10 cmake --build build --target llama-bench -j 14 > $O/lcpp_build.log 2>&1; \
      echo "build exit $? after $((SECONDS - t0)) s" >> $O/lcpp_build.log ) &
  BUILD=$!
fi
echo "=== tokens $(date +%T) ($SECONDS s)"
P4=$(python3 -c "print(' '.join(['def fibonacci(n): return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)'] * 60))")
for m in 0.5b 1.5b 7b; do for a in base ord l1; do
  timeout 30 $X/$a/graphrun run /tmp/gr/$m.gguf -p "def fibonacci(n):" -n 64 --ids > $O/tok_${m}_short_$a.txt 2> $O/tok_${m}_short_$a.err
  timeout 40 $X/$a/graphrun run /tmp/gr/$m.gguf -p "$P4" -n 64 --ids --ctx 8192 > $O/tok_${m}_long_$a.txt 2> $O/tok_${m}_long_$a.err
done; for t in short long; do for a in ord l1; do
  [ -s $O/tok_${m}_${t}_base.txt ] && cmp -s $O/tok_${m}_${t}_base.txt $O/tok_${m}_${t}_$a.txt && echo "$m $t $a: same tokens as base" || echo "$m $t $a: DIFFER or empty ($(wc -c < $O/tok_${m}_${t}_base.txt) bytes base, $(wc -c < $O/tok_${m}_${t}_$a.txt) $a)"
done; done; done | tee $O/tokens.txt; pack
echo "=== backend_ops $(date +%T) ($SECONDS s)"
for a in ord l1; do
  GRAPHRUN_PARITY_REPORT=$O/backend_ops_$a.jsonl timeout 60 $X/$a/backend_ops --ignored --nocapture > $O/backend_ops_$a.log 2>&1
  echo "backend_ops $a exit $? ($SECONDS s): $(grep -E '^test result' $O/backend_ops_$a.log | tail -1)"; xz -f $O/backend_ops_$a.jsonl
done; pack
echo "=== suites on ord $(date +%T) ($SECONDS s)"
timeout 90 $X/ord/gpu_persistent --ignored --nocapture --test-threads 1 > $O/gpu_persistent_ord.log 2>&1; echo "gpu_persistent ord exit $? ($SECONDS s): $(grep -E '^test result' $O/gpu_persistent_ord.log | tail -1)"; pack
GRAPHRUN_E2E_PRESETS=tiny,tiny-llama,0.5b,1.5b GRAPHRUN_E2E_LENGTHS=1,129 timeout 80 $X/ord/gpu_e2e synthetic --ignored --nocapture > $O/gpu_e2e_ord.log 2>&1; echo "gpu_e2e ord exit $? ($SECONDS s)"; grep -E "^test result|FAIL" $O/gpu_e2e_ord.log | tail -3; pack
if [ $H200 = 1 ]; then
  echo "=== waiting for the llama.cpp build $(date +%T) ($SECONDS s)"
  while kill -0 $BUILD 2>/dev/null && [ $SECONDS -lt 430 ]; do sleep 2; done
  tail -1 $O/lcpp_build.log
  LB=$LC/src/build/bin/llama-bench
  for m in 7b 1.5b 0.5b; do
    [ $SECONDS -lt 500 ] || { echo "no time left for $m"; break; }
    echo "=== llama.cpp and graphrun $m $(date +%T) ($SECONDS s)"
    for a in base $BEST; do timeout 30 $X/$a/graphrun bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096,8192 -r 2 --json > $O/vs_${m}_graph_${a}_$(date +%s%N).json 2>> $O/vs_${m}_graph_$a.err; done
    [ -x $LB ] && timeout 50 $LB -m /tmp/gr/$m.gguf -ngl 99 -fa 1 -p 512 -n 128 -d 0,4096,8192 -r 2 -o json > $O/llamabench_$m.json 2> $O/llamabench_$m.err
    for a in $BEST base; do timeout 30 $X/$a/graphrun bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096,8192 -r 2 --json > $O/vs_${m}_graph_${a}_$(date +%s%N).json 2>> $O/vs_${m}_graph_$a.err; done
    pack
  done
  python3 - $O base $BEST <<'PY' | tee $O/vs_llama.txt
import json,sys,glob,statistics as st
o=sys.argv[1]
for m in ['7b','1.5b','0.5b']:
    try: ll={(f"pp{t['n_prompt']}" if t['n_gen']==0 else f"tg{t['n_gen']}", t.get('n_depth',0)): (t['avg_ts'], t.get('stddev_ts',0)) for t in json.load(open(f'{o}/llamabench_{m}.json'))}
    except Exception as e: print('llama-bench json unreadable', m, e); continue
    for a in sys.argv[2:]:
        r={}
        for f in glob.glob(f'{o}/vs_{m}_graph_{a}_*.json'):
            for t in json.load(open(f))['tests']: r.setdefault((t['test'],t['depth']),[]).extend(t['runs'])
        for k in sorted(ll):
            g=st.mean(r[k]) if k in r else float('nan')
            print(f"{m} {a:4} {k[0]} d{k[1]}: llama.cpp {ll[k][0]:.1f} (sd {ll[k][1]:.1f})  graphrun {g:.1f} [{' '.join('%.0f' % x for x in r.get(k, []))}]  ({g/ll[k][0]:.2f}x)")
PY
  pack
fi
if [ $SECONDS -lt 450 ]; then
  echo "=== gpu_batch on ord $(date +%T) ($SECONDS s)"
  GRAPHRUN_BIN=$X/ord/graphrun timeout $((545 - SECONDS)) $X/ord/gpu_batch --ignored --nocapture --test-threads 1 > $O/gpu_batch_ord.log 2>&1; echo "gpu_batch ord exit $? ($SECONDS s): $(grep -E '^test result' $O/gpu_batch_ord.log | tail -1)"
fi
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O

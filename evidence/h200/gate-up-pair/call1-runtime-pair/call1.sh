#!/usr/bin/env bash
# device call 1 of 2026-12-02 (second session): base = 46ff530's binary (bit-identical to 000d428 = main's code, call 7),
# new = working tree: gate and up as one GEMM launch over interleaved rows (MmqArgs.pair), SiLU(gate)·up in registers.
# Parity (backend_ops, trace_exact new vs base, gpu_persistent/gpu_batch for the one-row path), the A/B, and
# llama.cpp (llama-cpp-python 0.3.36's vendor/llama.cpp) built here in the background, measured after.
set -u
cd carry && for f in *.xz; do xz -d -T0 $f; done; chmod +x graphrun* backend_ops gpu_batch gpu_persistent gpu_e2e; cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O; G=$C/graphrun; B=$C/graphrun-base
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
export PATH=$PATH:/usr/local/cuda/bin
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total,driver_version --format=csv > $O/nvidia-smi.txt
LC=$PWD/target/lcpp
[ -d $LC/src ] || { mkdir -p $LC && tar xf $C/llama-cpp-src.tar -C $LC; }
( cd $LC/src && cmake -B build -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
    -DCMAKE_BUILD_TYPE=Release > $O/lcpp_configure.log 2>&1 && t0=$SECONDS && cmake --build build --target llama-bench -j 12 > $O/lcpp_build.log 2>&1; \
    echo "build exit $? after $((SECONDS - t0)) s" >> $O/lcpp_build.log ) &
BUILD=$!
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $G synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== ops $(date +%T)"
GRAPHRUN_PARITY_REPORT=$O/backend_ops.jsonl timeout 60 $C/backend_ops --ignored --nocapture --test-threads 1 > $O/backend_ops.log 2>&1; echo "backend_ops exit $?" >> $O/backend_ops.log; tail -3 $O/backend_ops.log
python3 - $O/backend_ops.jsonl <<'PY'
import json,sys
w={}; n=0; bad=0
for l in open(sys.argv[1]):
    r=json.loads(l); n+=1; bad+= not r['ok']
    if not r['value'].endswith('ffn_swiglu'): continue
    tag=r['kernel']+' '+r['act']; q=r['nmse']/r['band']
    if q>=w.get(tag,(-1,))[0]: w[tag]=(q,r['nmse'],r['band'],r['ok'])
print('records',n,'out of band',bad)
for t,v in sorted(w.items()): print('worst swiglu',t,'nmse %.3e band %.1e ok %s'%(v[1],v[2],v[3]))
PY
echo "=== trace_exact new vs base $(date +%T)"
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(30)]))")
P2=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(300)]))")
for b in base new; do X=$G; [ $b = base ] && X=$B
  $X trace /tmp/gr/1.5b.gguf -p "$P" --gpu --decode 2 --nodes 'blk.0.*,blk.13.*,blk.27.*,output*,result*' -o /tmp/tr_$b 2>&1 | tail -1
  $X trace /tmp/gr/0.5b.gguf -p "$P2" --ctx 8192 --gpu --decode 2 --nodes 'blk.0.*,blk.23.*,output*,result*' -o /tmp/tr2_$b 2>&1 | tail -1
  $X trace /tmp/gr/7b.gguf -p "$P" --gpu --decode 2 --nodes 'blk.0.*,blk.27.*,output*,result*' -o /tmp/tr3_$b 2>&1 | tail -1; done
for x in "tr 1.5b_651" "tr2 0.5b_long" "tr3 7b_651"; do set -- $x
  $G diff /tmp/$1_new /tmp/$1_base --contract trace_exact > $O/trace_new_vs_base_$2.txt 2>&1; echo "diff exit $?" >> $O/trace_new_vs_base_$2.txt; grep -E "compared|verdict|exit" $O/trace_new_vs_base_$2.txt | cut -c1-200; done
echo "=== persistent + batch (one-row prefill: the SwiGLU matvec) $(date +%T)"
timeout 100 $C/gpu_persistent --ignored --nocapture --test-threads 1 > $O/gpu_persistent.log 2>&1; echo "gpu_persistent exit $?" >> $O/gpu_persistent.log; grep -E "test result|exit" $O/gpu_persistent.log
timeout 60 $C/gpu_batch --ignored --nocapture --test-threads 1 > $O/gpu_batch.log 2>&1; echo "gpu_batch exit $?" >> $O/gpu_batch.log; grep -E "test result|exit" $O/gpu_batch.log
echo "=== bench A/B $(date +%T)"
for m in 7b 1.5b 0.5b; do
  for b in base new new base; do X=$G; [ $b = base ] && X=$B
    timeout 60 $X bench /tmp/gr/$m.gguf -p 512,2048,8192 -n 32 -r 2 --json > $O/bench_${m}_${b}_$(date +%s).json 2>$O/bench_${m}_${b}.err; done
done
python3 - $O <<'PY'
import json,glob,sys
for f in sorted(glob.glob(sys.argv[1]+'/bench_*.json')):
    try: j=json.load(open(f))
    except Exception as e: print(f, 'unreadable', e); continue
    print(f.split('/')[-1], ' '.join(f"{t['test']}={t['tok_s']:.0f}" for t in j['tests']))
PY
echo "=== ncu kernel times pp512 (new, real clocks) $(date +%T)"
[ $SECONDS -lt 300 ] && timeout 90 ncu --clock-control none --metrics gpu__time_duration.sum --csv --print-units base $G bench /tmp/gr/7b.gguf -p 512 -n 1 -r 1 > $O/ncu_pp512_7b_new.csv 2> $O/ncu_pp512_7b_new.err; tail -1 $O/ncu_pp512_7b_new.err
echo "=== waiting for the llama.cpp build $(date +%T)"
while kill -0 $BUILD 2>/dev/null && [ $SECONDS -lt 420 ]; do sleep 3; done
tail -1 $O/lcpp_build.log
LB=$LC/src/build/bin/llama-bench
for m in 7b 1.5b; do
  echo "=== llama.cpp and graphrun $m $(date +%T)"
  [ -x $LB ] && timeout 70 $LB -m /tmp/gr/$m.gguf -ngl 99 -fa 1 -p 512,2048,8192 -n 128 -r 2 -o json > $O/llamabench_$m.json 2> $O/llamabench_$m.err
  timeout 40 $G bench /tmp/gr/$m.gguf -p 512,2048,8192 -n 128 -r 2 --json > $O/graphrun_n128_$m.json 2> $O/graphrun_n128_$m.err
done
python3 - $O <<'PY'
import json,sys
o=sys.argv[1]
for m in ['7b','1.5b']:
    try:
        for t in json.load(open(f'{o}/llamabench_{m}.json')): print('llama.cpp', m, f"pp{t['n_prompt']} tg{t['n_gen']}", round(t['avg_ts'],1), '+-', round(t['stddev_ts'],1), t.get('samples_ts'))
    except Exception as e: print('llama-bench json unreadable', m, e)
    try: print('graphrun', m, ' '.join(f"{t['test']}={t['tok_s']:.0f} {t['runs']}" for t in json.load(open(f'{o}/graphrun_n128_{m}.json'))['tests']))
    except Exception as e: print('graphrun json unreadable', m, e)
PY
cd $OUT && tar czf r.tgz r && rm -rf r

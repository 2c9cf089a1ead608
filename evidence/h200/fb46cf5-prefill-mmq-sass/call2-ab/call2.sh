#!/usr/bin/env bash
# device call 2 (2026-12-01): base = cc04cc7 (main), new = working tree (mmq k32 + min term on MMA + launch bounds; parallel family loading)
set -u
cd carry && xz -d -T0 *.xz && cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O; G=$C/graphrun; B=$C/graphrun-base
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total,driver_version --format=csv > $O/nvidia-smi.txt
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $G synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
# 1. cold start, both binaries at once on an empty driver cache: seconds until /health answers
t0=$(date +%s.%N)
$B serve /tmp/gr/0.5b.gguf --parallel 8 --ctx 1024 --port 18093 2> $O/coldstart_base.log & SB=$!
$G serve /tmp/gr/0.5b.gguf --parallel 8 --ctx 1024 --port 18094 2> $O/coldstart_new.log & SN=$!
python3 - $t0 > $O/coldstart.txt <<'PY'
import sys,time,urllib.request as u
t0=float(sys.argv[1]); left={'base':18093,'new':18094}
while left and time.time()-t0<400:
    for k,p in list(left.items()):
        try: u.urlopen(f'http://127.0.0.1:{p}/health',timeout=1); print(f'{k}: /health answered {time.time()-t0:.1f} s after start (empty CUDA_CACHE_PATH, both started together)',flush=True); del left[k]
        except Exception: pass
    time.sleep(0.5)
for k in left: print(f'{k}: no answer within 400 s')
PY
cat $O/coldstart.txt; kill $SB $SN; wait
# 2. bit identity of prefill + decode, 1.5B, 651-token prompt (not a multiple of the 128 tile)
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(30)]))")
for b in base new; do X=$G; [ $b = base ] && X=$B
  $X trace /tmp/gr/1.5b.gguf -p "$P" --gpu --decode 2 --nodes 'blk.0.*,blk.13.*,blk.27.*,output*,result*' -o /tmp/tr_$b 2>&1 | tail -1; done
$G diff /tmp/tr_new /tmp/tr_base --contract trace_exact > $O/trace_new_vs_base_1.5b.txt 2>&1; echo "diff exit $?" >> $O/trace_new_vs_base_1.5b.txt; tail -3 $O/trace_new_vs_base_1.5b.txt
# 3. prefill/decode A/B, same call, alternating
for m in 7b 1.5b; do for b in base new new base; do X=$G; [ $b = base ] && X=$B
  $X bench /tmp/gr/$m.gguf -p 512,2048 -n 32 -r 3 --json > $O/bench_${m}_${b}_$(date +%s).json 2>/dev/null; done; done
ls $O | head -40
# 4. parity suites on the new kernels
timeout 120 $C/backend_ops --ignored --nocapture --test-threads 1 > $O/backend_ops.log 2>&1; tail -3 $O/backend_ops.log
GRAPHRUN_E2E_PRESETS=tiny,tiny-llama,0.5b,1.5b,7b timeout 120 $C/gpu_e2e synthetic --ignored --nocapture > $O/gpu_e2e.log 2>&1; tail -3 $O/gpu_e2e.log
cd $OUT && tar czf r.tgz r && rm -rf r

#!/usr/bin/env bash
# device call 3 (2026-12-01): base = cc04cc7 (main, PTX only), new = working tree (SASS embedded for sm_90; mmq k32 + min term on MMA)
set -u
cd carry && xz -d -T0 *.xz && cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O; G=$C/graphrun; B=$C/graphrun-base
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total,driver_version --format=csv > $O/nvidia-smi.txt
mkdir -p /tmp/gr; for p in 0.5b 7b; do $G synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
$G kernels 2>&1 >/dev/null | head -1 > $O/kernels_note.txt
# 1. cold start, both binaries at once on an empty driver cache: seconds until /health answers.
# When the new one answers it is stopped and the GPU parity suite (1.5B, 7B) starts, with 12
# of the 16 cores, while the base server is still being translated (on one core).
t0=$(date +%s.%N)
$B serve /tmp/gr/0.5b.gguf --parallel 8 --ctx 1024 --port 18093 2> $O/coldstart_base.log & SB=$!
$G serve /tmp/gr/0.5b.gguf --parallel 8 --ctx 1024 --port 18094 2> $O/coldstart_new.log & SN=$!
poll() { python3 - $t0 $1 $2 <<'PY'
import sys,time,urllib.request as u
t0=float(sys.argv[1]); k=sys.argv[2]; p=int(sys.argv[3])
while time.time()-t0<400:
    try: u.urlopen(f'http://127.0.0.1:{p}/health',timeout=1); print(f'{k}: /health answered {time.time()-t0:.1f} s after start (empty CUDA_CACHE_PATH, both started together)',flush=True); sys.exit(0)
    except Exception: time.sleep(0.25)
print(f'{k}: no answer within 400 s')
PY
}
poll new 18094 | tee -a $O/coldstart.txt; kill $SN; wait $SN
(GRAPHRUN_E2E_PRESETS=1.5b,7b RAYON_NUM_THREADS=12 timeout 420 $C/gpu_e2e synthetic --ignored --nocapture > $O/gpu_e2e.log 2>&1; echo "gpu_e2e exit $?" >> $O/gpu_e2e.log) & E=$!
poll base 18093 | tee -a $O/coldstart.txt; kill $SB; wait $SB
wait $E; tail -4 $O/gpu_e2e.log
# 2. the new mmq_q4_k under Nsight Compute (7B pp512, one launch)
ncu --kernel-name regex:mmq_q4_k --launch-skip 30 --launch-count 1 --section SpeedOfLight --section WarpStateStats \
  --section SchedulerStats --section Occupancy --section ComputeWorkloadAnalysis --section LaunchStats \
  $G bench /tmp/gr/7b.gguf -p 512 -n 1 -r 1 > $O/ncu_mmq_q4_k_7b_pp512.txt 2>&1; grep -E "Duration|Issued Ipc|No Eligible|Achieved Occ" $O/ncu_mmq_q4_k_7b_pp512.txt | head
cd $OUT && tar czf r.tgz r && rm -rf r

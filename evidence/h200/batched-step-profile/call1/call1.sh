#!/usr/bin/env bash
# Call 1 (H200): main at a2f975a (the batched matvec's shared helpers, not GPU-run before):
# gpu_batch; then every kernel of one batched decode step (not only the matvecs), Nsight's
# gpu__time_duration per launch, for the 7B at 8 rows and at 1 row and the 1.5B at 8 rows:
# where a step's time goes besides the batched matvecs. (The call ran an inline summariser
# that took the largest matvec grid for a step's end, wrong for batched steps; summarise.py,
# a step from one embedding launch to the next, replaced it and made step_*.txt from the CSVs.)
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $OUT/nvidia-smi.csv
C=carry
GRAPHRUN_BIN=$C/graphrun timeout 200 $C/gpu_batch --ignored --nocapture --test-threads 1 --skip batched_step_time_by_batch_size > $OUT/gpu_batch.log 2>&1
echo "gpu_batch: exit $? ($SECONDS s)"; grep "test result\|FAILED\|panicked\|differ" $OUT/gpu_batch.log | head -12
for run in 7b:8 7b:1 1.5b:8; do p=${run%:*}; b=${run#*:}
  GRAPHRUN_BIN=$C/graphrun GRAPHRUN_BATCH_PRESETS=$p GRAPHRUN_BATCH_SIZES=$b timeout 200 ncu --target-processes all --launch-skip 2600 --launch-count 1400 \
    --metrics gpu__time_duration.sum --csv --print-units base $C/gpu_batch --ignored --nocapture --test-threads 1 batched_step_time_by_batch_size > $OUT/ncu_${p}_b$b.csv 2> $OUT/ncu_${p}_b$b.err
  echo "ncu $p b$b: exit $? ($SECONDS s)"
  python3 evidence/h200/batched-step-profile/call1/summarise.py $OUT/ncu_${p}_b$b.csv > $OUT/step_${p}_b$b.txt
  cat $OUT/step_${p}_b$b.txt
done
tar czf /tmp/logs.tgz -C $OUT . && find $OUT -mindepth 1 -delete && mv /tmp/logs.tgz $OUT/

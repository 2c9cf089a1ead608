#!/usr/bin/env bash
# batched-mma-ahead call 21 (H200, the machine held warm since call 5): the real
# Qwen2.5-Coder-0.5B Q4_K_M shipped in 17 slices (calls 5-21: sNN.partial/part appended to
# $GRAPHRUN_REAL_05B.partial, sha256 checked here), then the GPU suites that need it, side
# by side, on the committed build 22932fe (`GPU_TESTS="gpu_e2e gpu_trace_diff gpu_live_diff
# serve"`, unpacked in call 5 to /tmp/rb/real): gpu_e2e real (greedy tokens against the
# interpreter, long prompts), gpu_trace_diff (GPU traces within band, injected faults found
# at their node), gpu_live_diff's real-0.5B test (q8 GPU against the f32 interpreter over
# 500 steps), serve on the GPU (the openai client, 8 clients x 25 requests, faults).
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
export GRAPHRUN_MODELS=/tmp/graphrun-models
export GRAPHRUN_REAL_05B=$GRAPHRUN_MODELS/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
cat s16.partial/part >> $GRAPHRUN_REAL_05B.partial
echo "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32  $GRAPHRUN_REAL_05B.partial" | sha256sum -c - || exit 1
mv $GRAPHRUN_REAL_05B.partial $GRAPHRUN_REAL_05B
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $OUT/nvidia-smi.csv
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl > $OUT/pip.log 2>&1
echo "pip: exit $?"
S=/tmp/rb/real; export GRAPHRUN_BIN=$S/graphrun GRAPHRUN_REFERENCE=$PWD/tests/reference
$S/graphrun kernels 2>&1 | tail -2 > $OUT/kernels.txt
suite() {  # tag, command...
  local tag=$1; shift
  timeout 480 "$@" > $OUT/$tag.log 2>&1
  echo "$tag: exit $? ($SECONDS s) $(grep 'test result' $OUT/$tag.log | tr '\n' ' ')"
}
GRAPHRUN_E2E_REPORT=$OUT/gpu_e2e_real.jsonl suite gpu_e2e_real $S/gpu_e2e real --ignored --nocapture &
suite gpu_trace_diff $S/gpu_trace_diff --ignored --nocapture &
suite gpu_live_diff_real $S/gpu_live_diff --ignored --nocapture --test-threads 1 q8_gpu_vs_f32_interpreter_reports_drift_over_500_steps_on_the_real_05b &
PYTHONPATH=/tmp/site GRAPHRUN_SERVE_GPU=1 suite serve_gpu $S/serve --test-threads 1 --nocapture &
wait
echo "end ($SECONDS s)"
[ -f $OUT/gpu_e2e_real.jsonl ] && xz -9 $OUT/gpu_e2e_real.jsonl
tar czf /tmp/logs.tgz -C $OUT . && find $OUT -mindepth 1 -delete && mv /tmp/logs.tgz $OUT/

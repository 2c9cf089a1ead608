#!/usr/bin/env bash
# usage: build-carry.sh SRC_DIR OUTDIR  (builds graphrun + gpu_batch with embedded sm_90 SASS)
set -euo pipefail
cd "$1"
NVRTC_LIB=$(python3 -c 'import nvidia,os; print(next(os.path.join(p,"cu13","lib") for p in nvidia.__path__ if os.path.isdir(os.path.join(p,"cu13","lib"))))')
export LD_LIBRARY_PATH=$NVRTC_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export CARGO_TARGET_DIR=${CTD:-/work/main/target/carry-build}
export GRAPHRUN_EMBED_ARCHS=sm_90 GRAPHRUN_EMBED_PTX=sass
cargo build --release 2>&1 | tail -3
mkdir -p "$2"
cp $CARGO_TARGET_DIR/release/graphrun "$2/"
for t in ${GPU_TESTS:-gpu_batch}; do
  bin=$(cargo test --release --no-run --message-format=json --test $t 2>/dev/null | python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m.get("executable") and m["target"]["kind"]==["test"]: print(m["executable"])' | tail -1)
  cp "$bin" "$2/$t"
done
"$2/graphrun" kernels 2>&1 >/dev/null | head -2
echo BUILD-OK

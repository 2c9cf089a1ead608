#!/usr/bin/env bash
# gap-probe call 1: how much decode time is the host's turn between steps (read the token, upload the next token and
# position, relaunch the captured graph). GRAPHRUN_GAP_PROBE=1 (main b6c2164's code + a diagnostic, gap-probe.patch;
# carry/gp.tar.xz, dir gp/) reads the token only every 64th position, so the host queues the next step while the GPU
# still runs this one; its tokens are not a model's output, only its time is used. Arms: read (=0, main's loop) and
# probe (=1), bench interleaved on the 7B, 1.5B and 0.5B presets.
# Carry exactly carry/gp.tar.xz, carry/benchsum2.py.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache
O=$OUT/r; mkdir -p $O; C=$PWD/carry
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu,compute_cap --format=csv > $O/nvidia-smi.csv; cat $O/nvidia-smi.csv
mkdir -p /tmp/x && xz -dc $C/gp.tar.xz | tar xf - -C /tmp/x; chmod +x /tmp/x/*/*
G=/tmp/x/gp/graphrun
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $G synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
declare -A E=([read]=0 [probe]=1)
for m in 0.5b 1.5b 7b; do for b in read probe probe read read probe; do
  GRAPHRUN_GAP_PROBE=${E[$b]} timeout 60 $G bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096 -r 2 --json > $O/bench_${m}_graph_${b}_$(date +%s%N).json 2>>$O/bench_${m}_graph_$b.err; done
  python3 $C/benchsum2.py $O $m graph read probe | grep tg | tee -a $O/bench_summary.txt; pack; done
python3 - $O <<'PY' | tee -a $O/gap.txt
import json,glob,sys,statistics as st
o=sys.argv[1]
for m in ['7b','1.5b','0.5b']:
    r={}
    for b in ['read','probe']:
        for f in glob.glob(f'{o}/bench_{m}_graph_{b}_*.json'):
            for t in json.load(open(f))['tests']:
                if t['test'].startswith('tg'): r.setdefault((t['depth'],b),[]).extend(t['runs'])
    for d in sorted({k[0] for k in r}):
        a,p=st.mean(r[(d,'read')]),st.mean(r[(d,'probe')])
        print(f"{m} d{d}: read {a:.1f} tok/s ({1e6/a:.1f} us/token), probe {p:.1f} ({1e6/p:.1f} us/token): host turn {1e6/a-1e6/p:.1f} us a token, {100*(1-a/p):.1f}% of the step")
PY
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O

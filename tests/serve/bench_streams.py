"""Aggregate decode speed of `graphrun serve` with 1, 2, 4, 8 concurrent streams.

Start the server with at least as many slots as the largest stream count, e.g.
    graphrun serve --interp --parallel 8 --ctx 512 --port 8080
then
    python3 tests/serve/bench_streams.py http://127.0.0.1:8080/v1 [--streams 1,2,4,8] [--tokens 48] [--reps 3] [--pid PID] [--temperature T]

Each round starts N streamed completions at once (greedy, or sampled at --temperature T with
the server's default top-k and top-p) (prompt "1, 2, 3,": the model keeps
counting, so no stream stops early) and timestamps every chunk. The decode rate is measured
in the window where all N streams are decoding together (from the last stream's first
token to the first stream's last token): tokens received in it / its length. Prefill of the
N prompts happens before that window and is reported separately as time to first token.
Prints one JSON line per round and a summary line per N (median and best round; the median
time to first token of the round's last stream: the wait under load of N requests at once).
"""

import argparse
import json
import os
import statistics
import threading
import time
import urllib.request

ap = argparse.ArgumentParser()
ap.add_argument("base")
ap.add_argument("--streams", default="1,2,4,8")
ap.add_argument("--tokens", type=int, default=48)
ap.add_argument("--reps", type=int, default=3)
ap.add_argument("--pid", type=int, help="the server's process id: also report tokens per CPU-second")
ap.add_argument("--temperature", type=float, default=0.0, help="0: greedy; > 0: sampled requests")
args = ap.parse_args()


def cpu_seconds():
    """User + system CPU time of the server so far (Linux /proc), or None without --pid."""
    if not args.pid:
        return None
    with open(f"/proc/{args.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stream(times, t0):
    body = json.dumps(
        {"prompt": "1, 2, 3,", "max_tokens": args.tokens, "temperature": args.temperature, "stream": True}
    ).encode()
    req = urllib.request.Request(args.base + "/completions", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        for line in r:
            line = line.strip()
            if line.startswith(b"data: {"):
                chunk = json.loads(line[6:])
                if chunk["choices"] and chunk["choices"][0]["text"]:
                    times.append(time.perf_counter() - t0)


def one_round(n):
    times = [[] for _ in range(n)]
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    threads = [threading.Thread(target=stream, args=(times[i], t0)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cpu = cpu_seconds() - cpu0 if cpu0 is not None else None
    start = max(ts[0] for ts in times)
    end = min(ts[-1] for ts in times)
    in_window = sum(1 for ts in times for x in ts if start < x <= end)
    return {
        "streams": n,
        "tokens_per_stream": [len(ts) for ts in times],
        "decode_window_s": round(end - start, 3),
        "aggregate_decode_tok_s": round(in_window / (end - start), 2) if end > start else None,
        "per_stream_decode_tok_s": round(in_window / (end - start) / n, 2) if end > start else None,
        "ttft_s": [round(ts[0], 3) for ts in times],
        "wall_s": round(max(ts[-1] for ts in times), 3),
        # Whole round, prefill included: less sensitive than wall time to other processes.
        "tokens_per_cpu_s": round(sum(len(ts) for ts in times) / cpu, 2) if cpu else None,
    }


# Rounds interleave the stream counts (1, 2, 4, 8, 1, 2, ...), so that load from other
# processes on a shared machine spreads over all of them; the best round per count is the
# least disturbed one.
counts = [int(x) for x in args.streams.split(",")]
rounds = {n: [] for n in counts}
per_cpu = {n: [] for n in counts}
last_ttft = {n: [] for n in counts}
for _ in range(args.reps):
    for n in counts:
        r = one_round(n)
        print(json.dumps(r), flush=True)
        rounds[n].append(r["aggregate_decode_tok_s"])
        per_cpu[n].append(r["tokens_per_cpu_s"])
        last_ttft[n].append(max(r["ttft_s"]))
summary = [
    {
        "streams": n,
        "median_aggregate_decode_tok_s": round(statistics.median(rounds[n]), 2),
        "best_aggregate_decode_tok_s": max(rounds[n]),
        "best_vs_1_stream": round(max(rounds[n]) / max(rounds[counts[0]]), 2),
        "median_tokens_per_cpu_s": statistics.median(per_cpu[n]) if args.pid else None,
        "median_last_ttft_s": round(statistics.median(last_ttft[n]), 3),
    }
    for n in counts
]
for row in summary:
    print(json.dumps(row))

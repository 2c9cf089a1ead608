"""Load on `graphrun serve` with the official `openai` client (run by tests/serve.rs).

CLIENTS threads each send REQUESTS greedy text completions (streamed and not, alternating)
at once. Every request must either complete with exactly the text its prompt gives when
it runs alone (no two batched sequences mix tokens) or be refused with a clear 429; at
the end /health must show every slot free and nothing queued (no slot leaks).

usage: load.py BASE_URL [CLIENTS] [REQUESTS]
"""

import json
import sys
import threading
import time
import urllib.request

import openai

BASE = sys.argv[1]
CLIENTS = int(sys.argv[2]) if len(sys.argv) > 2 else 8
REQUESTS = int(sys.argv[3]) if len(sys.argv) > 3 else 25
MAX_TOKENS = 4
PROMPTS = [
    "def add(a, b):",
    "The capital of France is",
    "1, 2, 3, 4,",
    "import numpy as",
    "SELECT * FROM",
    "Hello, my name is",
    "for i in range(",
    "The quick brown fox",
]
# Bounded in time: the whole run stops (and fails) past this.
DEADLINE = time.time() + 240

client = openai.OpenAI(base_url=BASE, api_key="unused", max_retries=0, timeout=120)
MODEL_ID = client.models.list().data[0].id


def health():
    with urllib.request.urlopen(BASE.removesuffix("/v1") + "/health", timeout=10) as r:
        return json.load(r)


def complete(c, prompt, stream):
    kw = dict(model=MODEL_ID, prompt=prompt, max_tokens=MAX_TOKENS, temperature=0)
    if not stream:
        r = c.completions.create(**kw)
        return r.choices[0].text, r.usage.completion_tokens
    text, usage = "", None
    for ch in c.completions.create(stream=True, stream_options={"include_usage": True}, **kw):
        if ch.choices:
            text += ch.choices[0].text
        if ch.usage:
            usage = ch.usage.completion_tokens
    return text, usage


start = health()
# Each prompt alone first: the reference every concurrent answer must equal.
solo = {p: complete(client, p, False) for p in PROMPTS}

results = []  # (client, request, outcome, detail)
lock = threading.Lock()


def worker(k):
    c = openai.OpenAI(base_url=BASE, api_key="unused", max_retries=0, timeout=120)
    for i in range(REQUESTS):
        if time.time() > DEADLINE:
            with lock:
                results.append((k, i, "timeout", "deadline passed"))
            return
        prompt = PROMPTS[(k + i) % len(PROMPTS)]
        try:
            got = complete(c, prompt, stream=(i % 2 == 1))
            outcome = "ok" if got == solo[prompt] else "mixed"
            detail = f"{prompt!r}: {got!r} vs solo {solo[prompt]!r}"
        except openai.RateLimitError as e:
            outcome, detail = "429", str(e.body)
            # A refused client waits a little before its next request, as real ones do.
            time.sleep(0.2)
        except Exception as e:  # anything else is a failure of the server
            outcome, detail = "error", repr(e)
        with lock:
            results.append((k, i, outcome, detail))


t0 = time.time()
threads = [threading.Thread(target=worker, args=(k,)) for k in range(CLIENTS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
elapsed = time.time() - t0

counts = {}
for _, _, outcome, _ in results:
    counts[outcome] = counts.get(outcome, 0) + 1
print(f"{len(results)} requests in {elapsed:.1f} s: {counts}", flush=True)
bad = [r for r in results if r[2] not in ("ok", "429")]
for r in bad[:10]:
    print("FAIL", r, flush=True)
refusals = [r for r in results if r[2] == "429"]
clear = all("busy" in r[3] and "queue" in r[3] for r in refusals)

# Slots come back: the engine releases them right after the last answer.
end = health()
for _ in range(50):
    if end["slots_free"] == start["slots_total"] and end["queued"] == 0:
        break
    time.sleep(0.1)
    end = health()

checks = [
    ("every request answered", len(results) == CLIENTS * REQUESTS),
    ("each answer equals its prompt's solo run, or is a clear 429", not bad and clear),
    ("most requests completed", counts.get("ok", 0) >= len(results) // 4),
    ("slots and queue back at the start value", (end["slots_free"], end["queued"]) == (start["slots_free"], 0)),
]
for name, ok in checks:
    print(("ok - " if ok else "FAIL - ") + name, flush=True)
print(f"health at start {start}, at end {end}")
failed = sum(1 for _, ok in checks if not ok)
print(f"{len(checks) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)

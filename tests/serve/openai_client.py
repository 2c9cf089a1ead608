"""`graphrun serve` through the official `openai` Python client (run by tests/serve.rs).

Checks chat and text completions, streamed and not, against `graphrun run` on the same
model: greedy text identical to `graphrun run --chat`, usage equal to run's token counts,
stop strings honoured, finish reasons, the model list, and 400 errors naming the field.

usage: openai_client.py BASE_URL GRAPHRUN_BIN MODEL_PATH
"""

import subprocess
import sys

import openai

BASE, BIN, MODEL = sys.argv[1], sys.argv[2], sys.argv[3]
# The executor the server runs on (interp in CI, gpu on the device), for `graphrun run`.
EXEC = ["--interp"] if (sys.argv[4] if len(sys.argv) > 4 else "interp") == "interp" else []
client = openai.OpenAI(base_url=BASE, api_key="unused", max_retries=0, timeout=300)
MODEL_ID = client.models.list().data[0].id

failures = []
passed = 0


def check(name, cond, detail=""):
    global passed
    if cond:
        passed += 1
        print(f"ok - {name}", flush=True)
    else:
        failures.append(name)
        print(f"FAIL - {name}: {detail}", flush=True)


def run_chat(prompt, n, system=None):
    """`graphrun run --chat` greedy: (text, generated ids, prompt token count)."""
    args = [BIN, "run", MODEL, *EXEC, "--chat", "-p", prompt, "-n", str(n)]
    if system is not None:
        args += ["--system", system]
    text = subprocess.run(args, capture_output=True, text=True, check=True)
    ids = subprocess.run(args + ["--ids"], capture_output=True, text=True, check=True)
    # stderr: "graphrun [interp]: prompt 31 tokens in ..."
    prompt_tokens = int(text.stderr.split("prompt ")[1].split(" tokens")[0])
    # run prints the text and one newline at the end.
    assert text.stdout.endswith("\n")
    return text.stdout[:-1], [int(x) for x in ids.stdout.split()], prompt_tokens


def chat(messages, stream=False, **kw):
    """(text, finish_reason, usage, chunks) of one chat request."""
    if not stream:
        r = client.chat.completions.create(model=MODEL_ID, messages=messages, **kw)
        return r.choices[0].message.content, r.choices[0].finish_reason, r.usage, None
    chunks = list(
        client.chat.completions.create(
            model=MODEL_ID,
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
            **kw,
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    usage = [c.usage for c in chunks if c.usage]
    return text, finish[-1] if finish else None, usage[-1] if usage else None, chunks


# 1. Greedy chat equals `graphrun run --chat`, streamed or not, with usage from run's counts.
N = 24
PROMPT = "Write a Python function that checks whether a number is prime."
want, want_ids, want_prompt = run_chat(PROMPT, N)
prime_text = want
msgs = [{"role": "user", "content": PROMPT}]
text, finish, usage, _ = chat(msgs, max_tokens=N, temperature=0)
check("non-streamed chat text equals run --chat", text == want, f"{text!r} != {want!r}")
check("finish_reason length at max_tokens", finish == "length", finish)
check(
    "usage equals run's prompt and generated token counts",
    (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens)
    == (want_prompt, len(want_ids), want_prompt + len(want_ids)),
    f"{usage} vs prompt {want_prompt}, generated {len(want_ids)}",
)
s_text, s_finish, s_usage, chunks = chat(msgs, stream=True, max_tokens=N, temperature=0)
check("streamed chat text equals run --chat", s_text == want, f"{s_text!r} != {want!r}")
check(
    "stream opens with the assistant role and carries text in several chunks",
    chunks[0].choices[0].delta.role == "assistant"
    and sum(1 for c in chunks if c.choices and c.choices[0].delta.content) > 5,
    chunks[:2],
)
check("streamed finish_reason and usage", s_finish == "length" and s_usage == usage, f"{s_finish} {s_usage}")

# 2. A system message, and a generation that ends at the end-of-generation token.
SYS, SHORT = "You are terse.", "Say hi"
want, want_ids, want_prompt = run_chat(SHORT, 64, system=SYS)
msgs = [{"role": "system", "content": SYS}, {"role": "user", "content": SHORT}]
text, finish, usage, _ = chat(msgs, max_tokens=64, temperature=0)
check("chat with a system message equals run --chat --system", text == want, f"{text!r} != {want!r}")
check(
    "ends with finish_reason stop at end-of-generation, counted in usage",
    len(want_ids) < 64 and finish == "stop" and usage.completion_tokens == len(want_ids),
    f"{finish} {usage} run ids {want_ids}",
)

# 3. Stop strings: the text ends just before the first occurrence, finish_reason stop.
stop = "def "
assert stop in prime_text, prime_text
for stream in (False, True):
    text, finish, usage, _ = chat(
        [{"role": "user", "content": PROMPT}], stream=stream, max_tokens=N, temperature=0, stop=[stop, "zzz"]
    )
    check(
        f"stop string honoured ({'streamed' if stream else 'not streamed'})",
        text == prime_text.split(stop)[0] and finish == "stop" and usage.completion_tokens < N,
        f"{text!r} {finish} {usage}",
    )

# 4. Text completions, streamed and not, agree; sampling with a seed is reproducible.
r = client.completions.create(model=MODEL_ID, prompt="def fibonacci(n):", max_tokens=12, temperature=0)
streamed = "".join(
    c.choices[0].text
    for c in client.completions.create(
        model=MODEL_ID, prompt="def fibonacci(n):", max_tokens=12, temperature=0, stream=True
    )
    if c.choices
)
check(
    "completion streamed equals not streamed",
    r.choices[0].text == streamed and r.usage.completion_tokens == 12 and r.choices[0].finish_reason == "length",
    f"{r.choices[0].text!r} vs {streamed!r}, {r.usage}",
)
ids = subprocess.run(
    [BIN, "run", MODEL, *EXEC, "-p", "def fibonacci(n):", "-n", "12"], capture_output=True, text=True, check=True
)
check("greedy completion equals graphrun run", r.choices[0].text == ids.stdout[:-1], f"{r.choices[0].text!r} vs {ids.stdout!r}")
a, b = (
    client.completions.create(
        model=MODEL_ID, prompt="Once upon a time", max_tokens=12, temperature=0.9, top_p=0.9, seed=7
    ).choices[0].text
    for _ in range(2)
)
check("same seed, same sampled text", a == b, f"{a!r} vs {b!r}")

# 5. The model list, and errors the client surfaces with the field named.
check("models.list names the served model", MODEL_ID and len(client.models.list().data) == 1, MODEL_ID)
for kw, param in [
    ({"temperature": 5}, "temperature"),
    ({"max_tokens": -1}, "max_tokens"),
    ({"model": "gpt-4"}, "model"),
]:
    try:
        client.chat.completions.create(
            **{"model": MODEL_ID, "messages": [{"role": "user", "content": "x"}], **kw}
        )
        check(f"400 for bad {param}", False, "no error")
    except openai.BadRequestError as e:
        check(f"400 for bad {param}", e.status_code == 400 and e.body["param"] == param, e.body)

print(f"{passed} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)

//! `graphrun serve` on the real 0.5B (interpreter), over real sockets on 127.0.0.1: the
//! official `openai` Python client (chat, completions, streaming, stop strings, usage,
//! greedy text identical to `graphrun run --chat`), load from 8 concurrent clients, bad
//! input, faults (disconnects, half requests, 10 MB bodies), a full queue, and shutdown.
//! Also: `run --chat` builds its prompt from the model's own template, with the same token
//! ids as the ChatML prompt written out by hand.

mod common;

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// A `graphrun serve` child process on a free port; its stderr is collected.
struct Server {
    child: Child,
    port: u16,
    log: Arc<Mutex<String>>,
}

impl Server {
    fn start(model: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(common::bin())
            .args(["serve", model.to_str().unwrap(), "--port", "0"])
            .args(exec_flags())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting graphrun serve");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("listening on http://127.0.0.1:").nth(1) {
                    let port: u16 = rest.split(' ').next().unwrap().parse().unwrap();
                    tx.send(port).ok();
                }
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("graphrun serve did not start: {}", log.lock().unwrap()));
        Server { child, port, log }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits (up to 10 s) until the log holds `n` lines containing `pat` (stderr is read
    /// by another thread, a little after the server writes it).
    fn wait_log(&self, pat: &str, n: usize) {
        let t0 = Instant::now();
        while self.log().matches(pat).count() < n {
            assert!(
                t0.elapsed().as_secs() < 10,
                "expected {n} log lines with {pat:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(self.log().matches(pat).count(), n, "{}", self.log());
    }

    /// GET /health.
    fn health(&self) -> Value {
        let (status, body) = http(self.port, "GET", "/health", None);
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Waits (up to `secs`) until every slot is free and nothing waits.
    fn wait_idle(&self, secs: u64) -> Value {
        let t0 = Instant::now();
        loop {
            let h = self.health();
            if h["slots_free"] == h["slots_total"] && h["queued"] == 0 {
                return h;
            }
            assert!(t0.elapsed().as_secs() < secs, "slots not given back: {h}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then the exit status (within `secs`).
    fn terminate(&mut self, secs: u64) -> ExitStatus {
        // SAFETY: sends a signal to our own child process.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let t0 = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(
                t0.elapsed().as_secs() < secs,
                "graphrun serve still running {secs} s after SIGTERM: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.child.kill().ok();
            self.child.wait().ok();
        }
    }
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    s
}

/// One HTTP/1.1 request (`Connection: close`); the status and the body.
fn http(port: u16, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let mut s = connect(port);
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    read_response(&mut s)
}

fn read_response(s: &mut TcpStream) -> (u16, String) {
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {raw:?}"));
    let body = raw
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// Runs a script from tests/serve with `python3`, or None (with a SKIP line) when the
/// `openai` package is missing; with GRAPHRUN_REQUIRE_MODELS=1 (CI) a missing package fails.
fn python(script: &str, args: &[&str]) -> Option<(bool, String)> {
    let has = Command::new("python3")
        .args(["-c", "import openai"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has {
        if std::env::var("GRAPHRUN_REQUIRE_MODELS").as_deref() == Ok("1") {
            panic!(
                "the openai Python package is missing and GRAPHRUN_REQUIRE_MODELS=1: pip install openai"
            );
        }
        eprintln!("SKIP {script}: the openai Python package is not installed (pip install openai)");
        return None;
    }
    let out = Command::new("python3")
        .arg(common::repo_path("tests/serve").join(script))
        .args(args)
        .output()
        .expect("running python3");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    Some((out.status.success(), text))
}

/// The executor the server (and the `graphrun run` it is compared with) runs on:
/// `--interp` unless GRAPHRUN_SERVE_GPU=1 (the device, scripts/gpu-check serve: no flag,
/// so the GPU is chosen).
fn on_gpu() -> bool {
    std::env::var("GRAPHRUN_SERVE_GPU").as_deref() == Ok("1")
}

fn exec_flags() -> Vec<&'static str> {
    if on_gpu() { vec![] } else { vec!["--interp"] }
}

fn model() -> Option<PathBuf> {
    common::model_05b()
}

#[test]
fn openai_client_chat_and_completions_match_graphrun_run() {
    let Some(m) = model() else { return };
    let srv = Server::start(&m, &["--parallel", "2", "--ctx", "512"]);
    let bin = common::bin();
    let Some((ok, out)) = python(
        "openai_client.py",
        &[
            &srv.url(),
            bin.to_str().unwrap(),
            m.to_str().unwrap(),
            if on_gpu() { "gpu" } else { "interp" },
        ],
    ) else {
        return;
    };
    println!("{out}");
    assert!(
        ok,
        "openai client checks failed:\n{out}\nserver log:\n{}",
        srv.log()
    );
    srv.wait_idle(5);
    // One log line per request: id, token counts, time to first token, speed.
    srv.wait_log("chatcmpl-1 ", 1);
    let log = srv.log();
    let line = log.lines().find(|l| l.contains("chatcmpl-1 ")).unwrap();
    assert!(
        line.contains("prompt ")
            && line.contains("generated ")
            && line.contains("ttft ")
            && line.contains("tok/s"),
        "{line}"
    );
}

#[test]
fn eight_clients_times_25_requests_complete_or_get_429_without_leaks_or_mixing() {
    let Some(m) = model() else { return };
    let srv = Server::start(&m, &["--parallel", "4", "--queue", "2", "--ctx", "256"]);
    let Some((ok, out)) = python("load.py", &[&srv.url(), "8", "25"]) else {
        return;
    };
    println!("{out}");
    assert!(ok, "load checks failed:\n{out}");
    let h = srv.wait_idle(5);
    assert_eq!(h["slots_total"], 4);
}

#[test]
fn bad_input_gets_400_naming_the_field() {
    let Some(m) = model() else { return };
    let srv = Server::start(&m, &["--parallel", "1", "--ctx", "64"]);
    let chat = |extra: &str| format!(r#"{{"messages":[{{"role":"user","content":"hi"}}]{extra}}}"#);
    let long = format!(r#"{{"prompt":"{}"}}"#, "word ".repeat(100));
    let cases: Vec<(&str, String, Option<&str>, &str)> = vec![
        (
            "/v1/chat/completions",
            r#"{"messages": [{"role""#.into(),
            None,
            "malformed JSON",
        ),
        ("/v1/chat/completions", "[1, 2]".into(), None, "JSON object"),
        (
            "/v1/chat/completions",
            chat(r#","model":"gpt-4""#),
            Some("model"),
            "unknown model",
        ),
        ("/v1/completions", long, Some("prompt"), "larger --ctx"),
        (
            "/v1/chat/completions",
            chat(r#","max_tokens":-5"#),
            Some("max_tokens"),
            "at least 1",
        ),
        (
            "/v1/chat/completions",
            chat(r#","temperature":7"#),
            Some("temperature"),
            "between 0 and 2",
        ),
        (
            "/v1/chat/completions",
            chat(r#","temperature":"hot""#),
            Some("temperature"),
            "invalid type",
        ),
        (
            "/v1/chat/completions",
            chat(r#","stop":{"a":1}"#),
            Some("stop"),
            "wrong type",
        ),
        (
            "/v1/chat/completions",
            r#"{"messages":"hi"}"#.into(),
            Some("messages"),
            "invalid type",
        ),
        (
            "/v1/chat/completions",
            r#"{"messages":[{"role":"user","content":5}]}"#.into(),
            Some("messages[0].content"),
            "wrong type",
        ),
        (
            "/v1/completions",
            r#"{"prompt":["a","b"]}"#.into(),
            Some("prompt"),
            "one prompt",
        ),
        (
            "/v1/completions",
            r#"{"prompt":""}"#.into(),
            Some("prompt"),
            "empty",
        ),
        (
            "/v1/completions",
            r#"{"max_tokens":3}"#.into(),
            Some("prompt"),
            "missing field",
        ),
    ];
    for (path, body, param, says) in cases {
        let (status, resp) = http(srv.port, "POST", path, Some(&body));
        let v = json(&resp);
        assert_eq!(status, 400, "{body} -> {resp}");
        assert_eq!(v["error"]["param"].as_str(), param, "{body} -> {resp}");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(says), "{body} -> {msg}");
    }
    let (status, resp) = http(srv.port, "GET", "/v1/nothing", None);
    assert_eq!(status, 404, "{resp}");
    assert!(
        json(&resp)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/v1/chat/completions")
    );
    let (status, resp) = http(srv.port, "GET", "/v1/completions", None);
    assert_eq!(status, 405, "{resp}");
    assert!(
        json(&resp)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("take POST")
    );
    // Each refusal is logged in one line with its status.
    srv.wait_log("refused with 400", 13);
    // None of that took a slot, and the server still answers.
    assert_eq!(srv.wait_idle(1)["slots_free"], 1);
    let (status, resp) = http(
        srv.port,
        "POST",
        "/v1/completions",
        Some(r#"{"prompt":"Hi","max_tokens":2}"#),
    );
    assert_eq!(status, 200, "{resp}");
    assert_eq!(json(&resp)["usage"]["completion_tokens"], 2);
}

/// A streamed completion request, sent; returns the socket to read from.
fn start_stream(port: u16, max_tokens: usize) -> TcpStream {
    let mut s = connect(port);
    let body = format!(
        r#"{{"prompt":"1, 2, 3,","max_tokens":{max_tokens},"temperature":0,"stream":true}}"#
    );
    write!(
        s,
        "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    s
}

/// Reads from `s` until `n` SSE data lines have arrived.
fn read_data_lines(s: &mut TcpStream, n: usize) -> String {
    let mut got = String::new();
    let mut buf = [0u8; 4096];
    while got.matches("data: ").count() < n {
        let k = s.read(&mut buf).unwrap();
        assert!(k > 0, "stream ended early: {got}");
        got += &String::from_utf8_lossy(&buf[..k]);
    }
    got
}

#[test]
fn disconnects_half_requests_and_10mb_bodies_leave_the_server_serving() {
    let Some(m) = model() else { return };
    let srv = Server::start(&m, &["--parallel", "2", "--ctx", "512"]);
    // 1. A client that disconnects mid-stream frees its slot at once.
    let mut s = start_stream(srv.port, 400);
    read_data_lines(&mut s, 3);
    assert_eq!(srv.health()["slots_free"], 1);
    drop(s);
    srv.wait_idle(3);
    // 2. So does one that leaves while waiting for a non-streamed answer.
    let mut s = connect(srv.port);
    let body = r#"{"prompt":"1, 2, 3,","max_tokens":400,"temperature":0}"#;
    write!(
        s,
        "POST /v1/completions HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let t0 = Instant::now();
    while srv.health()["slots_free"] == 2 {
        assert!(t0.elapsed().as_secs() < 30, "request never took a slot");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(s);
    srv.wait_idle(3);
    srv.wait_log("cancelled (client disconnected)", 2);
    // 3. Half a request: headers cut off, and a body shorter than its Content-Length.
    let mut s = connect(srv.port);
    s.write_all(b"POST /v1/completions HTTP/1.1\r\nContent-Le")
        .unwrap();
    drop(s);
    let mut s = connect(srv.port);
    s.write_all(b"POST /v1/completions HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"prompt\":")
        .unwrap();
    drop(s);
    // 4. 10 MB bodies, with a Content-Length and chunked, are refused with 413.
    let big = format!(r#"{{"prompt":"{}"}}"#, "a".repeat(10 << 20));
    let mut s = connect(srv.port);
    write!(
        s,
        "POST /v1/completions HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
        big.len()
    )
    .unwrap();
    // The server answers before the body is all sent and closes; the rest may not go out.
    s.write_all(big.as_bytes()).ok();
    let (status, resp) = read_response(&mut s);
    assert_eq!(status, 413, "{resp}");
    assert!(
        json(&resp)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("larger than")
    );
    let mut s = connect(srv.port);
    s.write_all(b"POST /v1/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        .unwrap();
    let chunk = vec![b'a'; 1 << 20];
    for _ in 0..10 {
        if write!(s, "{:x}\r\n", chunk.len())
            .and_then(|_| s.write_all(&chunk))
            .and_then(|_| s.write_all(b"\r\n"))
            .is_err()
        {
            break;
        }
    }
    let (status, resp) = read_response(&mut s);
    assert_eq!(status, 413, "{resp}");
    // The server keeps serving, with every slot free.
    let (status, resp) = http(
        srv.port,
        "POST",
        "/v1/completions",
        Some(r#"{"prompt":"Hi","max_tokens":3,"temperature":0}"#),
    );
    assert_eq!(status, 200, "{resp}");
    assert_eq!(json(&resp)["choices"][0]["finish_reason"], "length");
    srv.wait_idle(3);
}

#[test]
fn full_queue_answers_429_and_waiting_requests_run_when_a_slot_frees() {
    let Some(m) = model() else { return };
    let srv = Server::start(&m, &["--parallel", "1", "--queue", "1", "--ctx", "256"]);
    let mut active = start_stream(srv.port, 200);
    read_data_lines(&mut active, 1);
    let waiting = start_stream(srv.port, 4);
    let t0 = Instant::now();
    while srv.health()["queued"] != 1 {
        assert!(t0.elapsed().as_secs() < 10, "second request never queued");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Slot and queue are full: a third request is refused at once, saying why.
    let (status, resp) = http(
        srv.port,
        "POST",
        "/v1/completions",
        Some(r#"{"prompt":"x","max_tokens":2}"#),
    );
    assert_eq!(status, 429, "{resp}");
    let v = json(&resp);
    assert_eq!(v["error"]["type"], "rate_limit_error");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("queue is full"),
        "{resp}"
    );
    // The active client leaves; the waiting request gets the slot and finishes normally.
    drop(active);
    let mut waiting = waiting;
    let mut all = String::new();
    waiting.read_to_string(&mut all).ok();
    assert!(
        all.contains("\"finish_reason\":\"length\"") && all.contains("data: [DONE]"),
        "{all}"
    );
    srv.wait_idle(3);
}

#[test]
fn sigterm_stops_the_server_cleanly_ending_open_streams() {
    let Some(m) = model() else { return };
    let mut srv = Server::start(&m, &["--parallel", "1", "--ctx", "1024"]);
    let mut s = start_stream(srv.port, 1000);
    read_data_lines(&mut s, 2);
    let t0 = Instant::now();
    let status = srv.terminate(20);
    assert!(status.success(), "exit status {status}: {}", srv.log());
    let mut rest = String::new();
    s.read_to_string(&mut rest).ok();
    // The stream ended with an error event (cut at the grace period) or finished.
    assert!(
        rest.contains("shut down before the request finished") || rest.contains("[DONE]"),
        "{rest}"
    );
    assert!(t0.elapsed().as_secs() < 15);
    srv.wait_log("graphrun serve: stopped", 1);
    let log = srv.log();
    assert!(
        log.contains("SIGTERM: shutting down") && log.contains("graphrun serve: stopped"),
        "{log}"
    );
}

#[test]
fn run_chat_renders_the_models_template_with_the_chatml_token_ids() {
    let Some(m) = model() else { return };
    let mf = graphrun::model::ModelFile::open(&m).unwrap();
    let t = graphrun::serve::template::ChatTemplate::from_model(&mf).unwrap();
    use graphrun::serve::template::ChatMessage;
    // The real 0.5B's template writes exactly the ChatML prompt the former hard-coded
    // wrapper wrote, its default system message included.
    let q = "Write a Python function that checks whether a number is prime.";
    let chatml = |sys: &str| {
        format!(
            "<|im_start|>system\n{sys}<|im_end|>\n<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n"
        )
    };
    let default_sys = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";
    assert_eq!(
        t.render(&[ChatMessage::new("user", q)]).unwrap(),
        chatml(default_sys)
    );
    assert_eq!(
        t.render(&[
            ChatMessage::new("system", "Be terse."),
            ChatMessage::new("user", q)
        ])
        .unwrap(),
        chatml("Be terse.")
    );
    // End to end: `run --chat` generates the same ids as `run` given that ChatML text.
    let mp = m.to_str().unwrap();
    let ids = |args: &[&str]| {
        let mut a = vec!["run", mp, "--interp", "-n", "8", "--ids"];
        a.extend_from_slice(args);
        let (code, out, err) = common::graphrun(&a);
        assert_eq!(code, 0, "{err}");
        let prompt = err
            .split("prompt ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .to_string();
        (out, prompt)
    };
    let via_template = ids(&["--chat", "-p", q]);
    let by_hand = ids(&["-p", &chatml(default_sys)]);
    assert_eq!(via_template, by_hand);
    assert_eq!(via_template.0.lines().count(), 8);
}

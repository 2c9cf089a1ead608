//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// Path of a real model in the cache, or None (with a visible SKIP line) when it is absent.
/// With GRAPHRUN_REQUIRE_MODELS=1 (set by `scripts/test`, which `.ci/run` runs) a missing
/// model fails the test instead.
pub fn real_model(file: &str) -> Option<PathBuf> {
    let p = graphrun::model::models_dir().join(file);
    if p.exists() {
        return Some(p);
    }
    if std::env::var("GRAPHRUN_REQUIRE_MODELS").as_deref() == Ok("1") {
        panic!(
            "{} is missing and GRAPHRUN_REQUIRE_MODELS=1: run scripts/fetch-model all",
            p.display()
        );
    }
    eprintln!(
        "SKIP: {} not cached (run scripts/fetch-model all)",
        p.display()
    );
    None
}

pub fn model_05b() -> Option<PathBuf> {
    real_model(graphrun::model::DEFAULT_MODEL_FILE)
}

/// The GPU suites are `#[ignore = "needs a GPU ..."]`, so runners without one report them
/// as ignored; run with `--ignored` on a GPU machine. There, a missing GPU is a failure
/// with the reason, never a silent pass.
pub fn require_gpu(suite: &str) {
    if let Err(why) = graphrun::exec::gpu_probe::probe(0) {
        panic!("{suite} was asked to run (--ignored) but no GPU is usable: {why}");
    }
}

/// The real 0.5B for the GPU suites: `$GRAPHRUN_REAL_05B` (where it was shipped to the GPU
/// machine), else the cache.
pub fn model_05b_for_gpu() -> Option<PathBuf> {
    match std::env::var_os("GRAPHRUN_REAL_05B").map(PathBuf::from) {
        Some(p) if p.exists() => Some(p),
        Some(p) => {
            eprintln!("SKIP: {} (GRAPHRUN_REAL_05B) does not exist", p.display());
            None
        }
        None => model_05b(),
    }
}

pub fn model_15b() -> Option<PathBuf> {
    real_model(graphrun::model::MODEL_1_5B_FILE)
}

pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

pub fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A tiny seeded generator (xorshift64*), so tests need no `rand` crate.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// Uniform in [-1, 1).
    pub fn f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    /// Approximately standard normal (sum of uniforms).
    pub fn normal(&mut self) -> f32 {
        (0..6).map(|_| self.f32()).sum::<f32>() * 0.7
    }
}

/// Path to the built `graphrun` binary (`GRAPHRUN_BIN` overrides it where test binaries run
/// away from the build tree, e.g. on the GPU machine).
pub fn bin() -> PathBuf {
    std::env::var_os("GRAPHRUN_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_graphrun")))
}

/// A fresh, empty scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("graphrun-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs the `graphrun` binary; returns (exit status, stdout, stderr).
pub fn graphrun(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(bin())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin().display()));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `graphrun trace MODEL --prompt P EXTRA... -o DIR`, which must succeed.
pub fn trace(model: &std::path::Path, prompt: &str, extra: &[&str], dir: &std::path::Path) {
    let mut args = vec![
        "trace",
        model.to_str().unwrap(),
        "--prompt",
        prompt,
        "-o",
        dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let (code, _, err) = graphrun(&args);
    assert_eq!(code, 0, "graphrun {}: {err}", args.join(" "));
}

/// `graphrun diff A B [EXTRA...] --json`: (exit status, report, stderr).
pub fn diff_json(
    a: &std::path::Path,
    b: &std::path::Path,
    extra: &[&str],
) -> (i32, serde_json::Value, String) {
    let mut args = vec!["diff", a.to_str().unwrap(), b.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    diff_verdict(&args)
}

/// A `graphrun diff ... --json` run: exit 0 (in band) or 1 (a divergence) and its JSON
/// report; any other exit fails the test.
fn diff_verdict(args: &[&str]) -> (i32, serde_json::Value, String) {
    let (code, out, err) = graphrun(args);
    assert!(
        code == 0 || code == 1,
        "graphrun {}: exit {code}: {err}",
        args.join(" ")
    );
    (code, serde_json::from_str(&out).unwrap(), err)
}

/// The faults every injected-fault table uses (CPU and GPU, f32 semantics): node, kind. Scales
/// of 1e-3 relative (NMSE 1e-6: 100x outside the f32 band of 1e-8, so no fault sits on a
/// band's edge), a dropped bias, RoPE offsets, from the embedding to the final norm.
pub const FAULTS: &[&str] = &[
    "token_embd:scale=1.001",
    "blk.0.attn_k_bias:bias=off",
    "blk.3.ffn_gate:scale=1.001",
    "blk.5.attn_rope_q:offset=1",
    "blk.7.attn_norm:scale=1.001",
    "blk.9.attn:scale=0.999",
    "blk.12.attn_v:scale=1.01",
    "blk.16.ffn_swiglu:scale=1.001",
    "blk.20.ffn_down:scale=1.001",
    "blk.23.attn_rope_k:offset=3",
    "output_norm:scale=1.001",
];

/// Faults found through q8 noise (GPU q8 vs interpreter q8, trace_same_semantics): each moves
/// its node by more than the node's q8 band for real weights (matmul 5e-2, other ops 1e-2):
/// scale 1.3 on a matmul (NMSE 9e-2), 1.2 elsewhere (4e-2), a dropped bias, a RoPE offset.
pub const Q8_FAULTS: &[&str] = &[
    "blk.2.attn_norm:scale=1.2",
    "blk.6.ffn_up:scale=1.3",
    "blk.11.attn:scale=0.8",
    "blk.18.attn_k_bias:bias=off",
    "blk.21.attn_rope_q:offset=2",
    "output_norm:scale=1.2",
];

/// `graphrun diff --live MODEL -p PROMPT --a A --b B -n N -o DIR --json [EXTRA]`: (exit
/// status, summary, stderr); an exit other than 0 or 1 fails the test.
pub fn live_diff(
    model: &std::path::Path,
    prompt: &str,
    (a, b): (&str, &str),
    n: usize,
    dir: &std::path::Path,
    extra: &[&str],
) -> (i32, serde_json::Value, String) {
    let n = n.to_string();
    let mut args = vec![
        "diff",
        "--live",
        model.to_str().unwrap(),
        "-p",
        prompt,
        "--a",
        a,
        "--b",
        b,
        "-n",
        &n,
        "-o",
        dir.to_str().unwrap(),
        "--json",
    ];
    args.extend_from_slice(extra);
    diff_verdict(&args)
}

/// The llama.cpp reference outputs: `$GRAPHRUN_REFERENCE`, else `../shared/reference`
/// beside the checkout, else the committed copy in `tests/reference`.
pub fn reference_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("GRAPHRUN_REFERENCE") {
        return d.into();
    }
    let shared = repo_path("../shared/reference");
    if shared.join("generations.json").exists() {
        return shared;
    }
    repo_path("tests/reference")
}

pub fn reference_json(name: &str) -> serde_json::Value {
    let p = reference_dir().join(name);
    serde_json::from_str(
        &std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
    )
    .unwrap()
}

/// A tiny synthetic model (see `graphrun::model::synth`), optionally transformed.
pub fn tiny_model(preset: &str, seed: u64) -> graphrun::model::ModelFile {
    let spec = graphrun::model::synth::SynthSpec::preset(preset).unwrap();
    let w = graphrun::model::synth::build(&spec, seed, None);
    graphrun::model::ModelFile::from_bytes(w.to_bytes(), &format!("{preset}.gguf")).unwrap()
}

/// Greedy decoding of `steps` tokens after `prompt` on any engine; with `margins`, also the
/// top-1 − top-2 logit margin at every step (from the host logits), for `tokens_agree`.
pub fn greedy(
    e: &mut dyn graphrun::exec::Engine,
    prompt: &[u32],
    steps: usize,
    obs: &mut dyn graphrun::exec::Observer,
    margins: bool,
) -> graphrun::Result<(Vec<u32>, Vec<f32>)> {
    e.reset();
    let (mut toks, mut gaps) = (Vec::new(), Vec::new());
    let mut input = prompt.to_vec();
    for _ in 0..steps {
        let t = if margins {
            let n = input.len();
            let l = e.step(&input, n - 1..n, obs)?;
            let (t, gap) = top1_margin(&l);
            gaps.push(gap);
            t as u32
        } else {
            e.step_argmax(&input, obs)?
        };
        toks.push(t);
        input = vec![t];
    }
    Ok((toks, gaps))
}

/// A JSON array of token ids (the reference files' `prompt_token_ids`, ...).
pub fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

/// The reference margin below which a greedy flip is a near-tie
/// (contracts/reference.toml's `near_tie_margin`).
pub fn near_tie() -> f32 {
    graphrun::contracts::load("reference")
        .unwrap()
        .band("near_tie_margin")
        .unwrap() as f32
}

/// The greedy choice of `logits` and its margin over the runner-up (top-1 − top-2).
pub fn top1_margin(logits: &[f32]) -> (usize, f32) {
    let t = graphrun::numerics::argmax(logits);
    let second = logits
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != t)
        .map(|(_, v)| *v)
        .fold(f32::NEG_INFINITY, f32::max);
    (t, logits[t] - second)
}

/// Greedy tokens `got` against the reference's `want`: equal up to the first step whose
/// reference margin is a near-tie (there the other side may take the reference's second
/// choice); None when they agree so far, else the failure.
pub fn tokens_agree(got: &[u32], want: &[u32], margins: &[f32], near_tie: f32) -> Option<String> {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if margins[i] < near_tie {
            return None;
        }
        if g != w {
            return Some(format!(
                "step {i}: token {g}, reference {w} (reference margin {:.3} ≥ near-tie {near_tie})",
                margins[i]
            ));
        }
    }
    None
}

/// The fused decode engine on `m` (a one-row logits buffer) with an f16 cache, for the GPU
/// suites that drive the captured decode step (`gpu_sample`, `gpu_chain`).
pub fn fused_f16_engine(
    m: &graphrun::model::ModelFile,
    act: graphrun::graph::ActSemantics,
    n_ctx: usize,
) -> graphrun::exec::cuda::CudaEngine<'_> {
    use graphrun::graph::{KvType, LowerOptions, lower};
    let g = lower(
        m,
        LowerOptions {
            act,
            kv: KvType::F16,
        },
    )
    .unwrap();
    let opts = graphrun::exec::cuda::CudaOptions {
        device: 0,
        n_ctx,
        fuse: true,
        max_logit_rows: 1,
        quiet: true,
    };
    graphrun::exec::cuda::CudaEngine::new(m, g, &opts).unwrap()
}

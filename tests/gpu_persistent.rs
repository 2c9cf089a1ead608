//! The persistent decode kernel (kernels/persistent.cu, `--decode-kernel persistent`) on
//! the GPU, judged against the interpreter and the multi-kernel CUDA graph (the default
//! decode path): every traced record within its band of contracts/trace_same_semantics.toml
//! (per op and fused group class, the class taken from the graph run's group of the same
//! node; real vs synthetic weights; the KV cache type of the run), greedy tokens identical
//! up to a near-tie (contracts/reference.toml's `near_tie_margin`), for every synthetic
//! preset under q8 and f32 semantics with the f16 and the f32 KV cache; prompts of every
//! length followed by decode (attention over many stages and splits); counters that cross
//! the 2^32 wrap; a stuck wait that ends in an error naming the instructions instead of a
//! hang; the fallback to the graph for a fault-injected model; the real 0.5B's greedy tokens.
//! GPU-only: `#[ignore]`d, run with `--ignored` on the device (scripts/gpu-check persist).
//!
//! GRAPHRUN_PERSIST_PRESETS=tiny,0.5b,... chooses the synthetic presets of the first test
//! (default all five: tiny, tiny-llama, 0.5b, 1.5b, 7b); GRAPHRUN_PERSIST_REPORT=FILE
//! writes every compared record's NMSE and band as JSON lines.

mod common;

use graphrun::contracts::{self, Contract};
use graphrun::diff;
use graphrun::exec::cuda::{CudaEngine, CudaOptions, DecodeKernel, PersistentOptions};
use graphrun::exec::interp::Interpreter;
use graphrun::exec::{Engine, NoObserver, Observer};
use graphrun::graph::{ActSemantics, Graph, KvType, LowerOptions, Node, NodeId, lower};
use graphrun::metrics::nmse;
use graphrun::model::ModelFile;
use graphrun::model::synth::{SynthSpec, build};
use graphrun::sched::program::Body;
use std::collections::HashMap;
use std::io::Write;

/// Every traced row by (node, position), each node's op, and the fused group label (kernel
/// names) its record came with.
#[derive(Default)]
struct Collect {
    rows: HashMap<(String, usize), Vec<f32>>,
    ops: HashMap<String, String>,
    groups: HashMap<String, String>,
    group: Option<String>,
}

impl Observer for Collect {
    fn group(&mut self, kernel: Option<&str>, _: &[NodeId]) {
        self.group = kernel.map(String::from);
    }
    fn node_done(
        &mut self,
        _: NodeId,
        node: &Node,
        pos: usize,
        rows: usize,
        data: &mut [f32],
    ) -> graphrun::Result<()> {
        for (r, row) in data.chunks_exact(node.width).enumerate().take(rows) {
            self.rows.insert((node.name.clone(), pos + r), row.to_vec());
        }
        self.ops
            .insert(node.name.clone(), node.op.name().to_string());
        if let Some(g) = self.group.take() {
            self.groups.insert(node.name.clone(), g);
        }
        Ok(())
    }
}

fn synthetic(preset: &str) -> ModelFile {
    let spec = SynthSpec::preset(preset).unwrap();
    ModelFile::from_bytes(
        build(&spec, 11, None).to_bytes(),
        &format!("synthetic-{preset}.gguf"),
    )
    .unwrap()
}

fn engine<'m>(m: &'m ModelFile, g: &Graph, n_ctx: usize) -> CudaEngine<'m> {
    let opts = CudaOptions {
        device: 0,
        n_ctx,
        fuse: true,
        max_logit_rows: 1,
        quiet: true,
    };
    CudaEngine::new(m, g.clone(), &opts).unwrap()
}

/// Switches `e` to the persistent kernel, which must fit.
fn persistent(e: &mut CudaEngine, opts: PersistentOptions) {
    let note = e
        .set_decode_kernel_with(DecodeKernel::Persistent, opts)
        .unwrap();
    assert_eq!(note, None, "the persistent kernel must fit here");
    assert_eq!(e.decode_kernel(), DecodeKernel::Persistent);
}

struct Compare {
    report: Option<std::fs::File>,
    same: Contract,
    near_tie: f32,
}

impl Compare {
    fn new() -> Compare {
        Compare {
            report: std::env::var_os("GRAPHRUN_PERSIST_REPORT")
                .map(|p| std::fs::File::create(p).unwrap()),
            same: contracts::load("trace_same_semantics").unwrap(),
            near_tie: common::near_tie(),
        }
    }

    /// The band of a record of `node` (op `op`, fused group label `group`): the classes
    /// graphrun diff gives it, under the run's semantics and cache type.
    fn band(&self, sem: (ActSemantics, KvType), real: bool, classes: &[String]) -> f64 {
        diff::band(&self.same, [sem, sem], classes, real).unwrap()
    }

    /// Every record of `got` (the persistent kernel's) against `want`'s rows at the same
    /// (node, position), before position `cutoff` (the first fed a different token), and
    /// every record of `labels` (the multi-kernel graph run's) present in `got`; the class
    /// of a record comes from `labels` (the graph run's group label of the node).
    /// Returns (records compared, the worst relative to its band as text, failures).
    #[allow(clippy::too_many_arguments)]
    fn traces(
        &mut self,
        label: &str,
        sem: (ActSemantics, KvType),
        real: bool,
        output: &str,
        got: &Collect,
        want: &Collect,
        labels: &Collect,
        cutoff: usize,
    ) -> (usize, String, Vec<String>) {
        let (mut worst, mut at, mut fails) = (-1.0f64, String::new(), Vec::new());
        // A record is missing when the multi-kernel path traces it (`labels`: the group
        // outputs) and the persistent kernel does not; the interpreter traces every node,
        // so its records inside a fused group have no persistent twin to miss.
        let mut missing: Vec<_> = want
            .rows
            .keys()
            .filter(|k| k.1 < cutoff && labels.rows.contains_key(*k) && !got.rows.contains_key(*k))
            .collect();
        missing.sort();
        if let Some(k) = missing.first() {
            fails.push(format!(
                "{label}: {}@{} traced by the reference only",
                k.0, k.1
            ));
        }
        let mut keys: Vec<_> = got.rows.keys().filter(|k| k.1 < cutoff).collect();
        keys.sort();
        for k in &keys {
            let Some(w) = want.rows.get(*k) else {
                fails.push(format!(
                    "{label}: {}@{} traced by the persistent kernel only",
                    k.0, k.1
                ));
                continue;
            };
            let e = nmse(&got.rows[*k], w);
            let op = &got.ops[&k.0];
            let classes = diff::classes(
                &k.0,
                op,
                labels.groups.get(&k.0).map(String::as_str),
                Some(output),
            );
            let band = self.band(sem, real, &classes);
            if let Some(f) = self.report.as_mut() {
                let line = serde_json::json!({"run": label, "node": k.0, "op": op,
                    "class": classes[0], "pos": k.1, "nmse": e, "band": band});
                writeln!(f, "{line}").unwrap();
            }
            let rel = if band > 0.0 { e / band } else { e };
            if rel > worst || e.is_nan() {
                worst = rel;
                at = format!("{}@{} NMSE {e:.3e} (band {band:.0e})", k.0, k.1);
            }
            if e.is_nan() || e > band {
                fails.push(format!(
                    "{label}: {}@{} NMSE {e:.3e} > band {band:.0e}",
                    k.0, k.1
                ));
            }
        }
        (keys.len(), at, fails)
    }
}

/// One model under one semantics and cache type: interpreter, multi-kernel graph and
/// persistent kernel, traced and untraced; returns the failures.
fn check_config(
    m: &ModelFile,
    label: &str,
    (act, kv): (ActSemantics, KvType),
    prompt: &[u32],
    steps: usize,
    cmp: &mut Compare,
) -> Vec<String> {
    let real = !m.is_synthetic();
    let label = format!("{label} T={} {} kv {}", prompt.len(), act.name(), kv.name());
    let n_ctx = (prompt.len() + steps + 16).next_multiple_of(64);
    let g = lower(m, LowerOptions { act, kv }).unwrap();
    let output = g.node(g.output()).name.clone();
    let mut fail = Vec::new();
    let mut cpu_trace = Collect::default();
    let mut cpu = Interpreter::new(m, g.clone(), n_ctx).unwrap();
    let (cpu_toks, margins) =
        common::greedy(&mut cpu, prompt, steps, &mut cpu_trace, true).unwrap();
    let mut gpu = engine(m, &g, n_ctx);
    let mut graph_trace = Collect::default();
    let (graph_toks, _) = common::greedy(&mut gpu, prompt, steps, &mut graph_trace, false).unwrap();
    persistent(&mut gpu, PersistentOptions::default());
    let p = gpu.persistent_program().unwrap();
    let (ctas, n_instr) = (p.ctas, p.instrs.len());
    let mut p_trace = Collect::default();
    let traced = common::greedy(&mut gpu, prompt, steps, &mut p_trace, false);
    let fast = common::greedy(&mut gpu, prompt, steps, &mut NoObserver, false);
    let (traced, fast) = match (traced, fast) {
        (Ok(t), Ok(f)) => (t.0, f.0),
        (t, f) => {
            return vec![format!(
                "{label}: the persistent kernel failed: traced {:?}, untraced {:?}",
                t.err().map(|e| e.to_string()),
                f.err().map(|e| e.to_string())
            )];
        }
    };
    for (what, reference, ref_toks) in [
        ("interp", &cpu_trace, &cpu_toks),
        ("graph", &graph_trace, &graph_toks),
    ] {
        // Decode step k feeds the token chosen at step k - 1 at position T + k - 1.
        let cutoff = traced
            .iter()
            .zip(ref_toks)
            .position(|(a, b)| a != b)
            .map_or(usize::MAX, |k| prompt.len() + k);
        let (n, worst, fails) = cmp.traces(
            &format!("{label} vs {what}"),
            (act, kv),
            real,
            &output,
            &p_trace,
            reference,
            &graph_trace,
            cutoff,
        );
        eprintln!(
            "{label}: persistent ({ctas} CTAs, {n_instr} instructions) vs {what}: {n} records, worst relative to band: {worst}"
        );
        fail.extend(fails.into_iter().take(5));
    }
    eprintln!(
        "{label}: tokens interp {cpu_toks:?} graph {graph_toks:?} persistent traced {traced:?} untraced {fast:?}"
    );
    if traced != fast {
        fail.push(format!(
            "{label}: traced and untraced persistent steps decode differently: {traced:?} vs {fast:?}"
        ));
    }
    if let Some(f) = common::tokens_agree(&fast, &graph_toks, &margins, cmp.near_tie) {
        fail.push(format!("{label}: vs the multi-kernel graph: {f}"));
    }
    if let Some(f) = common::tokens_agree(&fast, &cpu_toks, &margins, cmp.near_tie) {
        fail.push(format!("{label}: vs the interpreter: {f}"));
    }
    fail
}

const SEMS: [(ActSemantics, KvType); 4] = [
    (ActSemantics::Q8, KvType::F16),
    (ActSemantics::F32, KvType::F16),
    (ActSemantics::Q8, KvType::F32),
    (ActSemantics::F32, KvType::F32),
];

#[test]
#[ignore = "needs a GPU: run with --ignored on the device (scripts/gpu-check persist)"]
fn synthetic_presets_decode_like_the_graph_and_the_interpreter() {
    common::require_gpu("gpu_persistent");
    let mut cmp = Compare::new();
    let presets =
        std::env::var("GRAPHRUN_PERSIST_PRESETS").unwrap_or_else(|_| SynthSpec::PRESETS.join(","));
    let mut failures = Vec::new();
    for preset in presets.split(',') {
        let m = synthetic(preset);
        let vocab = SynthSpec::preset(preset).unwrap().vocab as u32;
        let prompt: Vec<u32> = (0..9).map(|i| (31 + 97 * i) % vocab).collect();
        for sem in SEMS {
            failures.extend(check_config(&m, preset, sem, &prompt, 6, &mut cmp));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Logits of the prompt's last row and of `steps` greedy decode steps after it (the tokens
/// fed: `feed`, when given, else the engine's own greedy choices).
fn logits_after(
    e: &mut dyn Engine,
    prompt: &[u32],
    steps: usize,
    feed: Option<&[u32]>,
) -> graphrun::Result<Vec<Vec<f32>>> {
    e.reset();
    let mut out = vec![e.step(prompt, prompt.len() - 1..prompt.len(), &mut NoObserver)?];
    for k in 0..steps {
        let t = match feed {
            Some(f) => f[k],
            None => graphrun::numerics::greedy_token(out.last().unwrap())?,
        };
        out.push(e.step(&[t], 0..1, &mut NoObserver)?);
    }
    Ok(out)
}

#[test]
#[ignore = "needs a GPU: run with --ignored on the device (scripts/gpu-check persist)"]
fn prompts_of_every_length_then_decode_match_the_interpreter() {
    common::require_gpu("gpu_persistent");
    let cmp = Compare::new();
    let n_ctx = 2112;
    let mut failures = Vec::new();
    for preset in ["tiny", "tiny-llama"] {
        let m = synthetic(preset);
        // 2,049: a prefill of two chunks (2,048 rows and 1).
        for len in [1usize, 7, 129, 513, 2049] {
            // The f16 cache at every length, the f32 cache where the attention spans one
            // stage and many.
            let sems: &[(ActSemantics, KvType)] = if len == 129 || len == 2049 {
                &SEMS
            } else {
                &SEMS[..2]
            };
            for &(act, kv) in sems {
                let g = lower(&m, LowerOptions { act, kv }).unwrap();
                let out = g.node(g.output());
                let classes = diff::classes(&out.name, out.op.name(), None, Some(&out.name));
                let band = cmp.band((act, kv), false, &classes);
                let mut cpu = Interpreter::new(&m, g.clone(), n_ctx).unwrap();
                let mut gpu = engine(&m, &g, n_ctx);
                let prompt: Vec<u32> = (0..len as u32).map(|i| (7 + 131 * i) % 512).collect();
                let want = logits_after(&mut cpu, &prompt, 4, None).unwrap();
                let toks: Vec<u32> = want
                    .iter()
                    .map(|x| graphrun::numerics::greedy_token(x).unwrap())
                    .collect();
                // Default splits, one split (every position in one item), five (long
                // splits of many stages, the last partly filled).
                for splits in [None, Some(1), Some(5)] {
                    let opts = PersistentOptions {
                        att_splits: splits,
                        ..Default::default()
                    };
                    persistent(&mut gpu, opts);
                    let label = format!(
                        "{preset} {} kv {} prompt {len} splits {splits:?}",
                        act.name(),
                        kv.name()
                    );
                    // The interpreter's tokens are fed, so every step compares the same inputs.
                    let got = match logits_after(&mut gpu, &prompt, 4, Some(&toks)) {
                        Ok(g) => g,
                        Err(e) => {
                            failures.push(format!("{label}: {e}"));
                            continue;
                        }
                    };
                    let worst = got
                        .iter()
                        .zip(&want)
                        .map(|(a, b)| nmse(a, b))
                        .fold(0.0f64, f64::max);
                    eprintln!("{label}: worst logits NMSE {worst:.3e} (band {band:.0e})");
                    if worst.is_nan() || worst > band {
                        failures.push(format!(
                            "{label}: logits NMSE {worst:.3e} exceeds {band:.0e}"
                        ));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
#[ignore = "needs a GPU: run with --ignored on the device (scripts/gpu-check persist)"]
fn counters_cross_the_wrap_and_replays_agree() {
    common::require_gpu("gpu_persistent");
    for kv in [KvType::F16, KvType::F32] {
        let m = synthetic("tiny");
        let g = lower(
            &m,
            LowerOptions {
                kv,
                ..Default::default()
            },
        )
        .unwrap();
        let mut gpu = engine(&m, &g, 256);
        persistent(&mut gpu, PersistentOptions::default());
        let prompt = [5u32, 77, 300, 12];
        let (want, _) = common::greedy(&mut gpu, &prompt, 16, &mut NoObserver, false).unwrap();
        // Four launches before the epoch, every counter and the exit count wrap past 2^32.
        gpu.persistent_set_state(u32::MAX - 3, None, 2000).unwrap();
        let (got, _) = common::greedy(&mut gpu, &prompt, 16, &mut NoObserver, false).unwrap();
        assert_eq!(
            got,
            want,
            "kv {}: decoding across the counter wrap",
            kv.name()
        );
    }
}

#[test]
#[ignore = "needs a GPU: run with --ignored on the device (scripts/gpu-check persist)"]
fn a_stuck_wait_ends_in_an_error_naming_the_instructions() {
    common::require_gpu("gpu_persistent");
    let m = synthetic("tiny");
    let g = lower(&m, LowerOptions::default()).unwrap();
    let mut gpu = engine(&m, &g, 256);
    persistent(&mut gpu, PersistentOptions::default());
    let first = gpu.step_argmax(&[5, 77, 300], &mut NoObserver).unwrap();
    let attn = gpu
        .persistent_program()
        .unwrap()
        .instrs
        .iter()
        .position(|i| matches!(i.body, Body::Attn { .. }))
        .unwrap();
    // The attention's counter one launch behind: its merge waits until the watchdog.
    gpu.persistent_set_state(9, Some(attn), 200).unwrap();
    let t0 = std::time::Instant::now();
    let e = gpu
        .step_argmax(&[first], &mut NoObserver)
        .expect_err("a stuck wait must end in an error")
        .to_string();
    eprintln!("watchdog: {e} (after {:.2} s)", t0.elapsed().as_secs_f64());
    assert!(e.contains("waited longer"), "{e}");
    assert!(
        e.contains(&format!("{} (attn_merge blk.0.attn)", attn + 1)),
        "{e}"
    );
    assert!(e.contains(&format!("{attn} (attn blk.0.attn)")), "{e}");
    assert!(
        t0.elapsed().as_secs() < 30,
        "the launch drained slowly after the error"
    );
}

#[test]
#[ignore = "needs a GPU: run with --ignored on the device (scripts/gpu-check persist)"]
fn a_faulted_model_falls_back_to_the_graph_saying_why() {
    common::require_gpu("gpu_persistent");
    let m = synthetic("tiny");
    let mut g = lower(&m, LowerOptions::default()).unwrap();
    graphrun::fault::inject(&mut g, &["blk.1.ffn_gate:scale=1.001".parse().unwrap()]).unwrap();
    let mut gpu = engine(&m, &g, 256);
    let note = gpu.set_decode_kernel(DecodeKernel::Persistent).unwrap();
    let note = note.expect("a fallback note");
    assert!(note.contains("blk.1.ffn_gate"), "{note}");
    assert_eq!(gpu.decode_kernel(), DecodeKernel::Graph);
    common::greedy(&mut gpu, &[1, 2, 3], 4, &mut NoObserver, false).unwrap();
}

#[test]
#[ignore = "needs a GPU and the real 0.5B: run with --ignored on the device (scripts/gpu-check persist)"]
fn real_05b_greedy_tokens_match_the_interpreter() {
    common::require_gpu("gpu_persistent");
    let Some(path) = common::model_05b_for_gpu() else {
        return;
    };
    let m = ModelFile::open(&path).unwrap();
    let mut cmp = Compare::new();
    let refs = common::reference_json("generations.json");
    let mut failures = Vec::new();
    for (i, p) in refs["prompts"].as_array().unwrap().iter().enumerate() {
        let prompt = common::ids(&p["prompt_token_ids"]);
        let label = format!("real-0.5b p{}", p["id"]);
        if i == 0 {
            // Whole traces, both semantics, on the first prompt (the default f16 cache).
            for sem in &SEMS[..2] {
                failures.extend(check_config(&m, &label, *sem, &prompt, 16, &mut cmp));
            }
            continue;
        }
        let g = lower(&m, LowerOptions::default()).unwrap();
        let mut cpu = Interpreter::new(&m, g.clone(), 256).unwrap();
        let (want, margins) = common::greedy(&mut cpu, &prompt, 16, &mut NoObserver, true).unwrap();
        let mut gpu = engine(&m, &g, 256);
        persistent(&mut gpu, PersistentOptions::default());
        let (got, _) = common::greedy(&mut gpu, &prompt, 16, &mut NoObserver, false).unwrap();
        eprintln!("{label}: interp {want:?}\n              persistent {got:?}");
        if let Some(f) = common::tokens_agree(&got, &want, &margins, cmp.near_tie) {
            failures.push(format!("{label}: {f}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

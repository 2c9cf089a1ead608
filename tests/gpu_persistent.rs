//! The persistent decode kernel (kernels/persistent.cu) on the GPU, judged against the
//! multi-kernel CUDA graph (the parity reference) and the interpreter: identical greedy
//! tokens and per-group NMSE within the e2e bands of contracts/gpu_parity.yaml, for every
//! synthetic preset under q8 and f32 semantics; prompts of every length followed by decode
//! (attention over many chunks and splits); counters that cross the 2^32 wrap; a stuck wait
//! that ends in an error naming the instructions instead of a hang; the fallback to the
//! graph for a fault-injected model; the real 0.5B's greedy tokens. Skipped, with a
//! message, without a GPU.
//!
//! GRAPHRUN_PERSIST_PRESETS=tiny,0.5b,... chooses the synthetic presets of the first test
//! (default all five: tiny, tiny-llama, 0.5b, 1.5b, 7b); GRAPHRUN_PERSIST_REPORT=FILE
//! writes every compared tensor's NMSE as JSON lines.

mod common;

use graphrun::contracts;
use graphrun::exec::cuda::{CudaEngine, CudaOptions, DecodeKernel, PersistentOptions};
use graphrun::exec::interp::Interpreter;
use graphrun::exec::{Engine, NoObserver, Observer};
use graphrun::graph::{ActSemantics, Graph, LowerOptions, Node, NodeId, lower};
use graphrun::model::ModelFile;
use graphrun::model::synth::{SynthSpec, build};
use graphrun::sched::program::Body;
use std::collections::HashMap;
use std::io::Write;

/// NMSE = Σ(a − b)² / Σb², infinite when `a` holds a non-finite value. (A local copy of
/// the suites' helper until graphrun has one in src/metrics.rs.)
fn nmse(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let (mut n, mut d) = (0.0f64, 0.0f64);
    for (x, y) in a.iter().zip(b) {
        if !x.is_finite() {
            return f64::INFINITY;
        }
        n += (*x as f64 - *y as f64).powi(2);
        d += (*y as f64).powi(2);
    }
    n / d.max(1e-30)
}

/// Every traced tensor, keyed by (node, first position).
#[derive(Default)]
struct Collect(HashMap<(String, usize), Vec<f32>>);

impl Observer for Collect {
    fn node_done(
        &mut self,
        _: NodeId,
        node: &Node,
        pos: usize,
        _: usize,
        data: &mut [f32],
    ) -> graphrun::Result<()> {
        self.0.insert((node.name.clone(), pos), data.to_vec());
        Ok(())
    }
}

/// Greedy decoding: the prompt, then `steps - 1` single tokens.
fn run(
    e: &mut dyn Engine,
    prompt: &[u32],
    steps: usize,
    obs: &mut dyn Observer,
) -> graphrun::Result<Vec<u32>> {
    e.reset();
    let mut toks = vec![e.step_argmax(prompt, obs)?];
    for _ in 1..steps {
        let t = *toks.last().unwrap();
        toks.push(e.step_argmax(&[t], obs)?);
    }
    Ok(toks)
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

/// Per-tensor NMSE of `got` against `want` (the same keys); returns the worst, written to
/// the report when one is asked for.
fn compare(
    report: &mut Option<std::fs::File>,
    label: &str,
    got: &Collect,
    want: &Collect,
) -> Result<(f64, String), String> {
    let mut keys: Vec<_> = got.0.keys().collect();
    keys.sort();
    let mut missing: Vec<_> = want.0.keys().filter(|k| !got.0.contains_key(k)).collect();
    missing.sort();
    if let Some(k) = missing.first() {
        return Err(format!("{label}: {k:?} traced by the reference only"));
    }
    let mut worst = (0.0f64, String::new());
    for k in keys {
        let Some(w) = want.0.get(k) else {
            return Err(format!(
                "{label}: {k:?} traced by the persistent kernel only"
            ));
        };
        let e = nmse(&got.0[k], w);
        if let Some(f) = report.as_mut() {
            writeln!(
                f,
                "{}",
                serde_json::json!({"run": label, "node": k.0, "pos": k.1, "nmse": e})
            )
            .unwrap();
        }
        if e > worst.0 || e.is_nan() {
            worst = (e, format!("{}@{}", k.0, k.1));
        }
    }
    Ok(worst)
}

fn report_file() -> Option<std::fs::File> {
    std::env::var_os("GRAPHRUN_PERSIST_REPORT").map(|p| std::fs::File::create(p).unwrap())
}

fn band(key: &str, act: ActSemantics) -> f64 {
    let c = contracts::load("gpu_parity").unwrap();
    c.table(key).unwrap()[act.name()].as_f64().unwrap()
}

/// One model under one semantics: interpreter, multi-kernel graph and persistent kernel,
/// traced and untraced; returns the failures.
fn check_config(
    m: &ModelFile,
    label: &str,
    act: ActSemantics,
    prompt: &[u32],
    steps: usize,
    band_key: &str,
    report: &mut Option<std::fs::File>,
) -> Vec<String> {
    let g = lower(m, LowerOptions { act }).unwrap();
    let band = band(band_key, act);
    let mut fail = Vec::new();
    let mut cpu_trace = Collect::default();
    let mut cpu = Interpreter::new(m, g.clone(), 256).unwrap();
    let cpu_toks = run(&mut cpu, prompt, steps, &mut cpu_trace).unwrap();
    let mut gpu = engine(m, &g, 256);
    let mut graph_trace = Collect::default();
    let graph_toks = run(&mut gpu, prompt, steps, &mut graph_trace).unwrap();
    persistent(&mut gpu, PersistentOptions::default());
    let p = gpu.persistent_program().unwrap();
    let (ctas, n_instr) = (p.ctas, p.instrs.len());
    let mut p_trace = Collect::default();
    let traced = run(&mut gpu, prompt, steps, &mut p_trace);
    let fast = run(&mut gpu, prompt, steps, &mut NoObserver);
    let (traced, fast) = match (traced, fast) {
        (Ok(t), Ok(f)) => (t, f),
        (t, f) => {
            return vec![format!(
                "{label}: the persistent kernel failed: traced {:?}, untraced {:?}",
                t.err().map(|e| e.to_string()),
                f.err().map(|e| e.to_string())
            )];
        }
    };
    for (what, reference) in [("interp", &cpu_trace), ("graph", &graph_trace)] {
        match compare(report, &format!("{label} vs {what}"), &p_trace, reference) {
            Ok((worst, at)) => {
                eprintln!(
                    "{label}: persistent ({ctas} CTAs, {n_instr} instructions) vs {what}: {} tensors, worst NMSE {worst:.3e} at {at} (band {band:.0e})",
                    p_trace.0.len()
                );
                if worst > band {
                    fail.push(format!(
                        "{label} vs {what}: NMSE {worst:.3e} at {at} exceeds {band:.0e}"
                    ));
                }
            }
            Err(e) => fail.push(e),
        }
    }
    eprintln!(
        "{label}: tokens interp {cpu_toks:?} graph {graph_toks:?} persistent traced {traced:?} untraced {fast:?}"
    );
    if traced != fast {
        fail.push(format!(
            "{label}: traced and untraced persistent steps decode differently"
        ));
    }
    if fast != graph_toks {
        fail.push(format!(
            "{label}: greedy tokens differ from the multi-kernel graph"
        ));
    }
    if fast != cpu_toks {
        fail.push(format!(
            "{label}: greedy tokens differ from the interpreter"
        ));
    }
    fail
}

#[test]
fn synthetic_presets_decode_like_the_graph_and_the_interpreter() {
    if !common::gpu_ok("gpu_persistent") {
        return;
    }
    let mut report = report_file();
    let presets =
        std::env::var("GRAPHRUN_PERSIST_PRESETS").unwrap_or_else(|_| SynthSpec::PRESETS.join(","));
    let mut failures = Vec::new();
    for preset in presets.split(',') {
        let m = synthetic(preset);
        let vocab = SynthSpec::preset(preset).unwrap().vocab as u32;
        let prompt: Vec<u32> = (0..9).map(|i| (31 + 97 * i) % vocab).collect();
        for act in [ActSemantics::Q8, ActSemantics::F32] {
            let label = format!("{preset} {}", act.name());
            failures.extend(check_config(
                &m,
                &label,
                act,
                &prompt,
                6,
                "e2e_nmse",
                &mut report,
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Logits of the prompt's last row and of `steps` greedy decode steps after it.
fn logits_after(
    e: &mut dyn Engine,
    prompt: &[u32],
    steps: usize,
) -> graphrun::Result<Vec<Vec<f32>>> {
    e.reset();
    let mut out = vec![e.step(prompt, prompt.len() - 1..prompt.len(), &mut NoObserver)?];
    for _ in 0..steps {
        let t = graphrun::numerics::greedy_token(out.last().unwrap())?;
        out.push(e.step(&[t], 0..1, &mut NoObserver)?);
    }
    Ok(out)
}

#[test]
fn prompts_of_every_length_then_decode_match_the_interpreter() {
    if !common::gpu_ok("gpu_persistent") {
        return;
    }
    let n_ctx = 2056;
    let mut failures = Vec::new();
    for preset in ["tiny", "tiny-llama"] {
        let m = synthetic(preset);
        for act in [ActSemantics::Q8, ActSemantics::F32] {
            let g = lower(&m, LowerOptions { act }).unwrap();
            let band = band("e2e_nmse", act);
            let mut cpu = Interpreter::new(&m, g.clone(), n_ctx).unwrap();
            let mut gpu = engine(&m, &g, n_ctx);
            for len in [1usize, 7, 129, 513, 2000] {
                let prompt: Vec<u32> = (0..len as u32).map(|i| (7 + 131 * i) % 512).collect();
                let want = logits_after(&mut cpu, &prompt, 4).unwrap();
                // Default splits (one or two tiles per chunk), one split (the whole context
                // in one item), five (chunks of many tiles, the last partly filled).
                for splits in [None, Some(1), Some(5)] {
                    let opts = PersistentOptions {
                        att_splits: splits,
                        ..Default::default()
                    };
                    persistent(&mut gpu, opts);
                    let label = format!("{preset} {} prompt {len} splits {splits:?}", act.name());
                    let got = match logits_after(&mut gpu, &prompt, 4) {
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
                    let toks = |l: &[Vec<f32>]| -> Vec<u32> {
                        l.iter()
                            .map(|x| graphrun::numerics::greedy_token(x).unwrap())
                            .collect()
                    };
                    eprintln!("{label}: worst logits NMSE {worst:.3e} (band {band:.0e})");
                    if worst > band {
                        failures.push(format!(
                            "{label}: logits NMSE {worst:.3e} exceeds {band:.0e}"
                        ));
                    }
                    if toks(&got) != toks(&want) {
                        failures.push(format!(
                            "{label}: greedy tokens {:?}, interpreter {:?}",
                            toks(&got),
                            toks(&want)
                        ));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn counters_cross_the_wrap_and_replays_agree() {
    if !common::gpu_ok("gpu_persistent") {
        return;
    }
    let m = synthetic("tiny");
    let g = lower(&m, LowerOptions::default()).unwrap();
    let mut gpu = engine(&m, &g, 256);
    persistent(&mut gpu, PersistentOptions::default());
    let prompt = [5u32, 77, 300, 12];
    let want = run(&mut gpu, &prompt, 16, &mut NoObserver).unwrap();
    // Four launches before the epoch, every counter and the exit count wrap past 2^32.
    gpu.persistent_set_state(u32::MAX - 3, None, 2000).unwrap();
    let got = run(&mut gpu, &prompt, 16, &mut NoObserver).unwrap();
    assert_eq!(got, want, "decoding across the counter wrap");
}

#[test]
fn a_stuck_wait_ends_in_an_error_naming_the_instructions() {
    if !common::gpu_ok("gpu_persistent") {
        return;
    }
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
fn a_faulted_model_falls_back_to_the_graph_saying_why() {
    if !common::gpu_ok("gpu_persistent") {
        return;
    }
    let m = synthetic("tiny");
    let mut g = lower(&m, LowerOptions::default()).unwrap();
    graphrun::fault::inject(&mut g, &["blk.1.ffn_gate:scale=1.001".parse().unwrap()]).unwrap();
    let mut gpu = engine(&m, &g, 256);
    let note = gpu.set_decode_kernel(DecodeKernel::Persistent).unwrap();
    let note = note.expect("a fallback note");
    assert!(note.contains("blk.1.ffn_gate"), "{note}");
    assert_eq!(gpu.decode_kernel(), DecodeKernel::Graph);
    run(&mut gpu, &[1, 2, 3], 4, &mut NoObserver).unwrap();
}

#[test]
fn real_05b_greedy_tokens_match_the_interpreter() {
    if !common::gpu_ok("gpu_persistent") {
        return;
    }
    let Some(path) = common::model_05b_for_gpu() else {
        return;
    };
    let m = ModelFile::open(&path).unwrap();
    let mut report = report_file();
    let refs = common::reference_json("generations.json");
    let mut failures = Vec::new();
    for (i, p) in refs["prompts"].as_array().unwrap().iter().enumerate() {
        let prompt: Vec<u32> = p["prompt_token_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect();
        if i == 0 {
            // Whole traces, both semantics, on the first prompt.
            for act in [ActSemantics::Q8, ActSemantics::F32] {
                let label = format!("real-0.5b p{} {}", p["id"], act.name());
                failures.extend(check_config(
                    &m,
                    &label,
                    act,
                    &prompt,
                    16,
                    "e2e_nmse_real",
                    &mut report,
                ));
            }
            continue;
        }
        let g = lower(&m, LowerOptions::default()).unwrap();
        let mut cpu = Interpreter::new(&m, g.clone(), 256).unwrap();
        let want = run(&mut cpu, &prompt, 16, &mut NoObserver).unwrap();
        let mut gpu = engine(&m, &g, 256);
        persistent(&mut gpu, PersistentOptions::default());
        let got = run(&mut gpu, &prompt, 16, &mut NoObserver).unwrap();
        eprintln!(
            "real-0.5b p{}: interp {want:?}\n              persistent {got:?}",
            p["id"]
        );
        if got != want {
            failures.push(format!(
                "prompt {}: persistent greedy tokens differ from the interpreter",
                p["id"]
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

//! End to end on the GPU: whole-model traces of the CUDA executor (fused and one kernel per
//! node) against the interpreter's, position by position (the GPU runs a long prefill in
//! chunks of 2,048 rows), each record within its band of contracts/trace_same_semantics.toml
//! (per op and fused group class; real vs synthetic weights), after prompts of every length
//! (1, 7, 129 — the prefill GEMM's second token tile —, 2,000, 2,049 — chunking —) followed
//! by greedy decode steps; greedy tokens identical to the interpreter's up to a near-tie
//! (contracts/reference.toml's `near_tie_margin`). GPU-only: `#[ignore]`d, run with
//! `--ignored` on the device. GRAPHRUN_E2E_REPORT=FILE writes every comparison as JSON lines.

mod common;

use graphrun::contracts::{self, Contract};
use graphrun::diff;
use graphrun::exec::cuda::{CudaEngine, CudaOptions};
use graphrun::exec::interp::Interpreter;
use graphrun::exec::{NoObserver, Observer};
use graphrun::graph::{ActSemantics, KvType, LowerOptions, Node, NodeId, lower};
use graphrun::metrics::nmse;
use graphrun::model::ModelFile;
use graphrun::model::synth::{SynthSpec, build};
use std::collections::HashMap;
use std::io::Write;

/// One recorded output: which node, its op, its fused group's kernels, first position, rows.
struct Rec {
    node: String,
    op: String,
    group: Option<String>,
    pos: usize,
    width: usize,
    data: Vec<f32>,
}

/// Keeps every traced output in memory: the records as they come, and each position's row
/// by (node, position), so chunked and unchunked prefills compare position by position.
#[derive(Default)]
struct Collect {
    recs: Vec<Rec>,
    rows: HashMap<(String, usize), Vec<f32>>,
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
        self.recs.push(Rec {
            node: node.name.clone(),
            op: node.op.name().to_string(),
            group: self.group.take(),
            pos,
            width: node.width,
            data: data.to_vec(),
        });
        Ok(())
    }
}

struct Compare {
    report: Option<std::fs::File>,
    same: Contract,
    near_tie: f32,
}

impl Compare {
    fn new() -> Compare {
        Compare {
            report: std::env::var_os("GRAPHRUN_E2E_REPORT")
                .map(|p| std::fs::File::create(p).unwrap()),
            same: contracts::load("trace_same_semantics").unwrap(),
            near_tie: common::near_tie(),
        }
    }

    /// Every GPU record against the interpreter's rows at the same positions, judged by
    /// its band, up to `cutoff` (the first position whose fed token differs: a greedy flip
    /// at a near-tie makes later rows differ in input, not arithmetic); returns (records
    /// compared, worst NMSE relative to its band as text, failures).
    #[allow(clippy::too_many_arguments)]
    fn traces(
        &mut self,
        label: &str,
        (act, kv): (ActSemantics, KvType),
        real: bool,
        output: &str,
        gpu: &Collect,
        cpu: &Collect,
        cutoff: usize,
    ) -> (usize, String, Vec<String>) {
        let (mut worst, mut at, mut fails) = (-1.0f64, String::new(), Vec::new());
        let mut n = 0;
        for r in &gpu.recs {
            let rows = r.data.len() / r.width;
            if r.pos + rows > cutoff {
                continue;
            }
            n += 1;
            let want: Vec<f32> = (r.pos..r.pos + rows)
                .flat_map(|p| {
                    cpu.rows
                        .get(&(r.node.clone(), p))
                        .unwrap_or_else(|| {
                            panic!(
                                "{label}: GPU traced {}@{p}, the interpreter did not",
                                r.node
                            )
                        })
                        .clone()
                })
                .collect();
            let e = nmse(&r.data, &want);
            let classes = diff::classes(&r.node, &r.op, r.group.as_deref(), Some(output));
            let band = diff::band(&self.same, [(act, kv), (act, kv)], &classes, real).unwrap();
            if let Some(f) = self.report.as_mut() {
                let line = serde_json::json!({"run": label, "node": r.node, "op": r.op,
                    "class": classes[0], "pos": r.pos, "rows": rows, "nmse": e, "band": band});
                writeln!(f, "{line}").unwrap();
            }
            let rel = if band > 0.0 { e / band } else { e };
            if rel > worst || e.is_nan() {
                worst = rel;
                at = format!("{}@{} NMSE {e:.3e} (band {band:.0e})", r.node, r.pos);
            }
            if e.is_nan() || e > band {
                fails.push(format!(
                    "{label}: {}@{} NMSE {e:.3e} > band {band:.0e}",
                    r.node, r.pos
                ));
            }
        }
        (n, at, fails)
    }
}

/// Every semantics, fused and unfused, with KV cache type `kv`, after `prompt` and
/// `steps` greedy decode steps.
fn check_model(
    m: &ModelFile,
    label: &str,
    kv: KvType,
    prompt: &[u32],
    steps: usize,
    cmp: &mut Compare,
) -> Vec<String> {
    let real = !m.is_synthetic();
    let n_ctx = (prompt.len() + steps + 16).next_multiple_of(64);
    let mut failures = Vec::new();
    for act in [ActSemantics::Q8, ActSemantics::F32] {
        let g = lower(m, LowerOptions { act, kv }).unwrap();
        let output = g.node(g.output()).name.clone();
        let mut cpu_trace = Collect::default();
        let mut cpu = Interpreter::new(m, g.clone(), n_ctx).unwrap();
        let (cpu_toks, margins) =
            common::greedy(&mut cpu, prompt, steps, &mut cpu_trace, true).unwrap();
        for fuse in [true, false] {
            let opts = CudaOptions {
                device: 0,
                n_ctx,
                fuse,
                max_logit_rows: 1,
                quiet: true,
            };
            let mut gpu = CudaEngine::new(m, g.clone(), &opts).unwrap();
            let mut gpu_trace = Collect::default();
            let (traced, _) =
                common::greedy(&mut gpu, prompt, steps, &mut gpu_trace, false).unwrap();
            let (replayed, _) =
                common::greedy(&mut gpu, prompt, steps, &mut NoObserver, false).unwrap();
            let name = format!(
                "{label} T={} kv {} {} {}",
                prompt.len(),
                kv.name(),
                act.name(),
                if fuse { "fused" } else { "unfused" }
            );
            // Decode step k feeds the token chosen at step k - 1 at position T + k - 1.
            let cutoff = traced
                .iter()
                .zip(&cpu_toks)
                .position(|(g, c)| g != c)
                .map_or(usize::MAX, |k| prompt.len() + k);
            let (n, worst, fails) = cmp.traces(
                &name,
                (act, kv),
                real,
                &output,
                &gpu_trace,
                &cpu_trace,
                cutoff,
            );
            eprintln!(
                "{name}: {n} records, worst relative to band: {worst}; tokens interp {cpu_toks:?} gpu {traced:?}"
            );
            failures.extend(fails.into_iter().take(5));
            if traced != replayed {
                failures.push(format!(
                    "{name}: the captured decode graph decodes {replayed:?}, the traced steps {traced:?}"
                ));
            }
            if let Some(f) = common::tokens_agree(&traced, &cpu_toks, &margins, cmp.near_tie) {
                failures.push(format!("{name}: {f}"));
            }
        }
    }
    failures
}

/// Prompt lengths of the long-prompt checks (`GRAPHRUN_E2E_LENGTHS`, comma separated).
fn lengths(default: &str) -> Vec<usize> {
    std::env::var("GRAPHRUN_E2E_LENGTHS")
        .unwrap_or_else(|_| default.into())
        .split(',')
        .map(|x| x.trim().parse().expect("GRAPHRUN_E2E_LENGTHS: numbers"))
        .collect()
}

#[test]
#[ignore = "needs a GPU: run with --ignored on the device (scripts/gpu-check e2e)"]
fn synthetic_models_trace_within_band_and_decode_identically() {
    common::require_gpu("gpu_e2e");
    let mut cmp = Compare::new();
    let presets =
        std::env::var("GRAPHRUN_E2E_PRESETS").unwrap_or_else(|_| "tiny,tiny-llama,0.5b".into());
    // Every configuration is run and reported before the verdict, so one failure does not
    // hide the others.
    let mut failures = Vec::new();
    for preset in presets.split(',') {
        let spec = SynthSpec::preset(preset).unwrap();
        let m = ModelFile::from_bytes(
            build(&spec, 11, None).to_bytes(),
            &format!("synthetic-{preset}.gguf"),
        )
        .unwrap();
        // The interpreter's time grows with width and prompt: every length on the small
        // presets, up to 513 on the 1.5B shapes, 9 tokens on the 7B shapes.
        let lens = match preset {
            "7b" => vec![9],
            "1.5b" => lengths("1,7,129,513"),
            _ => lengths("1,7,129,2000,2049"),
        };
        for t in lens {
            let prompt: Vec<u32> = (0..t as u32)
                .map(|i| (31 + 97 * i) % spec.vocab as u32)
                .collect();
            // The default f16 cache at every length; the exact f32 cache once per preset.
            failures.extend(check_model(&m, preset, KvType::F16, &prompt, 4, &mut cmp));
            if t == 7 || preset == "7b" {
                failures.extend(check_model(&m, preset, KvType::F32, &prompt, 4, &mut cmp));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
#[ignore = "needs a GPU and the real 0.5B: run with --ignored on the device (scripts/gpu-check real)"]
fn real_05b_greedy_tokens_match_the_interpreter() {
    common::require_gpu("gpu_e2e");
    let Some(path) = common::model_05b_for_gpu() else {
        return;
    };
    let m = ModelFile::open(&path).unwrap();
    let mut cmp = Compare::new();
    let g = common::reference_json("generations.json");
    let mut failures = Vec::new();
    for (i, p) in g["prompts"].as_array().unwrap().iter().enumerate() {
        let prompt = common::ids(&p["prompt_token_ids"]);
        if i == 0 {
            // Full trace comparison (fused and unfused, q8 and f32) on the first prompt.
            failures.extend(check_model(
                &m,
                &format!("real-0.5b p{}", p["id"]),
                KvType::F16,
                &prompt,
                16,
                &mut cmp,
            ));
            continue;
        }
        let gq = lower(&m, LowerOptions::default()).unwrap();
        let mut cpu = Interpreter::new(&m, gq.clone(), 256).unwrap();
        let (want, margins) = common::greedy(&mut cpu, &prompt, 16, &mut NoObserver, true).unwrap();
        let opts = CudaOptions {
            device: 0,
            n_ctx: 256,
            fuse: true,
            max_logit_rows: 1,
            quiet: true,
        };
        let mut gpu = CudaEngine::new(&m, gq, &opts).unwrap();
        let (got, _) = common::greedy(&mut gpu, &prompt, 16, &mut NoObserver, false).unwrap();
        eprintln!(
            "real-0.5b p{}: interp {want:?}\n              gpu    {got:?}",
            p["id"]
        );
        if let Some(f) = common::tokens_agree(&got, &want, &margins, cmp.near_tie) {
            failures.push(format!("real-0.5b p{}: {f}", p["id"]));
        }
    }
    // Long prompts of real text (the reference prompts' tokens, cycled): the prefill GEMM's
    // second token tile (129), 2,000 tokens and chunking (2,049: chunks of 2,048 and 1).
    let text: Vec<u32> = g["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| common::ids(&p["prompt_token_ids"]))
        .collect();
    for t in lengths("129,2000,2049") {
        let prompt: Vec<u32> = text.iter().copied().cycle().take(t).collect();
        failures.extend(check_model(
            &m,
            "real-0.5b",
            KvType::F16,
            &prompt,
            4,
            &mut cmp,
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

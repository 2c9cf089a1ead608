//! End to end on the GPU: whole-model traces of the CUDA executor (fused and one kernel per
//! node) against the interpreter's, node-aligned, within the e2e bands of
//! contracts/gpu_parity.yaml; greedy decoding identical. Skipped, with a message, without a
//! GPU. GRAPHRUN_E2E_REPORT=FILE writes the per-node comparison as JSON lines.

mod common;

use graphrun::contracts;
use graphrun::exec::cuda::{CudaEngine, CudaOptions};
use graphrun::exec::interp::Interpreter;
use graphrun::exec::{Engine, NoObserver, Observer};
use graphrun::graph::{ActSemantics, LowerOptions, Node, NodeId, lower};
use graphrun::model::ModelFile;
use graphrun::model::synth::{SynthSpec, build};
use std::collections::HashMap;
use std::io::Write;

/// Keeps every traced tensor in memory, keyed by (node, first position).
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

fn nmse(a: &[f32], b: &[f32]) -> f64 {
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

fn run(e: &mut dyn Engine, prompt: &[u32], steps: usize, obs: &mut dyn Observer) -> Vec<u32> {
    e.reset();
    let mut toks = vec![e.step_argmax(prompt, obs).unwrap()];
    for _ in 1..steps {
        let t = *toks.last().unwrap();
        toks.push(e.step_argmax(&[t], obs).unwrap());
    }
    toks
}

struct Compare {
    report: Option<std::fs::File>,
    worst: Vec<(f64, String)>,
}

impl Compare {
    /// Per-node NMSE of a GPU trace against the interpreter's; returns the worst.
    fn traces(&mut self, label: &str, gpu: &Collect, cpu: &Collect) -> (f64, String, usize) {
        let mut worst = (0.0f64, String::new());
        let mut n = 0;
        let mut keys: Vec<_> = gpu.0.keys().collect();
        keys.sort();
        for k in keys {
            let want = cpu
                .0
                .get(k)
                .unwrap_or_else(|| panic!("{label}: GPU traced {k:?}, the interpreter did not"));
            let e = nmse(&gpu.0[k], want);
            n += 1;
            if let Some(f) = self.report.as_mut() {
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
        self.worst.push((worst.0, format!("{label}: {}", worst.1)));
        (worst.0, worst.1, n)
    }
}

fn check_model(
    m: &ModelFile,
    label: &str,
    prompt: &[u32],
    steps: usize,
    cmp: &mut Compare,
    must_match_tokens: bool,
    band_key: &str,
) {
    let c = contracts::load("gpu_parity").unwrap();
    let e2e = c.table(band_key).unwrap().clone();
    // Every configuration is run and reported before the verdict, so one failure does not
    // hide the others.
    let mut failures = Vec::new();
    for act in [ActSemantics::Q8, ActSemantics::F32] {
        let g = lower(
            m,
            LowerOptions {
                act,
                ..Default::default()
            },
        )
        .unwrap();
        let mut cpu_trace = Collect::default();
        let mut cpu = Interpreter::new(m, g.clone(), 256).unwrap();
        let cpu_toks = run(&mut cpu, prompt, steps, &mut cpu_trace);
        for fuse in [true, false] {
            let opts = CudaOptions {
                device: 0,
                n_ctx: 256,
                fuse,
                max_logit_rows: 1,
                quiet: true,
            };
            let mut gpu = CudaEngine::new(m, g.clone(), &opts).unwrap();
            let mut gpu_trace = Collect::default();
            let traced_toks = run(&mut gpu, prompt, steps, &mut gpu_trace);
            let graph_toks = run(&mut gpu, prompt, steps, &mut NoObserver);
            let name = format!(
                "{label} {} {}",
                act.name(),
                if fuse { "fused" } else { "unfused" }
            );
            let (worst, at, n) = cmp.traces(&name, &gpu_trace, &cpu_trace);
            let band = e2e[act.name()].as_f64().unwrap();
            eprintln!(
                "{name}: {n} traced tensors, worst NMSE {worst:.3e} at {at} (band {band:.0e}); tokens interp {:?} gpu {:?} graph {:?}",
                &cpu_toks, &traced_toks, &graph_toks
            );
            if worst > band {
                failures.push(format!(
                    "{name}: NMSE {worst:.3e} at {at} exceeds {band:.0e}"
                ));
            }
            if traced_toks != graph_toks {
                failures.push(format!(
                    "{name}: the captured decode graph decodes differently from the traced step-by-step run"
                ));
            }
            if must_match_tokens && traced_toks != cpu_toks {
                failures.push(format!("{name}: greedy tokens differ from the interpreter"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn compare() -> Compare {
    Compare {
        report: std::env::var_os("GRAPHRUN_E2E_REPORT").map(|p| std::fs::File::create(p).unwrap()),
        worst: Vec::new(),
    }
}

#[test]
fn synthetic_models_trace_within_band_and_decode_identically() {
    if !common::gpu_ok("gpu_e2e") {
        return;
    }
    let mut cmp = compare();
    let presets =
        std::env::var("GRAPHRUN_E2E_PRESETS").unwrap_or_else(|_| "tiny,tiny-llama,0.5b".into());
    for preset in presets.split(',') {
        let spec = SynthSpec::preset(preset).unwrap();
        let m = ModelFile::from_bytes(
            build(&spec, 11, None).to_bytes(),
            &format!("synthetic-{preset}.gguf"),
        )
        .unwrap();
        let prompt: Vec<u32> = (0..9).map(|i| (31 + 97 * i) % spec.vocab as u32).collect();
        check_model(&m, preset, &prompt, 6, &mut cmp, false, "e2e_nmse");
    }
}

#[test]
fn real_05b_greedy_tokens_match_the_interpreter() {
    if !common::gpu_ok("gpu_e2e") {
        return;
    }
    let Some(path) = common::model_05b_for_gpu() else {
        return;
    };
    let m = ModelFile::open(&path).unwrap();
    let mut cmp = compare();
    let g = common::reference_json("generations.json");
    for (i, p) in g["prompts"].as_array().unwrap().iter().enumerate() {
        let prompt: Vec<u32> = p["prompt_token_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect();
        if i == 0 {
            // Full trace comparison (fused and unfused, q8 and f32) on the first prompt.
            check_model(
                &m,
                &format!("real-0.5b p{}", p["id"]),
                &prompt,
                16,
                &mut cmp,
                true,
                "e2e_nmse_real",
            );
            continue;
        }
        let gq = lower(
            &m,
            LowerOptions {
                act: ActSemantics::Q8,
                ..Default::default()
            },
        )
        .unwrap();
        let mut cpu = Interpreter::new(&m, gq.clone(), 256).unwrap();
        let want = run(&mut cpu, &prompt, 16, &mut NoObserver);
        let opts = CudaOptions {
            device: 0,
            n_ctx: 256,
            fuse: true,
            max_logit_rows: 1,
            quiet: true,
        };
        let mut gpu = CudaEngine::new(&m, gq, &opts).unwrap();
        let got = run(&mut gpu, &prompt, 16, &mut NoObserver);
        eprintln!(
            "real-0.5b p{}: interp {:?}\n              gpu    {:?}",
            p["id"], want, got
        );
        assert_eq!(
            got, want,
            "prompt {}: GPU greedy tokens differ from the interpreter",
            p["id"]
        );
    }
}

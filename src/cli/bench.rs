//! `graphrun bench`: prefill and decode speed like llama-bench, plus decode as a share of
//! the bandwidth floor (weight bytes read per token / measured read bandwidth).

use super::common::{ExecArgs, Progress, SamplingArgs, at_least_1, engine_for, lowered, open};
use graphrun::exec::NoObserver;
use graphrun::exec::cuda::{CudaEngine, CudaOptions};
use graphrun::exec::gpu_probe;
use graphrun::generate::{Sampler, decode_tokens, next_token};
use graphrun::graph::{LowerOptions, lower};
use graphrun::model::ModelFile;
use graphrun::{Error, Result};
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
#[command(
    after_help = "Like llama-bench: several sizes in one run. `-p 512,2048,8192` times a \
prefill of each size from an empty cache (its time is the time to first token), after one \
untimed prefill of that size as llama-bench's warm-up does (`--no-warmup` skips it); `-d 0,4096` \
times `-n` decode steps after a prompt of each depth. Decode is also given as a share of the \
bandwidth floor (weight bytes per token / the read bandwidth measured in the same run). \
Decode is greedy unless --temp > 0: then each token is drawn as `graphrun run` draws it (on \
the GPU inside the captured step for --top-k 2 to 64; GRAPHRUN_DEVICE_SAMPLING=0 samples the \
copied logits on the host instead)."
)]
pub struct Args {
    /// GGUF or APR model (real or from `graphrun synth`).
    model: Option<PathBuf>,
    /// Prompt sizes of the prefill tests, comma separated.
    #[arg(short = 'p', long, default_value = "512", value_delimiter = ',', value_parser = at_least_1)]
    prompt: Vec<usize>,
    /// Generated tokens of the decode tests.
    #[arg(short = 'n', long = "gen", default_value_t = 128, value_parser = at_least_1)]
    n_gen: usize,
    /// Depths (tokens already in the KV cache) of the decode tests, comma separated.
    #[arg(short = 'd', long, default_value = "0", value_delimiter = ',')]
    depth: Vec<usize>,
    /// Repetitions.
    #[arg(short = 'r', long, default_value_t = 3, value_parser = at_least_1)]
    reps: usize,
    /// Benchmark on the GPU only: fail when there is none instead of benchmarking the CPU
    /// interpreter.
    #[arg(long, conflicts_with = "interp")]
    gpu: bool,
    /// Skip the untimed prefill of each size before its repetitions (llama-bench's warm-up
    /// run; without it the first repetition also times first-use costs of that size).
    #[arg(long)]
    no_warmup: bool,
    /// JSON output.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    sampling: SamplingArgs,
    #[command(flatten)]
    exec: ExecArgs,
}

/// One measured test: `pp512`, or `tg128` at a depth.
struct Test {
    name: String,
    depth: usize,
    runs: Vec<f64>,
    /// Prefill tests: milliseconds to the first token, per run.
    ttft_ms: Vec<f64>,
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let m = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len().max(2) - 1) as f64;
    (m, var.sqrt())
}

/// Weight bytes one decode step reads: every weight once, but one row of the embedding.
pub fn bytes_per_token(m: &ModelFile) -> Result<u64> {
    let g = lower(m, LowerOptions::default())?;
    Ok(
        graphrun::sched::schedule(&g, graphrun::sched::Phase::Decode, true)?
            .groups
            .iter()
            .map(|gr| gr.weight_bytes)
            .sum(),
    )
}

pub fn run(a: Args) -> Result<i32> {
    let cfg = a.sampling.config();
    Sampler::new(cfg.clone())?; // flags checked before the model is loaded
    let longest = a
        .prompt
        .iter()
        .copied()
        .chain(a.depth.iter().map(|d| d.saturating_add(a.n_gen)))
        .max()
        .unwrap_or(1);
    let need = longest
        .checked_add(8)
        .ok_or_else(|| Error::invalid("-p/-d + -n overflow"))?;
    let m = open(a.model)?;
    let mut exec = a.exec.clone();
    exec.ctx = exec.ctx.max(need);
    if need > m.hparams.n_ctx_train {
        return Err(Error::invalid(format!(
            "-p/-d {longest} tokens: more positions than the model's training context ({})",
            m.hparams.n_ctx_train
        )));
    }
    let gpu = !exec.interp && gpu_probe::probe(exec.device).is_ok();
    let bw = if gpu {
        let g = lower(
            &m,
            LowerOptions {
                act: exec.act,
                kv: exec.kv,
            },
        )?;
        let opts = CudaOptions {
            device: exec.device,
            n_ctx: 64,
            fuse: true,
            max_logit_rows: 1,
            quiet: true,
        };
        let mut e = CudaEngine::new(&m, g, &opts)?;
        Some(e.read_bandwidth(2 << 30)?)
    } else {
        None
    };
    let mut eng = engine_for(&m, &exec, lowered(&m, &exec)?, 1, a.gpu)?;
    eprintln!(
        "bench: {} on {}: prefill {:?} tokens, decode {} tokens ({}) at depths {:?}, {} repetitions, {}{}",
        m.path,
        eng.name(),
        a.prompt,
        a.n_gen,
        if cfg.is_greedy() {
            "greedy".to_string()
        } else {
            format!(
                "sampled: --temp {} --top-k {} --top-p {} --seed {}",
                cfg.temperature, cfg.top_k, cfg.top_p, cfg.seed
            )
        },
        a.depth,
        a.reps,
        if a.no_warmup {
            "no warm-up"
        } else {
            "a warm-up prefill per size"
        },
        if gpu {
            ""
        } else {
            " (CPU interpreter: expect minutes; progress below)"
        }
    );
    let vocab = m.hparams.vocab_size.max(1) as u32;
    let tokens: Vec<u32> = (0..longest as u32)
        .map(|i| (1000 + (i * 7919) % 20000) % vocab)
        .collect();
    let mut progress = Progress::new();
    // Warm-up: compiles/loads kernels and captures the decode graph.
    progress.update("bench: warm-up");
    eng.reset();
    eng.step_argmax(&tokens[..longest.min(8)], &mut NoObserver)?;
    eng.step_argmax(&[1], &mut NoObserver)?;
    if !cfg.is_greedy() {
        next_token(
            &mut *eng,
            &[1],
            &mut Sampler::new(cfg.clone())?,
            &mut NoObserver,
            1,
        )?;
    }
    let mut tests: Vec<Test> = Vec::new();
    for &p in &a.prompt {
        let mut t = Test {
            name: format!("pp{p}"),
            depth: 0,
            runs: Vec::new(),
            ttft_ms: Vec::new(),
        };
        if !a.no_warmup {
            progress.update(&format!("bench {} warm-up", t.name));
            eng.reset();
            eng.step_argmax(&tokens[..p], &mut NoObserver)?;
        }
        for r in 0..a.reps {
            progress.update(&format!("bench {} rep {}/{}", t.name, r + 1, a.reps));
            eng.reset();
            let t0 = Instant::now();
            eng.step_argmax(&tokens[..p], &mut NoObserver)?;
            let secs = t0.elapsed().as_secs_f64();
            t.runs.push(p as f64 / secs);
            t.ttft_ms.push(secs * 1e3);
        }
        progress.done(&format!(
            "bench {}: {:.1} tok/s, first token after {:.1} ms",
            t.name,
            mean_std(&t.runs).0,
            mean_std(&t.ttft_ms).0
        ));
        tests.push(t);
    }
    for &d in &a.depth {
        let mut t = Test {
            name: format!("tg{}", a.n_gen),
            depth: d,
            runs: Vec::new(),
            ttft_ms: Vec::new(),
        };
        for r in 0..a.reps {
            eng.reset();
            progress.update(&format!(
                "bench {} @ d{d} rep {}/{}: filling the cache",
                t.name,
                r + 1,
                a.reps
            ));
            let tok = if d > 0 {
                eng.step_argmax(&tokens[..d], &mut NoObserver)?
            } else {
                1
            };
            let mut sampler = Sampler::new(cfg.clone())?;
            let mut i = 0;
            let mut count = |_: u32| {
                i += 1;
                if !gpu {
                    progress.update(&format!(
                        "bench {} @ d{d} rep {}/{}: token {i}/{}",
                        t.name,
                        r + 1,
                        a.reps,
                        a.n_gen
                    ));
                }
                true
            };
            let t1 = Instant::now();
            let ran = decode_tokens(
                &mut *eng,
                tok,
                a.n_gen,
                &mut sampler,
                &mut NoObserver,
                1,
                &mut count,
            )?;
            let secs = t1.elapsed().as_secs_f64();
            debug_assert_eq!(ran, a.n_gen);
            t.runs.push(ran as f64 / secs);
        }
        progress.done(&format!(
            "bench {} @ d{d}: {:.1} tok/s",
            t.name,
            mean_std(&t.runs).0
        ));
        tests.push(t);
    }
    let bpt = bytes_per_token(&m)?;
    let floor = bw.map(|b| b / bpt as f64);
    let first = |pp: bool| tests.iter().find(|t| t.name.starts_with("pp") == pp);
    if a.json {
        let list: Vec<_> = tests
            .iter()
            .map(|t| {
                let (mean, std) = mean_std(&t.runs);
                serde_json::json!({
                    "test": t.name, "depth": t.depth, "tok_s": mean, "std": std, "runs": t.runs,
                    "ttft_ms": (!t.ttft_ms.is_empty()).then(|| mean_std(&t.ttft_ms).0),
                    "pct_of_floor": (!t.name.starts_with("pp")).then(|| floor.map(|f| 100.0 * mean / f)).flatten(),
                })
            })
            .collect();
        let (pp, tg) = (first(true), first(false));
        println!(
            "{}",
            serde_json::json!({
                "model": m.path, "executor": eng.name(), "decode_kernel": eng.decode_kernel(), "act": exec.act.name(), "kv": exec.kv.name(), "fused": !exec.no_fuse,
                "gen": a.n_gen, "reps": a.reps, "warmup": !a.no_warmup, "tests": list,
                "sampling": (!cfg.is_greedy()).then(|| serde_json::json!({"temp": cfg.temperature, "top_k": cfg.top_k, "top_p": cfg.top_p, "seed": cfg.seed})),
                "prompt": pp.map(|t| t.name[2..].parse::<usize>().unwrap_or(0)),
                "pp_tok_s": pp.map(|t| mean_std(&t.runs).0), "pp_runs": pp.map(|t| &t.runs),
                "tg_tok_s": tg.map(|t| mean_std(&t.runs).0), "tg_runs": tg.map(|t| &t.runs),
                "weight_bytes_per_token": bpt, "read_bandwidth_bytes_s": bw,
                "floor_tok_s": floor,
                "tg_pct_of_floor": tg.and_then(|t| floor.map(|f| 100.0 * mean_std(&t.runs).0 / f)),
            })
        );
    } else {
        let executor = match eng.decode_kernel() {
            Some(k) => format!("{} ({k})", eng.name()),
            None => eng.name().to_string(),
        };
        println!("| model | executor | test | t/s | first token |");
        println!("|---|---|---|---:|---:|");
        for t in &tests {
            let (mean, std) = mean_std(&t.runs);
            let name = if t.depth > 0 {
                format!("{} @ d{}", t.name, t.depth)
            } else {
                t.name.clone()
            };
            let ttft = if t.ttft_ms.is_empty() {
                String::new()
            } else {
                format!("{:.1} ms", mean_std(&t.ttft_ms).0)
            };
            println!(
                "| {} | {executor} | {name} | {mean:.1} ± {std:.1} | {ttft} |",
                m.path
            );
        }
        if let (Some(b), Some(f)) = (bw, floor) {
            println!(
                "decode reads {:.1} MB of weights per token (plus the KV cache at depth); measured read bandwidth {:.0} GB/s; floor {f:.0} tok/s",
                bpt as f64 / 1e6,
                b / 1e9
            );
        }
    }
    Ok(0)
}

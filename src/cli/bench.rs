//! `graphrun bench`: prefill and decode speed like llama-bench, plus decode as a share of
//! the bandwidth floor (weight bytes read per token / measured read bandwidth).

use super::common::{ExecArgs, Progress, at_least_1, engine_for, lowered, open};
use graphrun::exec::NoObserver;
use graphrun::exec::cuda::{CudaEngine, CudaOptions};
use graphrun::exec::gpu_probe;
use graphrun::graph::{LowerOptions, lower};
use graphrun::model::ModelFile;
use graphrun::{Error, Result};
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// GGUF or APR model (real or from `graphrun synth`).
    model: Option<PathBuf>,
    /// Prompt tokens for the prefill test.
    #[arg(short = 'p', long, default_value_t = 512, value_parser = at_least_1)]
    prompt: usize,
    /// Generated tokens for the decode test.
    #[arg(short = 'n', long = "gen", default_value_t = 128, value_parser = at_least_1)]
    n_gen: usize,
    /// Repetitions.
    #[arg(short = 'r', long, default_value_t = 3, value_parser = at_least_1)]
    reps: usize,
    /// Benchmark on the GPU only: fail when there is none instead of benchmarking the CPU
    /// interpreter.
    #[arg(long, conflicts_with = "interp")]
    gpu: bool,
    /// JSON output.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    exec: ExecArgs,
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
    let need = a
        .prompt
        .checked_add(a.n_gen)
        .and_then(|n| n.checked_add(8))
        .ok_or_else(|| Error::invalid("-p + -n overflow"))?;
    let m = open(a.model)?;
    let mut exec = a.exec.clone();
    exec.ctx = exec.ctx.max(need);
    if need > m.hparams.n_ctx_train {
        return Err(Error::invalid(format!(
            "-p {} + -n {}: more positions than the model's training context ({})",
            a.prompt, a.n_gen, m.hparams.n_ctx_train
        )));
    }
    let gpu = !exec.interp && gpu_probe::probe(exec.device).is_ok();
    let bw = if gpu {
        let g = lower(&m, LowerOptions { act: exec.act })?;
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
        "bench: {} on {}: prefill {} tokens, decode {} tokens, {} repetitions{}",
        m.path,
        eng.name(),
        a.prompt,
        a.n_gen,
        a.reps,
        if gpu {
            ""
        } else {
            " (CPU interpreter: expect minutes; progress below)"
        }
    );
    let prompt: Vec<u32> = (0..a.prompt as u32)
        .map(|i| 1000 + (i * 7919) % 20000)
        .map(|t| t % m.hparams.vocab_size.max(1) as u32)
        .collect();
    let (mut pp, mut tg) = (Vec::new(), Vec::new());
    let mut progress = Progress::new();
    // Warm-up: compiles/loads kernels and captures the decode graph.
    progress.update("bench: warm-up");
    eng.reset();
    eng.step_argmax(&prompt[..a.prompt.min(8)], &mut NoObserver)?;
    eng.step_argmax(&[1], &mut NoObserver)?;
    for r in 0..a.reps {
        eng.reset();
        progress.update(&format!(
            "bench rep {}/{}: prefill of {} tokens",
            r + 1,
            a.reps,
            a.prompt
        ));
        let t0 = Instant::now();
        let mut tok = eng.step_argmax(&prompt, &mut NoObserver)?;
        pp.push(a.prompt as f64 / t0.elapsed().as_secs_f64());
        let t1 = Instant::now();
        for i in 0..a.n_gen {
            if !gpu {
                progress.update(&format!(
                    "bench rep {}/{}: pp{} {:.1} tok/s; decode token {}/{}",
                    r + 1,
                    a.reps,
                    a.prompt,
                    pp[r],
                    i + 1,
                    a.n_gen
                ));
            }
            tok = eng.step_argmax(&[tok], &mut NoObserver)?;
        }
        tg.push(a.n_gen as f64 / t1.elapsed().as_secs_f64());
        progress.done(&format!(
            "bench rep {}/{}: pp{} {:.1} tok/s, tg{} {:.1} tok/s",
            r + 1,
            a.reps,
            a.prompt,
            pp[r],
            a.n_gen,
            tg[r]
        ));
    }
    let (ppm, pps) = mean_std(&pp);
    let (tgm, tgs) = mean_std(&tg);
    let bpt = bytes_per_token(&m)?;
    let floor = bw.map(|b| b / bpt as f64);
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "model": m.path, "executor": eng.name(), "decode_kernel": eng.decode_kernel(), "act": exec.act.name(), "fused": !exec.no_fuse,
                "prompt": a.prompt, "gen": a.n_gen, "reps": a.reps,
                "pp_tok_s": ppm, "pp_std": pps, "tg_tok_s": tgm, "tg_std": tgs,
                "pp_runs": pp, "tg_runs": tg,
                "weight_bytes_per_token": bpt, "read_bandwidth_bytes_s": bw,
                "floor_tok_s": floor, "tg_pct_of_floor": floor.map(|f| 100.0 * tgm / f),
            })
        );
    } else {
        let executor = match eng.decode_kernel() {
            Some(k) => format!("{} ({k})", eng.name()),
            None => eng.name().to_string(),
        };
        println!("| model | executor | test | t/s |");
        println!("|---|---|---|---:|");
        println!(
            "| {} | {executor} | pp{} | {ppm:.1} ± {pps:.1} |",
            m.path, a.prompt
        );
        println!(
            "| {} | {executor} | tg{} | {tgm:.1} ± {tgs:.1} |",
            m.path, a.n_gen
        );
        if let (Some(b), Some(f)) = (bw, floor) {
            println!(
                "decode reads {:.1} MB of weights per token; measured read bandwidth {:.0} GB/s; floor {f:.0} tok/s; decode at {:.1}% of the floor",
                bpt as f64 / 1e6,
                b / 1e9,
                100.0 * tgm / f
            );
        }
    }
    Ok(0)
}

//! Interpreter speed on the real 0.5B model: prefill of a 128-token prompt and decode of
//! 128 tokens (greedy), median of 3 runs, for q8 and f32 activations, with the thread count
//! from GRAPHRUN_THREADS (default 2, like the llama.cpp numbers in
//! `evidence/interp-speed-vs-llamacpp.md`). About 3.5 minutes on 2 cores; each run prints a
//! progress line on stderr.
//! Run: `cargo bench --bench interp_decode` (prints one JSON line per activation kind;
//! copy them into evidence/).

use graphrun::exec::NoObserver;
use graphrun::exec::interp::Interpreter;
use graphrun::generate::argmax;
use graphrun::graph::{ActSemantics, LowerOptions, lower};
use graphrun::model::{ModelFile, default_model_path};
use std::time::Instant;

fn main() {
    let threads: usize = std::env::var("GRAPHRUN_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .unwrap();
    let path = match default_model_path() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("SKIP: {e}");
            return;
        }
    };
    let m = ModelFile::open(&path).unwrap();
    let (n_prompt, n_gen, reps) = (128usize, 128usize, 3usize);
    eprintln!(
        "interp_decode: {} with {threads} threads: pp{n_prompt} + tg{n_gen}, {reps} runs each for q8 and f32",
        path.display()
    );
    let t_start = Instant::now();
    for act in [ActSemantics::Q8, ActSemantics::F32] {
        let mut pp = Vec::new();
        let mut tg = Vec::new();
        for run in 1..=reps {
            let mut it = Interpreter::new(
                &m,
                lower(
                    &m,
                    LowerOptions {
                        act,
                        ..Default::default()
                    },
                )
                .unwrap(),
                512,
            )
            .unwrap();
            let prompt: Vec<u32> = (0..n_prompt as u32).map(|i| 1000 + 37 * i).collect();
            let t0 = Instant::now();
            let mut logits = it
                .step(&prompt, n_prompt - 1..n_prompt, &mut NoObserver)
                .unwrap();
            pp.push(n_prompt as f64 / t0.elapsed().as_secs_f64());
            let t1 = Instant::now();
            for _ in 0..n_gen {
                let t = argmax(&logits) as u32;
                logits = it.step(&[t], 0..1, &mut NoObserver).unwrap();
            }
            tg.push(n_gen as f64 / t1.elapsed().as_secs_f64());
            eprintln!(
                "interp_decode: {} run {run}/{reps}: pp{n_prompt} {:.1} tok/s, tg{n_gen} {:.1} tok/s ({:.0} s so far)",
                act.name(),
                pp[run - 1],
                tg[run - 1],
                t_start.elapsed().as_secs_f64()
            );
        }
        pp.sort_by(f64::total_cmp);
        tg.sort_by(f64::total_cmp);
        println!(
            "{}",
            serde_json::json!({
                "bench": "interp_decode", "model": path.file_name().unwrap().to_string_lossy(),
                "act": act.name(), "threads": threads,
                "pp128_tok_s": pp[1], "tg128_tok_s": tg[1], "pp_runs": pp, "tg_runs": tg,
            })
        );
    }
}

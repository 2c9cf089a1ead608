//! `graphrun perplexity`: llama.cpp-compatible perplexity of a text file.

use super::common::{ExecArgs, engine, open, tokenizer};
use graphrun::generate::perplexity;
use graphrun::{Error, Result};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// GGUF or APR model.
    model: PathBuf,
    /// Text file to score.
    file: PathBuf,
    /// Tokens per chunk; the second half of each chunk is scored (as llama-perplexity -c).
    #[arg(short = 'c', long = "chunk", default_value_t = 512)]
    chunk: usize,
    /// Score at most this many chunks.
    #[arg(long)]
    chunks: Option<usize>,
    /// Also print the result as JSON on the line before the final estimate.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    exec: ExecArgs,
}

pub fn run(a: Args) -> Result<i32> {
    let m = open(Some(a.model))?;
    let tk = tokenizer(&m)?;
    let bytes = std::fs::read(&a.file).map_err(|e| Error::io(&a.file, e))?;
    let text = String::from_utf8_lossy(&bytes);
    let mut tokens = Vec::new();
    if tk.add_bos
        && let Some(b) = tk.bos
    {
        tokens.push(b);
    }
    tokens.extend(tk.encode(&text, true));
    if let Some(n) = a.chunks {
        tokens.truncate(n * a.chunk);
    }
    let mut exec = a.exec.clone();
    exec.ctx = exec.ctx.max(a.chunk);
    let mut eng = engine(&m, &exec, a.chunk / 2)?;
    eprintln!(
        "perplexity: {} tokens, {} chunks of {} ({} executor, act {})",
        tokens.len(),
        tokens.len() / a.chunk.max(1),
        a.chunk,
        eng.name(),
        exec.act.name()
    );
    let t0 = std::time::Instant::now();
    let r = perplexity(eng.as_mut(), &tokens, a.chunk, &mut |i, n, ppl| {
        eprintln!(
            "[{i}/{n}] cumulative PPL = {ppl:.4} ({:.1} s)",
            t0.elapsed().as_secs_f64()
        );
    })?;
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "ppl": r.ppl, "ppl_err": r.ppl_err, "chunks": r.chunks, "scored": r.scored,
                "chunk": a.chunk, "act": exec.act.name(), "executor": eng.name(), "cumulative": r.cumulative,
                "seconds": t0.elapsed().as_secs_f64(),
            })
        );
    }
    println!("Final estimate: PPL = {:.4} +/- {:.5}", r.ppl, r.ppl_err);
    Ok(0)
}

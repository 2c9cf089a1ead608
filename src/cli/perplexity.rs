//! `graphrun perplexity`: llama.cpp-compatible perplexity of a text file.

use super::common::{ExecArgs, at_least_1, engine, open, tokenizer};
use graphrun::exec::{NoObserver, Observer};
use graphrun::generate::perplexity;
use graphrun::trace::FiniteCheck;
use graphrun::{Error, Result};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// GGUF or APR model.
    model: PathBuf,
    /// Text file to score.
    file: PathBuf,
    /// Tokens per chunk (≥ 4); the second half of each chunk is scored (as llama-perplexity -c).
    #[arg(short = 'c', long = "chunk", default_value_t = 512, value_parser = at_least_4)]
    chunk: usize,
    /// Score at most this many chunks.
    #[arg(long, value_parser = at_least_1)]
    chunks: Option<usize>,
    /// Tokenizer for a model file that carries none: a Hugging Face tokenizer.json, or a
    /// GGUF/APR file of the same model.
    #[arg(long, value_name = "FILE")]
    tokenizer: Option<PathBuf>,
    /// Also print the result as JSON on the line before the final estimate.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    exec: ExecArgs,
}

fn at_least_4(s: &str) -> std::result::Result<usize, String> {
    match at_least_1(s)? {
        n if n < 4 => Err("chunks must hold at least 4 tokens".into()),
        n => Ok(n),
    }
}

pub fn run(a: Args) -> Result<i32> {
    if !a.file.is_file() {
        return Err(Error::invalid(format!(
            "{}: not a readable text file",
            a.file.display()
        )));
    }
    let m = open(Some(a.model))?;
    let tk = tokenizer(&m, a.tokenizer.as_deref())?;
    if a.chunk > m.hparams.n_ctx_train {
        return Err(Error::invalid(format!(
            "-c {}: longer than the model's training context ({} tokens)",
            a.chunk, m.hparams.n_ctx_train
        )));
    }
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
        tokens.truncate(n.saturating_mul(a.chunk));
    }
    if tokens.len() < a.chunk {
        return Err(Error::invalid(format!(
            "{}: {} tokens, fewer than one chunk of -c {} (lower -c)",
            a.file.display(),
            tokens.len(),
            a.chunk
        )));
    }
    let mut exec = a.exec.clone();
    exec.ctx = exec.ctx.max(a.chunk);
    let mut eng = engine(&m, &exec, a.chunk / 2)?;
    eprintln!(
        "perplexity: {} tokens, {} chunks of {} ({} executor, act {})",
        tokens.len(),
        tokens.len() / a.chunk,
        a.chunk,
        eng.name(),
        exec.act.name()
    );
    // On the interpreter every node is checked for NaN/Inf (cheap there); the logits are
    // checked on every executor.
    let mut no_obs = NoObserver;
    let mut check;
    let obs: &mut dyn Observer = if eng.name() == "interp" {
        check = FiniteCheck {
            inner: &mut no_obs,
            hint: format!(
                "record every node up to it with: graphrun trace {} --prompt TEXT --interp --act {} --kv {} -o DIR",
                m.path,
                exec.act.name(),
                exec.kv.name()
            ),
        };
        &mut check
    } else {
        &mut no_obs
    };
    let t0 = std::time::Instant::now();
    let r = perplexity(eng.as_mut(), &tokens, a.chunk, obs, &mut |i, n, ppl| {
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

//! `graphrun run`: generate text, streaming it as it is produced.

use super::common::{ExecArgs, PromptArgs, engine_for, lowered};
use graphrun::Result;
use graphrun::exec::{NoObserver, Observer};
use graphrun::generate::{Sampler, SamplerConfig, generate};
use graphrun::tokenizer::StreamDecoder;
use graphrun::trace::{NodePattern, Tracer};
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    input: PromptArgs,
    /// Maximum number of tokens to generate.
    #[arg(long, short = 'n', default_value_t = 128)]
    max_tokens: usize,
    /// Sampling temperature; 0 = greedy (reproducible).
    #[arg(long, default_value_t = 0.0)]
    temp: f32,
    /// Keep the K most likely tokens when sampling (0 = all).
    #[arg(long, default_value_t = 40)]
    top_k: usize,
    /// Nucleus sampling: keep the smallest set of tokens with this total probability.
    #[arg(long, default_value_t = 0.95)]
    top_p: f32,
    /// Seed for sampling.
    #[arg(long, default_value_t = 0x5eed)]
    seed: u64,
    /// Write a per-node trace (trace.jsonl) into this directory.
    #[arg(long, value_name = "DIR")]
    trace: Option<PathBuf>,
    /// With --trace: also write full tensors (.npy) of nodes matching these globs (comma separated).
    #[arg(long, value_name = "PATTERN", requires = "trace")]
    trace_tensors: Option<String>,
    /// Print token ids instead of text (one per line, for scripts).
    #[arg(long)]
    ids: bool,
    #[command(flatten)]
    exec: ExecArgs,
}

pub fn run(a: Args) -> Result<i32> {
    let (m, tk, prompt) = a.input.load()?;
    let g = lowered(&m, &a.exec)?;
    let meta = a
        .trace
        .as_ref()
        .map(|_| super::trace::meta_for(&m, &g, &a.exec, &prompt));
    let mut eng = engine_for(&m, &a.exec, g, 1, false)?;
    let mut sampler = Sampler::new(SamplerConfig {
        temperature: a.temp,
        top_k: a.top_k,
        top_p: a.top_p,
        seed: a.seed,
    })?;
    let mut tracer = match &a.trace {
        Some(dir) => {
            let mut t = Tracer::create(
                dir,
                NodePattern::all(),
                a.trace_tensors.as_deref().map(NodePattern::new),
                eng.name(),
            )?;
            let mut meta = meta.expect("built when --trace is given");
            super::trace::set_executor(&mut meta, eng.name(), &a.exec);
            t.meta = Some(meta);
            Some(t)
        }
        None => None,
    };
    let obs: &mut dyn Observer = match tracer.as_mut() {
        Some(t) => t,
        None => &mut NoObserver,
    };
    let mut dec = StreamDecoder::default();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let ids = a.ids;
    let mut fed = Vec::new();
    let st = generate(
        eng.as_mut(),
        &prompt,
        a.max_tokens,
        &mut sampler,
        &|t| tk.is_end_of_generation(t),
        obs,
        &mut |tok| {
            fed.push(tok);
            if ids {
                writeln!(out, "{tok}").ok();
            } else {
                let s = dec.push(&tk.token_bytes(tok, false));
                write!(out, "{s}").ok();
                out.flush().ok();
            }
            true
        },
    )?;
    if !ids {
        writeln!(out, "{}", dec.finish()).ok();
    }
    if let Some(mut t) = tracer {
        if let Some(m) = t.meta.as_mut() {
            m.generated = fed;
        }
        let p = t.finish()?;
        eprintln!("graphrun: trace written to {}", p.display());
    }
    eprintln!(
        "graphrun [{}]: prompt {} tokens in {:.2} s ({:.1} tok/s); generated {} tokens in {:.2} s ({:.1} tok/s){}",
        eng.name(),
        st.prompt_tokens,
        st.prefill_secs,
        st.prompt_tokens as f64 / st.prefill_secs.max(1e-9),
        st.generated,
        st.decode_secs,
        (st.generated.saturating_sub(1)) as f64 / st.decode_secs.max(1e-9),
        if st.stopped_at_eog {
            ", stopped at end-of-generation"
        } else {
            ""
        }
    );
    Ok(0)
}

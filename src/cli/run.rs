//! `graphrun run`: generate text, streaming it as it is produced.

use super::common::{ExecArgs, PromptArgs, SamplingArgs, engine_for, lowered, trace_hint};
use graphrun::exec::{NoObserver, Observer};
use graphrun::generate::{Sampler, Stop, generate};
use graphrun::tokenizer::StreamDecoder;
use graphrun::trace::{FiniteCheck, NodePattern, Tracer, check_trace_dir};
use graphrun::{Error, Result};
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    input: PromptArgs,
    /// Stop after N generated tokens; -1 generates until an end-of-generation token or a
    /// full context (--ctx).
    #[arg(long, short = 'n', default_value = "-1", value_name = "N",
          value_parser = parse_max_tokens, allow_negative_numbers = true)]
    max_tokens: MaxTokens,
    #[command(flatten)]
    sampling: SamplingArgs,
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

/// `-n`: a token count, or None for "until an end-of-generation token or a full context".
#[derive(Clone, Copy, Debug)]
pub struct MaxTokens(pub Option<usize>);

fn parse_max_tokens(s: &str) -> std::result::Result<MaxTokens, String> {
    if s.trim() == "-1" {
        return Ok(MaxTokens(None));
    }
    s.parse::<usize>().map(|n| MaxTokens(Some(n))).map_err(|_| {
        "expected -1 (until an end-of-generation token or a full context) or a token count ≥ 0"
            .to_string()
    })
}

pub fn run(a: Args) -> Result<i32> {
    // Every flag is checked before the model is loaded.
    let mut sampler = Sampler::new(a.sampling.config())?;
    if let Some(n) = a.max_tokens.0
        && n >= a.exec.ctx
    {
        return Err(Error::invalid(format!(
            "--max-tokens {n} does not fit the context size --ctx {} (the prompt needs at least one position); lower -n or raise --ctx",
            a.exec.ctx
        )));
    }
    if let Some(dir) = &a.trace {
        check_trace_dir(dir)?;
    }
    let (m, tk, prompt) = a.input.load()?;
    let g = lowered(&m, &a.exec)?;
    let meta = a
        .trace
        .as_ref()
        .map(|_| super::trace::meta_for(&m, &g, &a.exec, &prompt));
    let mut eng = engine_for(&m, &a.exec, g, 1, false)?;
    let mut tracer = match &a.trace {
        Some(dir) => {
            let mut t = Tracer::create(
                dir,
                NodePattern::all(),
                a.trace_tensors.as_deref().map(NodePattern::new),
                eng.executor(),
            )?;
            let mut meta = meta.expect("built when --trace is given");
            super::trace::set_executor(&mut meta, eng.executor(), &a.exec);
            t.meta = Some(meta);
            Some(t)
        }
        None => None,
    };
    // The tracer checks every node for NaN/Inf; without it, the interpreter checks every
    // node too (cheap there); on the GPU, `generate` checks the logits of sampled steps.
    let mut no_obs = NoObserver;
    let mut check;
    let obs: &mut dyn Observer = match tracer.as_mut() {
        Some(t) => t,
        None if eng.name() == "interp" => {
            check = FiniteCheck {
                inner: &mut no_obs,
                hint: trace_hint(&a.input, &a.exec),
            };
            &mut check
        }
        None => &mut no_obs,
    };
    let mut dec = StreamDecoder::default();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let ids = a.ids;
    let mut fed = Vec::new();
    let result = generate(
        eng.as_mut(),
        &prompt,
        a.max_tokens.0,
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
    );
    if !ids && !fed.is_empty() {
        writeln!(out, "{}", dec.finish()).ok();
    }
    if let Some(mut t) = tracer {
        if let Some(m) = t.meta.as_mut() {
            m.generated = fed;
        }
        let p = t.finish()?;
        eprintln!("graphrun: trace written to {}", p.display());
    }
    let st = result?;
    eprintln!(
        "graphrun [{}]: prompt {} tokens in {:.2} s ({:.1} tok/s); generated {} tokens in {:.2} s ({:.1} tok/s)",
        eng.name(),
        st.prompt_tokens,
        st.prefill_secs,
        st.prompt_tokens as f64 / st.prefill_secs.max(1e-9),
        st.generated,
        st.decode_secs,
        (st.generated.saturating_sub(1)) as f64 / st.decode_secs.max(1e-9),
    );
    eprintln!(
        "graphrun: stopped: {}",
        match st.stop {
            Stop::EndOfGeneration => "end-of-generation token".to_string(),
            Stop::MaxTokens => format!(
                "--max-tokens reached ({} tokens; -n -1 generates until an end-of-generation token or a full context)",
                st.generated
            ),
            Stop::ContextFull => format!(
                "the context is full ({} positions; raise --ctx for a longer answer)",
                eng.n_ctx()
            ),
            Stop::Caller => "interrupted".to_string(),
        }
    );
    Ok(0)
}

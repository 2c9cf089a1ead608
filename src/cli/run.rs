//! `graphrun run`: generate text, streaming it as it is produced.

use super::common::{ExecArgs, engine_for, lowered, open, tokenizer};
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

/// The model and the prompt (shared by `run` and `trace`).
#[derive(clap::Args)]
pub struct PromptArgs {
    /// GGUF or APR model (default: the cached 0.5B from scripts/fetch-model).
    pub model: Option<PathBuf>,
    /// The prompt text (special tokens such as <|im_start|> written in it are honoured).
    #[arg(long, short)]
    pub prompt: String,
    /// Wrap the prompt in the model's ChatML chat template (system + user turn).
    #[arg(long)]
    pub chat: bool,
    /// System message for --chat (default: the one in the model's template).
    #[arg(long)]
    pub system: Option<String>,
}

impl PromptArgs {
    /// Opens the model and tokenizes the prompt.
    pub fn load(
        &self,
    ) -> Result<(
        graphrun::model::ModelFile,
        graphrun::tokenizer::Tokenizer,
        Vec<u32>,
    )> {
        let m = open(self.model.clone())?;
        let tk = tokenizer(&m)?;
        let ids = prompt_ids(&m, &tk, &self.prompt, self.chat, self.system.as_deref());
        Ok((m, tk, ids))
    }
}

/// The prompt's token ids: BOS when the model wants one, then the text (ChatML-wrapped with
/// `chat`), special tokens written in it honoured.
pub fn prompt_ids(
    m: &graphrun::model::ModelFile,
    tk: &graphrun::tokenizer::Tokenizer,
    prompt: &str,
    chat: bool,
    system: Option<&str>,
) -> Vec<u32> {
    let text = if chat {
        chatml(m.tokenizer.chat_template.as_deref(), system, prompt)
    } else {
        prompt.to_string()
    };
    let mut ids = Vec::new();
    if tk.add_bos
        && let Some(b) = tk.bos
    {
        ids.push(b);
    }
    ids.extend(tk.encode(&text, true));
    ids
}

/// Applies the ChatML template: system turn, user turn, and the assistant header.
pub fn chatml(template: Option<&str>, system: Option<&str>, user: &str) -> String {
    let default_system = template
        .and_then(|t| {
            let key = "<|im_start|>system\\n";
            t.match_indices(key).find_map(|(i, _)| {
                let rest = &t[i + key.len()..];
                let end = rest.find("<|im_end|>")?;
                let s = &rest[..end];
                (!s.contains('\'') && !s.contains('{')).then(|| s.to_string())
            })
        })
        .unwrap_or_else(|| "You are a helpful assistant.".to_string());
    format!(
        "<|im_start|>system\n{}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n",
        system.unwrap_or(&default_system)
    )
}

pub fn run(a: Args) -> Result<i32> {
    let (m, tk, prompt) = a.input.load()?;
    let g = lowered(&m, &a.exec)?;
    let meta = super::trace::meta_for(&m, &g, &a.exec, &prompt);
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
            let mut meta = meta;
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

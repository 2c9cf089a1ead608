//! Helpers shared by subcommands: opening the model, building an executor.

use graphrun::exec::Engine;
use graphrun::exec::cuda::{CudaEngine, CudaOptions};
use graphrun::exec::gpu_probe;
use graphrun::exec::interp::Interpreter;
use graphrun::fault::{self, Fault};
use graphrun::graph::Graph;
use graphrun::graph::{ActSemantics, LowerOptions, lower};
use graphrun::model::{ModelFile, default_model_path};
use graphrun::tokenizer::Tokenizer;
use graphrun::{Error, Result};
use std::path::PathBuf;

/// Options every model-running command shares.
#[derive(clap::Args, Clone, Debug)]
pub struct ExecArgs {
    /// Run on the CPU reference interpreter (the default when no GPU is found).
    #[arg(long)]
    pub interp: bool,
    /// Activation semantics of quantized matmuls: `q8` (llama.cpp's integer dots) or `f32`
    /// (dequantize the weights, f32 math).
    #[arg(long, value_enum, default_value = "q8")]
    pub act: ActSemantics,
    /// Context size (positions in the KV cache).
    #[arg(long, default_value_t = 4096)]
    pub ctx: usize,
    /// CPU threads for the interpreter (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// CUDA device ordinal.
    #[arg(long, default_value_t = 0)]
    pub device: usize,
    /// GPU: run one kernel per graph node instead of the fused schedule (debugging, parity).
    #[arg(long)]
    pub no_fuse: bool,
    /// Testing/debugging: perturb one graph node in this run: NODE:scale=S (output times S),
    /// NODE:bias=off (a bias_add node skips its bias), NODE:offset=N (a rope node rotates N
    /// positions further). Repeatable; node names as in `graphrun dump --stage lowered`.
    #[arg(long = "inject", value_name = "NODE:KIND")]
    pub inject: Vec<Fault>,
}

pub fn model_path(p: Option<PathBuf>) -> Result<PathBuf> {
    match p {
        Some(p) => Ok(p),
        None => default_model_path(),
    }
}

pub fn open(p: Option<PathBuf>) -> Result<ModelFile> {
    ModelFile::open(model_path(p)?)
}

pub fn tokenizer(m: &ModelFile) -> Result<Tokenizer> {
    Tokenizer::new(&m.tokenizer, &m.path)
}

pub fn set_threads(n: Option<usize>) -> Result<()> {
    if let Some(n) = n {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build_global()
            .map_err(|e| Error::invalid(format!("--threads {n}: {e}")))?;
    }
    Ok(())
}

/// Chooses the executor: the GPU when one is usable, else the interpreter (saying why).
/// `max_logit_rows` is the most logit rows a step will ask for (1 for generation).
pub fn engine<'m>(
    m: &'m ModelFile,
    a: &ExecArgs,
    max_logit_rows: usize,
) -> Result<Box<dyn Engine + 'm>> {
    engine_for(m, a, lowered(m, a)?, max_logit_rows, false)
}

/// The graph a run executes: lowered with the chosen semantics, faults injected.
pub fn lowered(m: &ModelFile, a: &ExecArgs) -> Result<Graph> {
    let mut g = lower(m, LowerOptions { act: a.act })?;
    fault::inject(&mut g, &a.inject)?;
    if !a.inject.is_empty() {
        let list: Vec<String> = a.inject.iter().map(|f| f.to_string()).collect();
        eprintln!("graphrun: injected fault(s): {}", list.join(", "));
    }
    Ok(g)
}

/// `engine` for an already lowered graph; with `require_gpu`, no GPU is an error instead
/// of a fallback to the interpreter.
pub fn engine_for<'m>(
    m: &'m ModelFile,
    a: &ExecArgs,
    g: Graph,
    max_logit_rows: usize,
    require_gpu: bool,
) -> Result<Box<dyn Engine + 'm>> {
    set_threads(a.threads)?;
    let n_ctx = a.ctx.min(m.hparams.n_ctx_train.max(1));
    if !a.interp {
        match gpu_probe::probe(a.device) {
            Ok(_) => {
                let opts = CudaOptions {
                    device: a.device,
                    n_ctx,
                    fuse: !a.no_fuse,
                    max_logit_rows,
                    quiet: false,
                };
                let e = CudaEngine::new(m, g, &opts)?;
                eprintln!(
                    "graphrun: running on {} ({})",
                    e.device_name,
                    if opts.fuse {
                        "fused"
                    } else {
                        "one kernel per node"
                    }
                );
                return Ok(Box::new(e));
            }
            Err(why) if require_gpu => {
                return Err(Error::invalid(format!(
                    "--gpu: no usable GPU ({why}); use --interp for the CPU reference"
                )));
            }
            Err(why) => eprintln!(
                "graphrun: no GPU found ({why}); running the CPU interpreter (pass --interp to choose it explicitly)"
            ),
        }
    }
    Ok(Box::new(Interpreter::new(m, g, n_ctx)?))
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
    pub fn load(&self) -> Result<(ModelFile, Tokenizer, Vec<u32>)> {
        let m = open(self.model.clone())?;
        let tk = tokenizer(&m)?;
        let ids = prompt_ids(&m, &tk, &self.prompt, self.chat, self.system.as_deref());
        Ok((m, tk, ids))
    }
}

/// The prompt's token ids: BOS when the model wants one, then the text (ChatML-wrapped with
/// `chat`), special tokens written in it honoured.
pub fn prompt_ids(
    m: &ModelFile,
    tk: &Tokenizer,
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

//! Helpers shared by subcommands: opening the model, building an executor.

use graphrun::exec::Engine;
use graphrun::exec::cuda::{CudaEngine, CudaOptions, DecodeKernel};
use graphrun::exec::gpu_probe;
use graphrun::exec::interp::Interpreter;
use graphrun::fault::{self, Fault};
use graphrun::generate::{SamplerConfig, check_temperature, check_top_p};
use graphrun::graph::Graph;
use graphrun::graph::{ActSemantics, KvType, LowerOptions, lower};
use graphrun::model::{ModelFile, default_model_path};
use graphrun::serve::template::{ChatMessage, ChatTemplate, chat_prompt_ids};
use graphrun::tokenizer::Tokenizer;
use graphrun::{Error, Result};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

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
    /// Element type of the KV cache: `f16` (as llama.cpp keeps it: half the bytes read per
    /// token at depth; K and V rounded to nearest even when stored) or `f32` (exact).
    #[arg(long, value_enum, default_value = "f16")]
    pub kv: KvType,
    /// Context size (positions in the KV cache), at most the model's training context.
    #[arg(long, default_value_t = 4096, value_parser = at_least_1)]
    pub ctx: usize,
    /// CPU threads for the interpreter (default: all cores; more than the cores is capped).
    #[arg(long, value_parser = at_least_1)]
    pub threads: Option<usize>,
    /// CUDA device ordinal.
    #[arg(long, default_value_t = 0)]
    pub device: usize,
    /// GPU: run one kernel per graph node instead of the fused schedule (debugging, parity).
    #[arg(long)]
    pub no_fuse: bool,
    /// GPU decode steps: the fused groups' kernels replayed as a CUDA graph (the default),
    /// or one persistent kernel per token (opt-in until validated on a GPU; falls back to
    /// `graph`, saying why, where it does not fit).
    #[arg(long, value_enum, default_value = "graph")]
    pub decode_kernel: DecodeKernel,
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

/// The tokenizer for `m`: from `file` when given (`--tokenizer`: a Hugging Face
/// tokenizer.json or another model file), else from the model's own metadata.
pub fn tokenizer(m: &ModelFile, file: Option<&Path>) -> Result<Tokenizer> {
    let Some(file) = file else {
        if m.tokenizer.tokens.is_empty() {
            return Err(Error::invalid(format!(
                "{}: the file carries no tokenizer (no vocabulary in its metadata, as \
`apr import` writes without a tokenizer.json); pass --tokenizer FILE with the model's \
Hugging Face tokenizer.json or a GGUF/APR file of the same model",
                m.path
            )));
        }
        return Tokenizer::new(&m.tokenizer, &m.path);
    };
    let td = graphrun::tokenizer::file::data_from_file(file)?;
    let rows = m
        .tensor("token_embd.weight")
        .and_then(|t| t.shape.first().copied())
        .unwrap_or(m.hparams.vocab_size as u64);
    if td.tokens.len() as u64 > rows {
        return Err(Error::invalid(format!(
            "--tokenizer {}: {} tokens, but {} embeds {rows}: not this model's tokenizer",
            file.display(),
            td.tokens.len(),
            m.path
        )));
    }
    Tokenizer::new(&td, &file.display().to_string())
}

/// Value parser for sizes and counts that must be positive (names the flag in clap's error).
pub fn at_least_1(s: &str) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("{e} (expected a whole number ≥ 1)")),
    }
}

/// Builds the interpreter's thread pool: `n` threads, capped at the cores here (more only
/// make the interpreter slower: they contend for the same cores).
pub fn set_threads(n: Option<usize>) -> Result<()> {
    if let Some(n) = n {
        let cores = std::thread::available_parallelism().map_or(n, |c| c.get());
        let n = if n > cores {
            eprintln!("graphrun: --threads {n} is more than the {cores} cores here; using {cores}");
            cores
        } else {
            n
        };
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .map_err(|e| Error::invalid(format!("--threads {n}: {e}")))?;
    }
    Ok(())
}

/// Progress of a long operation on stderr: on a terminal one line rewritten in place;
/// otherwise (a log file, a pipe) whole lines, at most one every 5 s plus the final one, so
/// that lines never run together.
pub struct Progress {
    tty: bool,
    last: Option<std::time::Instant>,
    shown: bool,
}

impl Progress {
    pub fn new() -> Progress {
        Progress {
            tty: std::io::stderr().is_terminal(),
            last: None,
            shown: false,
        }
    }

    /// Shows the current state.
    pub fn update(&mut self, msg: &str) {
        if self.tty {
            eprint!("\r{msg}\x1b[K");
            self.shown = true;
        } else if self.last.is_none_or(|t| t.elapsed().as_secs_f64() >= 5.0) {
            eprintln!("{msg}");
            self.last = Some(std::time::Instant::now());
        }
    }

    /// Shows the final state and ends the line.
    pub fn done(&mut self, msg: &str) {
        if self.tty {
            eprintln!("\r{msg}\x1b[K");
        } else {
            eprintln!("{msg}");
        }
        self.shown = false;
    }

    /// Ends a terminal line left open by `update` (before an error or other output).
    pub fn clear(&mut self) {
        if self.tty && self.shown {
            eprintln!();
            self.shown = false;
        }
    }
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
    let mut g = lower(
        m,
        LowerOptions {
            act: a.act,
            kv: a.kv,
        },
    )?;
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
            Ok(_) => return Ok(Box::new(cuda_engine(m, a, g, max_logit_rows, 1)?)),
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

/// The CUDA executor for a lowered graph, with `n_slots` KV-cache slots (sequences decoded
/// together; the persistent decode kernel serves one), saying on stderr how it runs.
pub fn cuda_engine<'m>(
    m: &'m ModelFile,
    a: &ExecArgs,
    g: Graph,
    max_logit_rows: usize,
    n_slots: usize,
) -> Result<CudaEngine<'m>> {
    let n_ctx = a.ctx.min(m.hparams.n_ctx_train.max(1));
    let opts = CudaOptions {
        device: a.device,
        n_ctx,
        fuse: !a.no_fuse,
        max_logit_rows,
        quiet: false,
    };
    let mut e = CudaEngine::with_slots(m, g, &opts, n_slots)?;
    let note = match (opts.fuse, n_slots, a.decode_kernel) {
        (false, _, _) => None,
        (true, 1, k) => e.set_decode_kernel(k)?,
        (true, _, DecodeKernel::Graph) => None,
        (true, n, k) => {
            return Err(Error::invalid(format!(
                "--decode-kernel {}: the persistent decode kernel runs one sequence; {n} slots need --decode-kernel graph",
                k.name()
            )));
        }
    };
    if let Some(note) = note {
        eprintln!("graphrun: {note}");
    }
    let how = match (opts.fuse, e.persistent_program()) {
        (false, _) => "one kernel per node".to_string(),
        (true, Some(p)) => format!(
            "fused; decode: one persistent kernel, {} CTAs, {} instructions",
            p.ctas,
            p.instrs.len()
        ),
        (true, None) => "fused; decode: CUDA graph of the group kernels".to_string(),
    };
    let slots = if n_slots > 1 {
        format!("; {n_slots} sequences decoded together, one batched step per token")
    } else {
        String::new()
    };
    eprintln!("graphrun: running on {} ({how}{slots})", e.device_name);
    Ok(e)
}

/// The model and the prompt (shared by `run` and `trace`).
#[derive(clap::Args)]
pub struct PromptArgs {
    /// GGUF or APR model (default: the cached 0.5B from scripts/fetch-model).
    pub model: Option<PathBuf>,
    /// The prompt text (special tokens such as <|im_start|> written in it are honoured).
    #[arg(long, short)]
    pub prompt: String,
    /// Wrap the prompt in the model's own chat template (`tokenizer.chat_template`, rendered
    /// as `graphrun serve` renders chat requests): system turn, user turn, assistant header.
    #[arg(long)]
    pub chat: bool,
    /// System message for --chat (default: the one in the model's template).
    #[arg(long)]
    pub system: Option<String>,
    /// Tokenizer for a model file that carries none: a Hugging Face tokenizer.json, or a
    /// GGUF/APR file of the same model.
    #[arg(long, value_name = "FILE")]
    pub tokenizer: Option<PathBuf>,
}

impl PromptArgs {
    /// Opens the model and tokenizes the prompt.
    pub fn load(&self) -> Result<(ModelFile, Tokenizer, Vec<u32>)> {
        let m = open(self.model.clone())?;
        let tk = tokenizer(&m, self.tokenizer.as_deref())?;
        let template = match self.chat {
            true => Some(chat_template(&m, self.tokenizer.as_deref())?),
            false => None,
        };
        let ids = prompt_ids(&tk, &self.prompt, template.as_ref(), self.system.as_deref())?;
        Ok((m, tk, ids))
    }
}

/// The template for `--chat`: the model's own, or, for a model file without one, the one
/// that came with `--tokenizer FILE`.
pub fn chat_template(m: &ModelFile, file: Option<&Path>) -> Result<ChatTemplate> {
    match file {
        Some(f) if m.tokenizer.chat_template.is_none() => ChatTemplate::from_tokenizer_data(
            &graphrun::tokenizer::file::data_from_file(f)?,
            &f.display().to_string(),
        ),
        _ => ChatTemplate::from_model(m),
    }
}

/// The prompt's token ids. With a chat `template`, the prompt is the user turn (after a
/// system turn when `system` is given) rendered by it, as `graphrun serve` renders chat
/// requests; otherwise it is the text as written, after BOS when the model wants one.
/// Special tokens written in it are honoured either way.
pub fn prompt_ids(
    tk: &Tokenizer,
    prompt: &str,
    template: Option<&ChatTemplate>,
    system: Option<&str>,
) -> Result<Vec<u32>> {
    if let Some(t) = template {
        let mut msgs = Vec::new();
        if let Some(s) = system {
            msgs.push(ChatMessage::new("system", s));
        }
        msgs.push(ChatMessage::new("user", prompt));
        let text = t
            .render(&msgs)
            .map_err(|e| Error::invalid(format!("--chat: the chat template says: {e}")))?;
        return Ok(chat_prompt_ids(tk, &text));
    }
    let mut ids = Vec::new();
    if tk.add_bos
        && let Some(b) = tk.bos
    {
        ids.push(b);
    }
    ids.extend(tk.encode(prompt, true));
    Ok(ids)
}

/// The hint appended to a non-finite-value error of a run: the `graphrun trace` command
/// that records every node of the same run up to the first bad one.
pub fn trace_hint(p: &PromptArgs, exec: &ExecArgs) -> String {
    let model = p
        .model
        .as_ref()
        .map(|m| format!(" {}", shell_word(&m.display().to_string())))
        .unwrap_or_default();
    format!(
        "record every node up to it with: graphrun trace{model} --prompt {}{} --interp --act {} --kv {} -o DIR",
        shell_word(&p.prompt),
        if p.chat { " --chat" } else { "" },
        exec.act.name(),
        exec.kv.name()
    )
}

/// `s` quoted for a POSIX shell when it needs it.
fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The sampling flags of `run` and `bench`.
#[derive(clap::Args, Clone, Debug)]
pub struct SamplingArgs {
    /// Sampling temperature ≥ 0; 0 = greedy (reproducible).
    #[arg(long, default_value_t = 0.0, value_parser = parse_temp, allow_negative_numbers = true)]
    pub temp: f32,
    /// Keep the K most likely tokens when sampling (0 = all, 1 = greedy). On the GPU, 2 to
    /// 64 sample inside the captured decode step; others copy the logits to the host.
    #[arg(long, default_value_t = 40, value_parser = parse_top_k, allow_negative_numbers = true)]
    pub top_k: usize,
    /// Nucleus sampling: keep the smallest set of most likely tokens whose probability
    /// reaches P, in [0, 1] (1 = all, 0 = greedy).
    #[arg(long, default_value_t = 0.95, value_parser = parse_top_p, allow_negative_numbers = true)]
    pub top_p: f32,
    /// Seed for sampling (the same seed gives the same tokens).
    #[arg(long, default_value_t = 0x5eed)]
    pub seed: u64,
}

impl SamplingArgs {
    pub fn config(&self) -> SamplerConfig {
        SamplerConfig {
            temperature: self.temp,
            top_k: self.top_k,
            top_p: self.top_p,
            seed: self.seed,
        }
    }
}

fn parse_temp(s: &str) -> std::result::Result<f32, String> {
    let t: f32 = s.parse().map_err(|e| format!("{e}"))?;
    check_temperature(t).map(|_| t)
}

fn parse_top_p(s: &str) -> std::result::Result<f32, String> {
    let p: f32 = s.parse().map_err(|e| format!("{e}"))?;
    check_top_p(p).map(|_| p)
}

fn parse_top_k(s: &str) -> std::result::Result<usize, String> {
    s.parse::<usize>()
        .map_err(|_| "expected a whole number ≥ 0 (0 keeps every token, 1 is greedy)".into())
}

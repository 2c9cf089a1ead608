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

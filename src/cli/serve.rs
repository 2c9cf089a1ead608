//! `graphrun serve`: the OpenAI-compatible HTTP server (`graphrun::serve`) on the chosen
//! executor: `--parallel` sequences, each in its own KV-cache slot, decoded in one batched
//! step (the interpreter's `with_slots`, the CUDA executor's `with_slots`: src/exec/cuda/batch.rs).

use super::common::{self, ExecArgs};
use graphrun::exec::cuda::MAX_BATCH;
use graphrun::exec::interp::Interpreter;
use graphrun::exec::{BatchEngine, gpu_probe};
use graphrun::serve::template::ChatTemplate;
use graphrun::serve::{Config, serve};
use graphrun::{Error, Result};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// GGUF or APR model (default: the cached 0.5B from scripts/fetch-model).
    model: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0: any free port; the log line says which).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Sequences decoded together, each in its own KV-cache slot of --ctx positions
    /// (default 4; the GPU executor takes 1 to 8).
    #[arg(long)]
    parallel: Option<usize>,
    /// Requests that may wait for a free slot; beyond them the server answers 429.
    #[arg(long, default_value_t = 16)]
    queue: usize,
    #[command(flatten)]
    exec: ExecArgs,
}

pub fn run(a: Args) -> Result<i32> {
    let path = common::model_path(a.model)?;
    let m = graphrun::model::ModelFile::open(&path)?;
    let tk = common::tokenizer(&m, None)?;
    // A model without a chat template still serves /v1/completions.
    let template = match ChatTemplate::from_model(&m) {
        Ok(t) => Some(t),
        Err(e) => {
            eprintln!("graphrun serve: {e}; /v1/chat/completions will answer 400");
            None
        }
    };
    let g = common::lowered(&m, &a.exec)?;
    let gpu = if a.exec.interp {
        false
    } else {
        match gpu_probe::probe(a.exec.device) {
            Ok(_) => true,
            Err(why) => {
                eprintln!(
                    "graphrun: no GPU found ({why}); running the CPU interpreter (pass --interp to choose it explicitly)"
                );
                false
            }
        }
    };
    let parallel = a.parallel.unwrap_or(4);
    if parallel == 0 {
        return Err(Error::invalid("--parallel must be at least 1"));
    }
    if gpu && parallel > MAX_BATCH {
        return Err(Error::invalid(format!(
            "--parallel {parallel}: the GPU executor decodes 1 to {MAX_BATCH} sequences together; use --parallel {MAX_BATCH} or less (or --interp)"
        )));
    }
    let cfg = Config {
        host: a.host,
        port: a.port,
        model_id: path
            .file_stem()
            .map_or_else(|| "model".to_string(), |s| s.to_string_lossy().into_owned()),
        parallel,
        queue: a.queue,
    };
    let exec = a.exec;
    let m = &m;
    serve(
        &cfg,
        tk,
        template,
        move || -> Result<Box<dyn BatchEngine + '_>> {
            if gpu {
                Ok(Box::new(common::cuda_engine(m, &exec, g, 1, parallel)?))
            } else {
                common::set_threads(exec.threads)?;
                let n_ctx = exec.ctx.min(m.hparams.n_ctx_train.max(1));
                Ok(Box::new(Interpreter::with_slots(m, g, n_ctx, parallel)?))
            }
        },
    )?;
    Ok(0)
}

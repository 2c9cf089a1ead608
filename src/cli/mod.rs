//! Command-line front end: argument parsing (clap) and one module per subcommand.
//! Exit status: 0 success, 1 "differs" for comparison commands, 2 errors.

mod convert;
mod inspect;

use clap::{Parser, Subcommand};
use graphrun::Error;

#[derive(Parser)]
#[command(
    name = "graphrun",
    version,
    about = "Run quantized LLMs (Qwen2/Llama) from GGUF or APR files through one static op graph",
    long_about = "graphrun lowers a GGUF or APR model into one static op graph, runs it on an NVIDIA GPU \
(fused, generated CUDA kernels) or on the CPU reference interpreter, and traces every node so \
that two runs can be compared node by node."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print format, hyperparameters, tokenizer summary and tensor inventory of a model file.
    Inspect(inspect::Args),
    /// Convert a GGUF file to APR v2 (the layout `apr import --preserve-q4k` writes).
    Convert(convert::ConvertArgs),
    /// Compare two model files tensor by tensor (exit 0 identical, 1 different, 2 error).
    DiffWeights(convert::DiffArgs),
}

pub fn main() -> i32 {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Command::Inspect(a) => inspect::run(a),
        Command::Convert(a) => convert::convert(a),
        Command::DiffWeights(a) => convert::diff_weights(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            report(&e);
            2
        }
    }
}

fn report(e: &Error) {
    eprintln!("graphrun: error: {e}");
}

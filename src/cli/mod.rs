//! Command-line front end: argument parsing (clap) and one module per subcommand.
//! Exit status: 0 success, 1 "differs" for comparison commands, 2 errors.

mod bench;
mod common;
mod contracts;
mod convert;
mod diff;
mod dump;
mod inspect;
mod kernels;
mod perplexity;
mod run;
mod serve;
mod synth;
mod timeline;
mod tokens;
mod trace;

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
    /// Generate text from a prompt, streaming it (GPU when present, else the CPU interpreter).
    Run(run::Args),
    /// Print the token ids (and pieces) of a text.
    Tokenize(tokens::TokenizeArgs),
    /// Print the text of token ids.
    Detokenize(tokens::DetokenizeArgs),
    /// llama.cpp-compatible perplexity of a text file.
    Perplexity(perplexity::Args),
    /// Trace every node of a prompt's run (prefill + decode steps) for `graphrun diff`.
    Trace(trace::Args),
    /// Compare two traces node by node; name the first node that leaves its contract band.
    Diff(diff::Args),
    /// List the contracts (invariants, bands, tests) with their last recorded status.
    Contracts(contracts::Args),
    /// Print the op graph of a model (text, JSON or Graphviz DOT).
    Dump(dump::Args),
    /// List the generated CUDA kernels, print one's PTX, or compile-check them all.
    Kernels(kernels::Args),
    /// OpenAI-compatible HTTP server (chat and text completions, streamed or not) with
    /// batched decode of concurrent requests.
    Serve(serve::Args),
    /// Prefill and decode speed (like llama-bench), with decode as % of the bandwidth floor.
    Bench(bench::Args),
    /// Write a synthetic Qwen2.5-shaped model (0.5b, 1.5b, 7b shapes; random weights).
    Synth(synth::Args),
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
        Command::Run(a) => run::run(a),
        Command::Tokenize(a) => tokens::tokenize(a),
        Command::Detokenize(a) => tokens::detokenize(a),
        Command::Perplexity(a) => perplexity::run(a),
        Command::Trace(a) => trace::run(a),
        Command::Diff(a) => diff::run(a),
        Command::Contracts(a) => contracts::run(a),
        Command::Dump(a) => dump::run(a),
        Command::Kernels(a) => kernels::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Synth(a) => synth::run(a),
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

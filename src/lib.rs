//! graphrun: quantized LLMs (Qwen2 / Llama family) lowered to one static op graph, run by
//! generated CUDA kernels or by a CPU reference interpreter that traces every node.
//!
//! The data path, module by module: `model` (bytes in) → `graph` (what to compute) →
//! `sched` (how to group it) → `codegen` + `kernels/` (GPU code) → `exec` (run it) →
//! `trace` (what happened); `serve` puts an OpenAI-compatible HTTP server in front of `exec`.

// Numeric kernels index several arrays with one loop counter that mirrors the formula.
#![allow(clippy::needless_range_loop)]

pub mod codegen;
pub mod contracts;
pub mod diff;
pub mod error;
pub mod exec;
pub mod fault;
pub mod generate;
pub mod graph;
pub mod metrics;
pub mod model;
pub mod numerics;
pub mod quant;
pub mod sample;
pub mod sched;
pub mod serve;
pub mod tokenizer;
pub mod trace;

pub use error::{Error, Result};

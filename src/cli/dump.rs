//! `graphrun dump`: the lowered graph (and, with the GPU backend, the fused schedule).

use super::common::open;
use graphrun::Result;
use graphrun::graph::{ActSemantics, DumpFormat, LowerOptions, dump, lower};
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Stage {
    /// The op graph as lowered from the model file, one node per op.
    Lowered,
}

#[derive(clap::Args)]
pub struct Args {
    /// GGUF or APR model (default: the cached 0.5B).
    model: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "lowered")]
    stage: Stage,
    #[arg(long, value_enum, default_value = "text")]
    format: DumpFormat,
    /// Activation semantics recorded on matmul nodes.
    #[arg(long, value_enum, default_value = "q8")]
    act: ActSemantics,
}

pub fn run(a: Args) -> Result<i32> {
    let m = open(a.model)?;
    let g = lower(&m, LowerOptions { act: a.act })?;
    match a.stage {
        Stage::Lowered => print!("{}", dump(&g, a.format)),
    }
    Ok(0)
}

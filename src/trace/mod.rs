//! Traces: per-node records of what an executor computed (see `README.md` here).

pub mod stats;

pub use stats::Stats;

//! `graphrun diff`: aligns two traces record by record on (node name, step, positions),
//! measures each pair (`crate::metrics`: max-abs error, NMSE, cosine, std ratio, NaN/Inf
//! appearance), judges it against a contract band (`contracts/trace_*.toml`) and names the
//! **first record, in execution order (step, then topological index), that leaves its
//! band**, with the metrics of that node's inputs so the culprit (inputs in band, output not)
//! can be told from inherited drift.
//!
//! Rooms: `load` (trace directories, what each side was), `contract` (which contract, which
//! band), `align` (pairing records, splitting or merging chunked prefill rows), `verdict`
//! (the report and the first divergence), `text` and `html` (rendering).
//!
//! B is the reference: NMSE = Σ(a−b)² / Σb². Full tensors (`tensors/*.npy`) give exact
//! metrics; records traced without tensors are judged from their stats alone, by the lower
//! bound NMSE ≥ (‖a‖−‖b‖)²/‖b‖², and marked as such.

mod align;
mod contract;
pub mod html;
pub mod live;
mod load;
mod text;
mod verdict;

pub use contract::{band, choose_contract, classes, load_contract, record_class};
pub use load::{Side, Trace};
pub use verdict::{
    Cause, FirstDivergence, InputDiff, InputsDiffer, LayerSummary, NodeDiff, Report, diff,
};

/// Row label of a record in per-layer summaries: `embd`, the block number, or `head`.
pub(crate) fn layer_key(l: Option<usize>, node: &str) -> String {
    match l {
        Some(l) => l.to_string(),
        None if node == "token_embd" => "embd".into(),
        None => "head".into(),
    }
}

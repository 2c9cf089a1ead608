//! Architecture descriptions (`graph/<arch>.json`), embedded at build time.
//!
//! A description lists the embedding node, the nodes of one transformer block and the head
//! nodes. Each node has a name (prefixed `blk.N.` inside blocks), an op, input node names
//! (`x` is the block input: the embedding or the previous block's output; in the head, the
//! last block's output), and per-op fields: `weight` (tensor name, `blk.N.` prefixed inside
//! blocks), `fallback` (tensor used when `weight` is absent, e.g. tied embeddings), `out`
//! (a matmul's output width, named by the hyperparameter it must equal), `heads` (`q` or
//! `kv` for rope), `cache` (`k` or `v` for kv_append).

use crate::error::{Error, Result};
use crate::model::RopeType;
use serde::Deserialize;

include!(concat!(env!("OUT_DIR"), "/archs.rs"));

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchSpec {
    pub arch: String,
    pub doc: String,
    pub rope: RopeSpec,
    pub embedding: NodeSpec,
    pub block: Vec<NodeSpec>,
    pub head: Vec<NodeSpec>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RopeSpec {
    Norm,
    Neox,
}

impl RopeSpec {
    pub fn rope_type(self) -> RopeType {
        match self {
            RopeSpec::Norm => RopeType::Norm,
            RopeSpec::Neox => RopeType::Neox,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    pub name: String,
    #[serde(default)]
    pub op: Option<String>,
    #[serde(default, rename = "in")]
    pub inputs: Vec<String>,
    #[serde(default)]
    pub weight: Option<String>,
    #[serde(default)]
    pub fallback: Option<String>,
    #[serde(default)]
    pub out: Option<OutDim>,
    #[serde(default)]
    pub heads: Option<String>,
    #[serde(default)]
    pub cache: Option<String>,
}

/// A matmul's output width, as the hyperparameter it must equal.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OutDim {
    /// The hidden size.
    Embd,
    /// The FFN width.
    Ff,
    /// Query width: heads × head dimension.
    Q,
    /// Key/value width: KV heads × head dimension.
    Kv,
    /// The vocabulary size.
    Vocab,
}

/// Names of the built-in architectures.
pub fn arch_names() -> Vec<&'static str> {
    ARCH_FILES.iter().map(|(n, _)| *n).collect()
}

impl ArchSpec {
    /// The description for `arch`, parsed from the embedded `graph/<arch>.json`.
    pub fn for_arch(arch: &str) -> Result<ArchSpec> {
        let (name, text) = ARCH_FILES.iter().find(|(n, _)| *n == arch).ok_or_else(|| {
            Error::invalid(format!(
                "architecture `{arch}` has no description in graph/ (known: {})",
                arch_names().join(", ")
            ))
        })?;
        let spec: ArchSpec = serde_json::from_str(text)
            .map_err(|e| Error::invalid(format!("graph/{name}.json: {e}")))?;
        if spec.arch != *name {
            return Err(Error::invalid(format!(
                "graph/{name}.json: `arch` says {}",
                spec.arch
            )));
        }
        Ok(spec)
    }
}

//! A trace directory as `graphrun diff` sees it: its records, its metadata, and a
//! description of what ran (executor, semantics, format, faults).

use crate::error::{Error, Result};
use crate::exec::Executor;
use crate::graph::{ActSemantics, KvType};
use crate::trace::{self, Meta, Record, npy};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// One trace directory: records plus (when present) its metadata.
pub struct Trace {
    pub dir: PathBuf,
    pub meta: Option<Meta>,
    pub records: Vec<Record>,
}

impl Trace {
    pub fn open(path: &Path) -> Result<Trace> {
        let records = trace::read(path)?;
        let dir = trace::dir_of(path);
        if records.is_empty() {
            return Err(Error::invalid(format!(
                "{}: the trace has no records",
                dir.display()
            )));
        }
        Ok(Trace {
            meta: trace::read_meta(&dir)?,
            dir,
            records,
        })
    }

    /// The full tensor of a record, when it was written.
    pub(crate) fn tensor(&self, r: &Record) -> Result<Option<Vec<f32>>> {
        let Some(name) = &r.tensor else {
            return Ok(None);
        };
        let p = self.dir.join("tensors").join(name);
        let (shape, data) = npy::read_f32(&p)?;
        if shape.iter().product::<usize>() != r.shape[0] * r.shape[1] {
            return Err(Error::invalid(format!(
                "{}: shape {shape:?} does not match the record's {:?}",
                p.display(),
                r.shape
            )));
        }
        Ok(Some(data))
    }

    /// What ran, from the metadata (or, for traces without it, the records).
    pub fn describe(&self) -> Side {
        let m = self.meta.clone().unwrap_or_default();
        Side {
            path: self.dir.display().to_string(),
            executor: m.executor.or(Some(self.records[0].executor)),
            act: m.act.or_else(|| self.records.iter().find_map(|r| r.act)),
            kv: m.kv,
            format: m.format,
            fused: m.fused,
            synthetic: m.synthetic,
            faults: m.faults,
            model: m.model,
        }
    }
}

/// What one side of the comparison was.
#[derive(Clone, Debug, Serialize)]
pub struct Side {
    pub path: String,
    pub executor: Option<Executor>,
    pub act: Option<ActSemantics>,
    /// KV cache element type, when recorded.
    pub kv: Option<KvType>,
    pub format: String,
    pub fused: bool,
    /// Synthetic (random) weights rather than a real model's.
    pub synthetic: bool,
    pub faults: Vec<String>,
    pub model: String,
}

impl Side {
    pub fn label(&self) -> String {
        let mut s = format!(
            "{}, act {}",
            self.executor.map_or("?", Executor::name),
            self.act.map_or("?", ActSemantics::name)
        );
        if let Some(kv) = self.kv {
            s += &format!(", kv {}", kv.name());
        }
        if self.executor == Some(Executor::Cuda) {
            s += if self.fused { ", fused" } else { ", unfused" };
        }
        if !self.format.is_empty() {
            s += &format!(", {}", self.format);
        }
        if self.synthetic {
            s += ", synthetic weights";
        }
        if !self.faults.is_empty() {
            s += &format!(", injected {}", self.faults.join(" "));
        }
        s
    }
}

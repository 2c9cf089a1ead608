//! Access for the parity harnesses (tests/backend_ops.rs): write a node's inputs, run one
//! group of either schedule alone, read its output, and fill or read the KV cache, so the
//! GPU and the interpreter can be fed identical values op by op.

use super::device::cuda_err;
use super::{CudaEngine, phase_index};
use crate::codegen::Kv;
use crate::error::{Error, Result};
use crate::graph::{KvKind, NodeId};
use crate::sched::{Phase, Schedule};
use std::ops::Range;

impl CudaEngine<'_> {
    /// Sets the position the next kernels see.
    pub fn set_pos(&mut self, pos: usize) -> Result<()> {
        self.pos = pos;
        self.dev
            .stream
            .memcpy_htod(&[pos as i32], &mut self.scratch.pos)
            .map_err(cuda_err("uploading the position"))
    }

    fn offset(&self, phase: Phase, id: NodeId) -> Result<usize> {
        self.plans[phase_index(phase)].offset[id.index()].ok_or_else(|| {
            Error::invalid(format!(
                "node {} has no buffer in the {} schedule",
                self.graph.node(id).name,
                phase.name()
            ))
        })
    }

    /// Writes a node's value buffer in the `phase` schedule's arena.
    pub fn write_value(&mut self, phase: Phase, id: NodeId, data: &[f32]) -> Result<()> {
        let off = self.offset(phase, id)?;
        let arena = &mut self.arenas[phase_index(phase)];
        self.dev
            .stream
            .memcpy_htod(data, &mut arena.slice_mut(off..off + data.len()))
            .map_err(cuda_err("writing a value"))
    }

    /// Reads `len` values of a node's buffer (the logits buffer for the graph output).
    pub fn read_value(&mut self, phase: Phase, id: NodeId, len: usize) -> Result<Vec<f32>> {
        self.dev.sync()?;
        if id == self.graph.output() {
            return self.read_logits(0..len);
        }
        let off = self.offset(phase, id)?;
        let mut host = vec![0.0f32; len];
        self.dev
            .stream
            .memcpy_dtoh(
                &self.arenas[phase_index(phase)].slice(off..off + len),
                &mut host,
            )
            .map_err(cuda_err("reading a value"))?;
        Ok(host)
    }

    /// Writes elements 0.. of a layer's K or V cache, converted to the cache's element type
    /// (f16: round to nearest even, as the interpreter's `write_cache`).
    pub fn write_cache(&mut self, layer: usize, kind: KvKind, data: &[f32]) -> Result<()> {
        let bytes: Vec<u8> = match self.kv {
            Kv::F32 => data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            Kv::F16 => data
                .iter()
                .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
                .collect(),
        };
        let c = match kind {
            KvKind::K => &mut self.k_cache[layer],
            KvKind::V => &mut self.v_cache[layer],
        };
        self.dev
            .stream
            .memcpy_htod(&bytes, &mut c.slice_mut(0..bytes.len()))
            .map_err(cuda_err("writing the cache"))
    }

    /// Reads elements `range` of a layer's K or V cache, widened to f32.
    pub fn read_cache(
        &mut self,
        layer: usize,
        kind: KvKind,
        range: Range<usize>,
    ) -> Result<Vec<f32>> {
        self.dev.sync()?;
        self.cache_values(layer, kind, range)
    }

    /// Uploads token ids (for the embedding) without running anything.
    pub fn write_tokens(&mut self, toks: &[u32]) -> Result<()> {
        self.upload_step(toks)
    }

    /// Runs one group of the `phase` schedule for `t` rows (all logit rows), then waits.
    pub fn run_group_alone(&mut self, phase: Phase, gi: usize, t: usize) -> Result<()> {
        self.quantized = None; // the harness wrote new inputs
        self.run_group(phase, gi, t, &(0..t))?;
        self.dev.sync()
    }

    /// The `phase` schedule.
    pub fn schedule_of(&self, phase: Phase) -> &Schedule {
        self.sched(phase)
    }

    pub fn sync(&self) -> Result<()> {
        self.dev.sync()
    }
}

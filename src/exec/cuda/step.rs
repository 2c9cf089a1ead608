//! A step on the device: a chunk of rows through the prefill or decode schedule (with the
//! observer seeing every group's output), the decode step captured once as a CUDA graph
//! and replayed, and the readback of group outputs for traces. One-row steps go to the
//! persistent kernel when it is in use (persistent/).

use super::args::ArgmaxArgs;
use super::device::cuda_err;
use super::{CudaEngine, phase_index};
use crate::codegen::KernelId;
use crate::codegen::catalogue::ARGMAX_CTAS;
use crate::error::{Error, Result};
use crate::exec::Observer;
use crate::graph::{KvKind, NodeId};
use crate::sched::{GroupKind, Phase};
use cudarc::driver::sys::{CUgraphInstantiate_flags, CUstreamCaptureMode};
use std::ops::Range;

impl CudaEngine<'_> {
    /// Uploads the step's token ids and the position of its first row.
    pub(super) fn upload_step(&mut self, toks: &[u32]) -> Result<()> {
        let ids: Vec<i32> = toks.iter().map(|&x| x as i32).collect();
        let s = &mut self.scratch;
        self.dev
            .stream
            .memcpy_htod(&ids, &mut s.tokens.slice_mut(0..ids.len()))
            .map_err(cuda_err("uploading tokens"))?;
        self.dev
            .stream
            .memcpy_htod(&[self.pos as i32], &mut s.pos)
            .map_err(cuda_err("uploading the position"))
    }

    /// Runs one chunk (≤ UBATCH rows) at the current position; `lrows` = the logit rows
    /// asked for (None: the output node is skipped).
    pub(super) fn run_chunk(
        &mut self,
        toks: &[u32],
        lrows: Option<Range<usize>>,
        obs: &mut dyn Observer,
    ) -> Result<()> {
        let t = toks.len();
        self.quantized = None; // a new step: new activations
        if t == 1 && self.persistent.is_some() {
            return self.persistent_chunk(toks, obs);
        }
        self.upload_step(toks)?;
        let phase = if t == 1 {
            Phase::Decode
        } else {
            Phase::Prefill
        };
        let out = self.graph.output();
        let want = obs.wants_data();
        let lr = lrows.clone().unwrap_or(0..0);
        for gi in 0..self.sched(phase).groups.len() {
            let covers_out = self.sched(phase).groups[gi].nodes.contains(&out);
            if covers_out && lrows.is_none() {
                continue;
            }
            self.run_group(phase, gi, t, &lr)?;
            if want {
                let (id, rows, mut data) = self.group_output(phase, gi, t, &lr)?;
                let first = if id == out {
                    self.pos + lr.start
                } else {
                    self.pos
                };
                let s = self.sched(phase);
                let gr = &s.groups[gi];
                if s.fused && gr.nodes.len() > 1 {
                    obs.group(Some(&gr.kernel_names()), &gr.nodes);
                } else {
                    obs.group(None, &[id]);
                }
                obs.node_done(id, self.graph.node(id), first, rows, &mut data)?;
            }
        }
        Ok(())
    }

    /// Decode step through the captured CUDA graph: token → fused kernels → argmax.
    pub(super) fn decode_graph_step(&mut self, token: u32) -> Result<u32> {
        if self.persistent.is_some() {
            return self.persistent_token(token);
        }
        self.upload_step(&[token])?;
        if self.decode_graph.is_none() {
            let stream = self.dev.stream.clone();
            stream
                .begin_capture(CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
                .map_err(cuda_err("starting graph capture"))?;
            let r = self.decode_kernels();
            let g = stream
                .end_capture(CUgraphInstantiate_flags(0))
                .map_err(cuda_err("capturing the decode graph"))?;
            r?;
            self.decode_graph = g;
        }
        self.decode_graph
            .as_ref()
            .ok_or_else(|| Error::invalid("CUDA graph capture produced no graph"))?
            .launch()
            .map_err(cuda_err("replaying the decode graph"))?;
        let mut out = [0i32];
        self.dev
            .stream
            .memcpy_dtoh(&self.scratch.amax.slice(0..1), &mut out)
            .map_err(cuda_err("reading the token"))?;
        self.pos += 1;
        Ok(out[0] as u32)
    }

    /// Every group of the decode schedule, then the device argmax.
    fn decode_kernels(&mut self) -> Result<()> {
        self.quantized = None; // captured once, replayed: decide from a clean state
        for gi in 0..self.sched(Phase::Decode).groups.len() {
            self.run_group(Phase::Decode, gi, 1, &(0..1))?;
        }
        self.argmax_launch(0)
    }

    /// The device argmax of logit row `row` into `scratch.amax[row]` (kernels/argmax.cu).
    pub(super) fn argmax_launch(&mut self, row: usize) -> Result<()> {
        let vocab = self.graph.node(self.graph.output()).width;
        let a = ArgmaxArgs {
            x: self.ptr(&self.logits) + (row * vocab * 4) as u64,
            out: self.ptr(&self.scratch.amax) + (row * 4) as u64,
            n: vocab as i32,
            pad: 0,
            part: self.ptr(&self.scratch.amax_part),
        };
        self.launch(KernelId::Argmax, (ARGMAX_CTAS, 1), 256, 0, a)
    }

    /// The first `len` logits.
    pub(super) fn read_logits(&self, len: usize) -> Result<Vec<f32>> {
        let mut host = vec![0.0f32; len];
        self.dev
            .stream
            .memcpy_dtoh(&self.logits.slice(0..len), &mut host)
            .map_err(cuda_err("reading logits"))?;
        Ok(host)
    }

    /// Copies the output of group `gi` (its last node) to the host: (node, rows, values).
    fn group_output(
        &mut self,
        phase: Phase,
        gi: usize,
        t: usize,
        lrows: &Range<usize>,
    ) -> Result<(NodeId, usize, Vec<f32>)> {
        let gr = &self.scheds[phase_index(phase)].groups[gi];
        let out = gr.output();
        let n = self.graph.node(out);
        let rows = if out == self.graph.output() {
            lrows.len()
        } else {
            t
        };
        let len = rows * n.width;
        let mut host = vec![0.0f32; len];
        self.dev.sync()?;
        let offset = self.plans[phase_index(phase)].offset[out.index()];
        // The fused QKV group ends in the V-cache append: its output is the cache rows.
        if let GroupKind::Qkv { v_cache, .. } = &gr.kind {
            let layer = self.graph.node(*v_cache).layer.expect("a block node");
            let at = self.pos * n.width;
            return Ok((
                out,
                rows,
                self.cache_values(layer, KvKind::V, at..at + len)?,
            ));
        }
        let view = match offset {
            _ if out == self.graph.output() => self.logits.slice(0..len),
            Some(off) => self.arenas[phase_index(phase)].slice(off..off + len),
            None => {
                return Err(Error::invalid(format!(
                    "group {} has no readable output",
                    gr.name
                )));
            }
        };
        self.dev
            .stream
            .memcpy_dtoh(&view, &mut host)
            .map_err(cuda_err("reading a trace"))?;
        Ok((out, rows, host))
    }
}

//! A step on the persistent kernel: the launch, its status word (the greedy token, or an
//! error named by instruction and graph node), trace readback of every group's output,
//! per-instruction profiles, and test access to the launch counters.

use crate::codegen::KernelId;
use crate::codegen::catalogue::{PERR_DISPATCH, PERR_GEOMETRY, PERR_TIMEOUT, PERSIST_THREADS};
use crate::error::{Error, Result};
use crate::exec::Observer;
use crate::exec::cuda::CudaEngine;
use crate::exec::cuda::device::cuda_err;
use crate::graph::{KvKind, NodeId};
use crate::sched::{GroupKind, Phase};

impl CudaEngine<'_> {
    /// Launches the persistent kernel once (with per-instruction timestamps into `prof`
    /// when `profile`).
    fn persistent_launch(&mut self, profile: bool) -> Result<()> {
        let p = self
            .persistent
            .as_ref()
            .expect("the persistent kernel is in use");
        let mut args = p.args;
        if profile {
            args.prof = self.ptr(&p.prof);
        }
        let (grid, smem) = (p.program.ctas as u32, p.smem);
        let kernel = KernelId::Persistent { kv: p.program.kv };
        self.launch(kernel, (grid, 1), PERSIST_THREADS, smem, args)
    }

    /// Waits for the launch and returns its token word, or the kernel's error named by
    /// instruction and graph node.
    fn persistent_status(&mut self) -> Result<i32> {
        let p = self
            .persistent
            .as_ref()
            .expect("the persistent kernel is in use");
        let mut st = [0i32; 4];
        self.dev
            .stream
            .memcpy_dtoh(&p.status, &mut st)
            .map_err(cuda_err("reading the persistent kernel's status"))?;
        if st[1] != 0 {
            return Err(self.persistent_error(st));
        }
        Ok(st[0])
    }

    /// `persistent_status`, and the token word a valid token id: the argmax never picks a
    /// NaN, so an index outside the vocabulary means no logit was finite.
    fn persistent_result(&mut self) -> Result<u32> {
        let t = self.persistent_status()?;
        let vocab = self.vocab();
        if t < 0 || t as usize >= vocab {
            return Err(Error::invalid(format!(
                "the persistent decode kernel chose token {t} (vocabulary {vocab}): the logits hold no finite value"
            )));
        }
        Ok(t as u32)
    }

    fn persistent_error(&self, st: [i32; 4]) -> Error {
        let p = &self.persistent.as_ref().expect("in use").program;
        let name = |i: i32| {
            p.instrs.get(i as usize).map_or_else(
                || format!("#{i}"),
                |ins| format!("{i} ({} {})", ins.op.name(), ins.name),
            )
        };
        let what = match st[1] as u32 {
            PERR_TIMEOUT => format!(
                "CTA {} waited longer than the watchdog allows at instruction {} for instruction {}: a synchronization fault (rerun with --decode-kernel graph)",
                st[3] >> 16,
                name(st[2]),
                name(st[3] & 0xffff)
            ),
            PERR_GEOMETRY => format!(
                "instruction {}: the kernel's tile geometry or shared memory ({} bytes) differs from the program's",
                name(st[2]),
                st[3]
            ),
            PERR_DISPATCH => format!(
                "instruction {}: no kernel instance for weight type id {}",
                name(st[2]),
                st[3]
            ),
            other => format!("unknown error code {other} at instruction {}", name(st[2])),
        };
        Error::invalid(format!("persistent decode kernel: {what}"))
    }

    /// A decode step on the persistent kernel: token → greedy token.
    pub(in crate::exec::cuda) fn persistent_token(&mut self, token: u32) -> Result<u32> {
        self.upload_step(&[token])?;
        self.persistent_launch(false)?;
        let t = self.persistent_result()?;
        self.pos += 1;
        Ok(t)
    }

    /// A one-row step on the persistent kernel for `Engine::step` (logits in the logits
    /// buffer; the caller chooses their token and judges non-finite ones); with an observer
    /// that wants data, every group's output is read back and shown to it in schedule
    /// order, as the multi-kernel path does (a tracer names the first node with a NaN).
    pub(in crate::exec::cuda) fn persistent_chunk(
        &mut self,
        toks: &[u32],
        obs: &mut dyn Observer,
    ) -> Result<()> {
        self.upload_step(toks)?;
        self.persistent_launch(false)?;
        self.persistent_status()?;
        if !obs.wants_data() {
            return Ok(());
        }
        for gi in 0..self.sched(Phase::Decode).groups.len() {
            let (id, mut data) = self.persistent_output(gi)?;
            let s = self.sched(Phase::Decode);
            let gr = &s.groups[gi];
            if gr.nodes.len() > 1 {
                let ops: Vec<&str> = self
                    .persistent
                    .as_ref()
                    .expect("in use")
                    .program
                    .instrs
                    .iter()
                    .filter(|i| i.group == Some(gi))
                    .map(|i| i.op.name())
                    .collect();
                obs.group(Some(&format!("persistent:{}", ops.join("+"))), &gr.nodes);
            } else {
                obs.group(None, &[id]);
            }
            obs.node_done(id, self.graph.node(id), self.pos, 1, &mut data)?;
        }
        Ok(())
    }

    /// The output of decode group `gi` after a persistent launch: (node, values).
    fn persistent_output(&self, gi: usize) -> Result<(NodeId, Vec<f32>)> {
        let gr = &self.sched(Phase::Decode).groups[gi];
        let out = gr.output();
        let len = self.graph.node(out).width;
        let p = self.persistent.as_ref().expect("in use");
        let view = match (&gr.kind, p.program.values.offset[out.index()]) {
            // The fused QKV group ends in the V-cache append: its output is the cache row
            // (widened to f32).
            (GroupKind::Qkv { v_cache, .. }, _) => {
                let layer = self.graph.node(*v_cache).layer.expect("a block node");
                let at = self.pos * len;
                return Ok((out, self.cache_values(layer, KvKind::V, at..at + len)?));
            }
            _ if out == self.graph.output() => self.logits.slice(0..len),
            (_, Some(o)) => p.arena.slice(o..o + len),
            (_, None) => {
                return Err(Error::invalid(format!(
                    "group {} has no readable output",
                    gr.name
                )));
            }
        };
        let mut host = vec![0.0f32; len];
        self.dev
            .stream
            .memcpy_dtoh(&view, &mut host)
            .map_err(cuda_err("reading a trace"))?;
        Ok((out, host))
    }

    /// Times one persistent decode step of `token` per instruction (ms, mean of `reps`
    /// launches after one warm-up, all at the same position): each instruction is charged
    /// the time from the latest completion before it to its own completion (%globaltimer
    /// stamps of the last CTA to finish it), so the times add up to the launch's span.
    pub fn profile_persistent(&mut self, token: u32, reps: usize) -> Result<Vec<f32>> {
        if self.persistent.is_none() {
            return Err(Error::invalid("the persistent decode kernel is not in use"));
        }
        self.upload_step(&[token])?;
        let n = self
            .persistent
            .as_ref()
            .expect("in use")
            .program
            .instrs
            .len();
        let mut sum = vec![0.0f64; n];
        for r in 0..=reps.max(1) {
            let mut init = vec![0u64; n + 1];
            init[0] = u64::MAX;
            let p = self.persistent.as_mut().expect("in use");
            self.dev
                .stream
                .memcpy_htod(&init, &mut p.prof)
                .map_err(cuda_err("resetting the profile"))?;
            self.persistent_launch(true)?;
            self.persistent_status()?;
            let p = self.persistent.as_ref().expect("in use");
            let mut stamps = vec![0u64; n + 1];
            self.dev
                .stream
                .memcpy_dtoh(&p.prof, &mut stamps)
                .map_err(cuda_err("reading the profile"))?;
            if r == 0 {
                continue;
            }
            let mut before = stamps[0];
            for (i, s) in sum.iter_mut().enumerate() {
                let end = stamps[i + 1];
                *s += end.saturating_sub(before) as f64 * 1e-6;
                before = before.max(end);
            }
        }
        self.pos += 1;
        let reps = reps.max(1) as f64;
        Ok(sum.iter().map(|s| (s / reps) as f32).collect())
    }

    /// Test access: puts the launch counters in the state after `epoch` launches (to cross
    /// the 2^32 wrap in a few steps), with instruction `lag`'s counter one launch behind
    /// (its consumers then wait until the watchdog fires), and sets the watchdog.
    pub fn persistent_set_state(
        &mut self,
        epoch: u32,
        lag: Option<usize>,
        timeout_ms: u64,
    ) -> Result<()> {
        let Some(p) = self.persistent.as_mut() else {
            return Err(Error::invalid("the persistent decode kernel is not in use"));
        };
        let ctr: Vec<u32> = p
            .program
            .instrs
            .iter()
            .enumerate()
            .map(|(i, ins)| {
                let e = if Some(i) == lag {
                    epoch.wrapping_sub(1)
                } else {
                    epoch
                };
                e.wrapping_mul(ins.items as u32)
            })
            .collect();
        let sync = [epoch, epoch.wrapping_mul(p.program.ctas as u32)];
        p.args.timeout_ns = timeout_ms * 1_000_000;
        let s = &self.dev.stream;
        s.memcpy_htod(&ctr, &mut p.ctr)
            .map_err(cuda_err("setting the counters"))?;
        s.memcpy_htod(&sync, &mut p.sync)
            .map_err(cuda_err("setting the epoch"))?;
        s.memcpy_htod(&[0i32; 4], &mut p.status)
            .map_err(cuda_err("clearing the status"))?;
        self.dev.sync()
    }
}

//! Measurement on the device: per-group kernel times of a decode step and of a prefill
//! (`graphrun dump --profile`) and the achievable read bandwidth (`graphrun bench`'s floor).

use super::args::ReadArgs;
use super::device::cuda_err;
use super::{CudaEngine, UBATCH};
use crate::codegen::KernelId;
use crate::error::Result;
use crate::exec::{Engine, NoObserver};
use crate::sched::Phase;
use cudarc::driver::CudaEvent;
use cudarc::driver::sys::CUevent_flags;
use std::time::Instant;

/// What `profile_prefill` measured, in milliseconds.
#[derive(Clone, Debug)]
pub struct PrefillProfile {
    /// Per prefill group: the time between the events recorded before and after its
    /// launches (the group's kernels, and any wait for the host to issue them), summed over
    /// the prompt's chunks. Recorded back to back without waiting in between, so they add
    /// up to the span of the profiled run.
    pub groups: Vec<f32>,
    /// The prompt run as `graphrun bench` runs it (no events between groups): host time
    /// from the first upload to the last row's logits back on the host.
    pub wall_ms: f64,
    /// The same run between events recorded before its first launch and after its last.
    pub span_ms: f32,
    /// The same run: host time until its last launch had been issued.
    pub issued_ms: f64,
}

impl CudaEngine<'_> {
    fn event(&self) -> Result<CudaEvent> {
        self.dev
            .ctx
            .new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
            .map_err(cuda_err("creating an event"))
    }

    /// Milliseconds between two events recorded around `f`'s launches.
    fn time(&mut self, f: impl FnOnce(&mut Self) -> Result<()>) -> Result<f32> {
        let (e0, e1) = (self.event()?, self.event()?);
        e0.record(&self.dev.stream)
            .map_err(cuda_err("recording an event"))?;
        f(self)?;
        e1.record(&self.dev.stream)
            .map_err(cuda_err("recording an event"))?;
        e1.synchronize().map_err(cuda_err("timing a kernel"))?;
        e0.elapsed_ms(&e1).map_err(cuda_err("timing a kernel"))
    }

    /// Times every group of one decode step of `token` (CUDA events), in milliseconds.
    pub fn profile_decode(&mut self, token: u32) -> Result<Vec<f32>> {
        self.upload_step(&[token])?;
        let mut times = Vec::new();
        for gi in 0..self.sched(Phase::Decode).groups.len() {
            // Every group is idempotent for a fixed position, so it is run back to back and
            // the mean taken: the event overhead (several microseconds) would otherwise
            // dominate the short kernels.
            const REPS: usize = 20;
            self.run_group(Phase::Decode, gi, 1, &(0..1))?;
            let ms = self
                .time(|e| (0..REPS).try_for_each(|_| e.run_group(Phase::Decode, gi, 1, &(0..1))))?;
            times.push(ms / REPS as f32);
        }
        self.pos += 1;
        Ok(times)
    }

    /// Times a prefill of `tokens` from position 0, after one untimed run of it: once with
    /// events around every group, and once as `graphrun bench` runs it.
    pub fn profile_prefill(&mut self, tokens: &[u32]) -> Result<PrefillProfile> {
        let t = tokens.len();
        self.pos = 0;
        self.step(tokens, t - 1..t, &mut NoObserver)?;
        // As bench runs it (`step`, the last row's logits read back), with the host's clock
        // and two events.
        self.pos = 0;
        let (e0, e1) = (self.event()?, self.event()?);
        let h0 = Instant::now();
        e0.record(&self.dev.stream)
            .map_err(cuda_err("recording an event"))?;
        let mut c0 = 0;
        while c0 < t {
            let c1 = (c0 + UBATCH).min(t);
            let lr = (c1 == t).then(|| c1 - c0 - 1..c1 - c0);
            self.run_chunk(&tokens[c0..c1], lr, &mut NoObserver)?;
            self.pos += c1 - c0;
            c0 = c1;
        }
        let issued_ms = h0.elapsed().as_secs_f64() * 1e3;
        e1.record(&self.dev.stream)
            .map_err(cuda_err("recording an event"))?;
        self.read_logits(0..self.vocab())?;
        let wall_ms = h0.elapsed().as_secs_f64() * 1e3;
        let span_ms = e0.elapsed_ms(&e1).map_err(cuda_err("timing a prefill"))?;
        // Again with an event before each group and one after the last, waited for at the end
        // of each chunk.
        self.pos = 0;
        let n = self.sched(Phase::Prefill).groups.len();
        let mut groups = vec![0.0f32; n];
        let mut c0 = 0;
        while c0 < t {
            let c1 = (c0 + UBATCH).min(t);
            let rows = c1 - c0;
            let lr = (c1 == t).then(|| rows - 1..rows);
            self.quantized = None;
            self.upload_step(&tokens[c0..c1])?;
            let mut marks: Vec<(usize, CudaEvent)> = Vec::with_capacity(n + 1);
            for gi in 0..n {
                // At the rows run_chunk runs it.
                let Some((grows, glr)) = self.group_rows(Phase::Prefill, gi, rows, &lr) else {
                    continue;
                };
                let e = self.event()?;
                e.record(&self.dev.stream)
                    .map_err(cuda_err("recording an event"))?;
                marks.push((gi, e));
                let ran = self.run_group(Phase::Prefill, gi, grows, &glr);
                self.row0 = 0;
                ran?;
            }
            let end = self.event()?;
            end.record(&self.dev.stream)
                .map_err(cuda_err("recording an event"))?;
            end.synchronize().map_err(cuda_err("timing a prefill"))?;
            for (i, (gi, e)) in marks.iter().enumerate() {
                let next = marks.get(i + 1).map_or(&end, |(_, e)| e);
                groups[*gi] += e.elapsed_ms(next).map_err(cuda_err("timing a prefill"))?;
            }
            self.pos += rows;
            c0 = c1;
        }
        Ok(PrefillProfile {
            groups,
            wall_ms,
            span_ms,
            issued_ms,
        })
    }

    /// Measured device read bandwidth (bytes/s) of a plain streaming-read kernel over
    /// `bytes` (best of 10, after a warm-up).
    pub fn read_bandwidth(&mut self, bytes: usize) -> Result<f64> {
        let buf = self.dev.zeros::<u8>(bytes)?;
        let sink = self.dev.zeros::<u32>(1)?;
        let a = ReadArgs {
            x: self.ptr(&buf),
            out: self.ptr(&sink),
            n16: (bytes / 16) as u64,
        };
        let grid = self.dev.n_sm * 8;
        self.launch(KernelId::ReadBandwidth, (grid, 1), 512, 0, a)?;
        let mut best = f64::MAX;
        for _ in 0..10 {
            let ms = self.time(|e| e.launch(KernelId::ReadBandwidth, (grid, 1), 512, 0, a))?;
            best = best.min(ms as f64);
        }
        Ok(bytes as f64 / (best / 1000.0))
    }
}

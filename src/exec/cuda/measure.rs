//! Measurement on the device: per-group kernel times of a decode step (`graphrun dump
//! --profile`) and the achievable read bandwidth (`graphrun bench`'s floor).

use super::CudaEngine;
use super::args::ReadArgs;
use super::device::cuda_err;
use crate::codegen::KernelId;
use crate::error::Result;
use crate::sched::Phase;
use cudarc::driver::CudaEvent;
use cudarc::driver::sys::CUevent_flags;

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

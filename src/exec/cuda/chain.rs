//! The pipelined decode loop (`Engine::decode_chain`): one-token steps through the captured
//! decode graph, each fed the token the step before chose, with step i + 1 queued before
//! step i's token is read.
//!
//! The captured step ends in the argmax or the sampler, whose writing thread also makes the
//! step's token the next step's input, advances the position and writes the token to a
//! ring of host-mapped memory at the step's position (`chain_advance`, kernels/argmax.cuh).
//! So a step needs nothing from the host: the host uploads the first token and position,
//! queues the first step, and then for each step i queues step i + 1 (its draw first, when
//! sampling) and waits for step i alone (an event recorded after it) to read its token. The
//! host's turn — reading a token, relaunching the graph — then overlaps the next step on
//! the device instead of standing between steps (`evidence/h100/gap-probe/`: 13–21 µs a
//! token on an H100, 0.7–2% of a step).
//!
//! What the loop adds over `step_argmax`/`step_sample` step by step is one speculative step:
//! when `on_token` stops the run, step i + 1 is already queued. It runs at the next position
//! with the token just passed on (its cache row is written again by whatever runs there
//! next); the host waits for it, keeps its position at the steps it passed on, and takes
//! back the sampler's draw for it, so the sampler goes on as if the step never ran.

use super::CudaEngine;
use super::device::{Device, cuda_err};
use super::step::{Tail, sampler_non_finite};
use crate::codegen::catalogue::CHAIN_RING;
use crate::error::{Error, Result};
use crate::sample::Sampler;
use cudarc::driver::sys::{self, CU_MEMHOSTALLOC_DEVICEMAP};
use cudarc::driver::{CudaEvent, PinnedHostSlice};

/// The host-mapped token ring the chained steps write and the events that mark each step's
/// end (a step's token is read after its event, while the step after it runs).
pub(super) struct ChainRing {
    /// Owns the page-locked slots (freed on drop).
    _host: PinnedHostSlice<i32>,
    /// The slots' host address, taken once (`PinnedHostSlice::as_ptr` synchronizes an event
    /// on every call), and as the device addresses them.
    slots: usize,
    pub dev: u64,
    done: [CudaEvent; 2],
}

impl ChainRing {
    pub fn new(dev: &Device) -> Result<ChainRing> {
        let n = CHAIN_RING as usize;
        // SAFETY: the slots are written below before anything reads them.
        let host = unsafe {
            dev.ctx
                .alloc_pinned_with_flags::<i32>(n, CU_MEMHOSTALLOC_DEVICEMAP)
        }
        .map_err(cuda_err("allocating the decode token ring"))?;
        let p = host
            .as_ptr()
            .map_err(cuda_err("mapping the decode token ring"))? as *mut i32;
        for i in 0..n {
            // SAFETY: `p` points at `n` i32 of page-locked host memory owned by `host`.
            unsafe { p.add(i).write_volatile(-1) };
        }
        let mut dptr: sys::CUdeviceptr = 0;
        // SAFETY: `p` was allocated by cuMemHostAlloc with CU_MEMHOSTALLOC_DEVICEMAP in
        // this context (bound by alloc_pinned_with_flags above).
        unsafe { sys::cuMemHostGetDevicePointer_v2(&mut dptr, p.cast(), 0) }
            .result()
            .map_err(cuda_err("mapping the decode token ring"))?;
        let event = || {
            dev.ctx
                .new_event(None)
                .map_err(cuda_err("creating an event"))
        };
        Ok(ChainRing {
            _host: host,
            slots: p as usize,
            dev: dptr,
            done: [event()?, event()?],
        })
    }

    /// The token of the chained step at `pos` (after that step's event completed).
    fn token(&self, pos: usize) -> i32 {
        let p = self.slots as *const i32;
        // SAFETY: `slots` points at CHAIN_RING i32 owned by `_host`, and the index is below
        // that; the device's write to the slot completed before the step's event did, which
        // the caller waited for.
        unsafe { p.add(pos % CHAIN_RING as usize).read_volatile() }
    }
}

impl CudaEngine<'_> {
    /// Whether `decode_chain` runs here: the captured graph path (not the persistent
    /// kernel), no observer that reads node outputs, a greedy sampler or one the device
    /// samples with, and not turned off (GRAPHRUN_CHAIN=0: step by step, the A/B
    /// reference).
    pub(super) fn chains(&self, sampler: &Sampler, wants_data: bool) -> bool {
        self.chain_on
            && !wants_data
            && self.persistent.is_none()
            && !self.batched
            && (sampler.is_greedy() || self.samples_on_device(sampler.config()))
    }

    /// `Engine::decode_chain` where `chains` holds.
    pub(super) fn decode_chain_run(
        &mut self,
        first: u32,
        n: usize,
        sampler: &mut Sampler,
        on_token: &mut dyn FnMut(u32) -> bool,
    ) -> Result<usize> {
        let vocab = self.vocab();
        crate::exec::check_step(&[first], &(0..1), self.pos, self.n_ctx, vocab)?;
        if n == 0 {
            return Ok(0);
        }
        // The run's last step, at pos + n − 1, must fit too (nothing is queued otherwise).
        if self.pos + n > self.n_ctx {
            return Err(Error::invalid(format!(
                "context length exceeded: {} positions used + {n} decode steps > context size {} (raise --ctx)",
                self.pos, self.n_ctx
            )));
        }
        let greedy = sampler.is_greedy();
        let tail = if greedy { Tail::Argmax } else { Tail::Sample };
        let p0 = self.pos;
        self.upload_step(&[first])?;
        // The sampler as it was before the draw of the step queued last (to take that draw
        // back if the run ends before that step's token is read).
        let mut before = None;
        self.chain_queue(0, tail, sampler, &mut before)?;
        // Steps queued, and steps whose token was read (passed on or refused).
        let (mut queued, mut read, mut passed) = (1, 0, 0);
        let r = (|| {
            for i in 0..n {
                if i + 1 < n {
                    self.chain_queue(i + 1, tail, sampler, &mut before)?;
                    queued += 1;
                }
                self.chain_ring.done[i % 2]
                    .synchronize()
                    .map_err(cuda_err("waiting for a decode step"))?;
                let tok = self.chain_ring.token(p0 + i);
                read += 1;
                if tok as u32 as usize >= vocab {
                    return Err(if greedy {
                        Error::invalid(format!(
                            "the device argmax found no finite logit at position {}",
                            p0 + i
                        ))
                    } else {
                        sampler_non_finite(sampler.config().top_k, p0 + i)
                    });
                }
                self.pos = p0 + i + 1;
                passed += 1;
                if !on_token(tok as u32) {
                    break;
                }
            }
            Ok(())
        })();
        // A step queued past the last token read (the caller stopped, or an error): let it
        // finish and take back its draw.
        if queued > read {
            self.dev.sync()?;
            if let Some(s) = before.take() {
                *sampler = s;
            }
        }
        r.map(|()| passed)
    }

    /// Queues chained step `k`: its draw and sampler parameters (when sampling), the graph,
    /// and its event.
    fn chain_queue(
        &mut self,
        k: usize,
        tail: Tail,
        sampler: &mut Sampler,
        before: &mut Option<Sampler>,
    ) -> Result<()> {
        if let Tail::Sample = tail {
            *before = Some(sampler.clone());
            let u = sampler.draw();
            self.upload_sample_params(&[(sampler.config().clone(), u)])?;
        }
        self.replay(tail)?;
        self.chain_ring.done[k % 2]
            .record(&self.dev.stream)
            .map_err(cuda_err("recording a decode step's event"))
    }
}

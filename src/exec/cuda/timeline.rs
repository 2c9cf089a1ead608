//! Launch timeline of one decode step as the captured CUDA graph runs it (`graphrun dump
//! --stage fused --timeline`). Only a diagnostic build records one: with GRAPHRUN_STAMPS=1
//! at build time every generated kernel's CTAs append {kernel, SM, CTA, entry, wait
//! returned, exit} (%globaltimer) to a buffer of their module (kernels/common.cuh).
//!
//! Why: `dump --profile` times each group alone, run 20 times back to back, so a group
//! whose weights fit the L2 is timed from the L2; inside the step they come from DRAM, and
//! programmatic launches overlap a kernel's start with the one before. The timeline sees
//! the step itself: for every launch, when its CTAs entered, when their wait for the
//! kernel before returned, and when the last one finished.

use super::CudaEngine;
use super::device::cuda_err;
use crate::codegen::{KernelId, STAMPS};
use crate::error::{Error, Result};

/// u64 words per record (STAMP_WORDS in kernels/common.cuh).
const WORDS: usize = 5;
/// Records each module's buffer holds (10 MiB of device memory per module): a 7B step
/// launches about 260 kernels, about 70,000 CTAs in all.
const CAP: usize = 1 << 18;

/// One launch of the step, from its CTAs' records (times in ns of %globaltimer).
#[derive(Clone, Debug)]
pub struct Launch {
    pub kernel: KernelId,
    pub ctas: usize,
    /// Distinct SMs its CTAs ran on.
    pub sms: usize,
    /// First CTA's entry.
    pub entry: u64,
    /// First and last CTA's return from the wait for the kernel before.
    pub wait_first: u64,
    pub wait_last: u64,
    /// Median and last CTA exit.
    pub exit_median: u64,
    pub exit_last: u64,
}

/// A step's launches in the order they ran.
#[derive(Clone, Debug)]
pub struct Timeline {
    pub launches: Vec<Launch>,
}

/// Groups raw records into launches. Every launch of a kernel has `ctas` records, and two
/// launches of one kernel in a step never overlap (other kernels run between them and
/// each waits for the one before), so a kernel's records sorted by entry fall into
/// consecutive runs of `ctas`.
pub fn launches(records: &[[u64; WORDS]]) -> Result<Vec<Launch>> {
    let cat = KernelId::all();
    let mut by_kernel: std::collections::BTreeMap<usize, Vec<[u64; WORDS]>> = Default::default();
    for r in records {
        by_kernel.entry((r[0] >> 48) as usize).or_default().push(*r);
    }
    let mut out = Vec::new();
    for (kid, mut rs) in by_kernel {
        let kernel = *cat.get(kid).ok_or_else(|| {
            Error::invalid(format!(
                "timeline record names kernel {kid}; the catalogue has {}",
                cat.len()
            ))
        })?;
        rs.sort_by_key(|r| r[2]);
        let mut at = 0;
        while at < rs.len() {
            let n = rs[at][1] as usize;
            if n == 0 || at + n > rs.len() {
                return Err(Error::invalid(format!(
                    "timeline of {}: a launch of {n} CTAs but {} records left",
                    kernel.name(),
                    rs.len() - at
                )));
            }
            let run = &rs[at..at + n];
            let mut exits: Vec<u64> = run.iter().map(|r| r[4]).collect();
            exits.sort_unstable();
            let mut sms: Vec<u64> = run.iter().map(|r| (r[0] >> 32) & 0xffff).collect();
            sms.sort_unstable();
            sms.dedup();
            // CTAs that exited without waiting (wait stamp 0) do not count for the wait.
            let entry = run.iter().map(|r| r[2]).min().unwrap();
            let waits = || run.iter().map(|r| r[3]).filter(|&w| w != 0);
            out.push(Launch {
                kernel,
                ctas: n,
                sms: sms.len(),
                entry,
                wait_first: waits().min().unwrap_or(entry),
                wait_last: waits().max().unwrap_or(entry),
                exit_median: exits[n / 2],
                exit_last: exits[n - 1],
            });
            at += n;
        }
    }
    out.sort_by_key(|l| l.entry);
    Ok(out)
}

impl CudaEngine<'_> {
    /// Runs `warmup` decode steps through the captured graph (greedy, feeding each token
    /// back), then one more with every module's timeline buffer armed, and returns its
    /// launches. Errors on a build without GRAPHRUN_STAMPS=1 and with the persistent
    /// decode kernel (one launch; `dump --profile` times its instructions).
    pub fn timeline_decode(&mut self, token: u32, warmup: usize) -> Result<Timeline> {
        if !STAMPS {
            return Err(Error::invalid(
                "--timeline needs a diagnostic build: rebuild with GRAPHRUN_STAMPS=1 (kernels record their launches)",
            ));
        }
        if self.persistent.is_some() {
            return Err(Error::invalid(
                "--timeline records the multi-kernel decode graph; use --decode-kernel graph",
            ));
        }
        let mut tok = token;
        for _ in 0..warmup.max(1) {
            tok = self.decode_graph_step(tok)?;
        }
        let modules = self.kernels.loaded_modules();
        let buf = self.dev.zeros::<u64>(modules.len() * CAP * WORDS)?;
        let base = self.ptr(&buf);
        let stream = self.dev.stream.clone();
        let set = |m: &std::sync::Arc<cudarc::driver::CudaModule>,
                   name: &str,
                   bytes: &[u8]|
         -> Result<()> {
            let mut g = m
                .get_global(name, &stream)
                .map_err(cuda_err("finding a timeline variable"))?;
            stream
                .memcpy_htod(bytes, &mut g)
                .map_err(cuda_err("arming the timeline"))
        };
        for (i, (_, m)) in modules.iter().enumerate() {
            let at = base + (i * CAP * WORDS * 8) as u64;
            set(m, "g_stamps", &at.to_le_bytes())?;
            set(m, "g_stamp_cap", &(CAP as u32).to_le_bytes())?;
            set(m, "g_stamp_n", &0u32.to_le_bytes())?;
        }
        self.decode_graph_step(tok)?;
        let mut records = Vec::new();
        let mut lost = 0u64;
        for (i, (_, m)) in modules.iter().enumerate() {
            let mut n = [0u8; 4];
            let g = m
                .get_global("g_stamp_n", &stream)
                .map_err(cuda_err("finding a timeline variable"))?;
            stream
                .memcpy_dtoh(&g, &mut n)
                .map_err(cuda_err("reading the timeline"))?;
            set(m, "g_stamps", &0u64.to_le_bytes())?;
            let n = u32::from_le_bytes(n) as usize;
            lost += n.saturating_sub(CAP) as u64;
            let n = n.min(CAP);
            if n == 0 {
                continue;
            }
            let mut words = vec![0u64; n * WORDS];
            let off = i * CAP * WORDS;
            stream
                .memcpy_dtoh(&buf.slice(off..off + n * WORDS), &mut words)
                .map_err(cuda_err("reading the timeline"))?;
            records.extend(
                words
                    .chunks_exact(WORDS)
                    .map(|c| [c[0], c[1], c[2], c[3], c[4]]),
            );
        }
        self.dev.sync()?;
        if lost > 0 {
            return Err(Error::invalid(format!(
                "the timeline buffers held {CAP} records per module and {lost} did not fit: this step launches more CTAs than the timeline was sized for (CAP in src/exec/cuda/timeline.rs)"
            )));
        }
        Ok(Timeline {
            launches: launches(&records)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record of kernel `kid`: CTA `cta` of `n` on SM `sm`, entering at `t`, its wait
    /// returning at t + 1 and exiting at t + x.
    fn rec(kid: usize, sm: u64, cta: u64, n: u64, t: u64, x: u64) -> [u64; WORDS] {
        [((kid as u64) << 48) | (sm << 32) | cta, n, t, t + 1, t + x]
    }

    #[test]
    fn records_fall_into_launches_in_step_order() {
        // Kernel 3 launched twice (3 CTAs each, one on a second wave), kernel 7 once between.
        let mut r = vec![
            rec(3, 0, 0, 3, 100, 10),
            rec(3, 1, 1, 3, 101, 12),
            rec(3, 0, 2, 3, 111, 20),
            rec(7, 2, 0, 2, 125, 5),
            [(7 << 48) | (3 << 32) | 1, 2, 126, 0, 135], // exited without waiting
            rec(3, 4, 0, 3, 140, 4),
            rec(3, 5, 1, 3, 141, 4),
            rec(3, 6, 2, 3, 142, 8),
        ];
        r.reverse(); // the append order of the device is arbitrary
        let l = launches(&r).unwrap();
        let cat = KernelId::all();
        assert_eq!(l.len(), 3);
        assert_eq!(
            l.iter().map(|x| x.kernel).collect::<Vec<_>>(),
            vec![cat[3], cat[7], cat[3]]
        );
        assert_eq!((l[0].ctas, l[0].sms), (3, 2));
        assert_eq!(
            (l[0].entry, l[0].wait_first, l[0].wait_last),
            (100, 101, 112)
        );
        assert_eq!((l[0].exit_median, l[0].exit_last), (113, 131));
        assert_eq!((l[1].entry, l[1].exit_last, l[1].sms), (125, 135, 2));
        assert_eq!((l[2].entry, l[2].exit_last), (140, 150));
    }

    #[test]
    fn a_launch_with_missing_records_is_an_error() {
        let r = vec![rec(3, 0, 0, 3, 100, 10), rec(3, 1, 1, 3, 101, 12)];
        let e = launches(&r).unwrap_err().to_string();
        assert!(e.contains("a launch of 3 CTAs but 2 records left"), "{e}");
        let bad = vec![rec(usize::from(u16::MAX), 0, 0, 1, 1, 1)];
        assert!(
            launches(&bad)
                .unwrap_err()
                .to_string()
                .contains("catalogue has")
        );
    }
}

//! The dependencies between instructions: derived from the regions they read and write
//! (`derive_deps`, see the module doc in mod.rs), and checked independently of that
//! derivation (`Program::check`).

use super::instr::{Body, Instr, MAX_DEPS, Program, Region};
use super::sizing::cta_items;
use crate::error::{Error, Result};
use std::collections::HashMap;

/// Transitive predecessors (by dependencies) of each instruction, as bit sets.
fn closure(instrs: &[Instr]) -> Vec<Vec<u64>> {
    let words = instrs.len().div_ceil(64);
    let mut c: Vec<Vec<u64>> = Vec::with_capacity(instrs.len());
    for ins in instrs {
        let mut set = vec![0u64; words];
        for &d in &ins.deps {
            set[d / 64] |= 1 << (d % 64);
            for (w, x) in set.iter_mut().zip(&c[d]) {
                *w |= x;
            }
        }
        c.push(set);
    }
    c
}

fn has(set: &[u64], i: usize) -> bool {
    set[i / 64] >> (i % 64) & 1 == 1
}

/// Sets every instruction's dependencies from its regions (see the module doc).
pub(super) fn derive_deps(instrs: &mut [Instr]) -> Result<()> {
    let mut last_writer: HashMap<Region, usize> = HashMap::new();
    let mut readers: HashMap<Region, Vec<usize>> = HashMap::new();
    for j in 0..instrs.len() {
        let mut need: Vec<usize> = Vec::new();
        for r in &instrs[j].reads {
            match (last_writer.get(r), r) {
                (Some(&w), _) => need.push(w),
                (None, Region::Token | Region::KCache(_) | Region::VCache(_)) => {}
                (None, _) => {
                    return Err(Error::invalid(format!(
                        "instruction {j} ({}) reads {r:?}, which no earlier instruction writes",
                        instrs[j].name
                    )));
                }
            }
        }
        for r in &instrs[j].writes {
            need.extend(last_writer.get(r));
            need.extend(readers.get(r).into_iter().flatten());
        }
        need.sort_unstable();
        need.dedup();
        let c = closure(&instrs[..j]);
        let direct: Vec<usize> = need
            .iter()
            .copied()
            .filter(|&d| !need.iter().any(|&e| e != d && has(&c[e], d)))
            .collect();
        if direct.len() > MAX_DEPS {
            return Err(Error::invalid(format!(
                "instruction {j} ({}) would wait for {} producers; the kernel takes {MAX_DEPS}",
                instrs[j].name,
                direct.len()
            )));
        }
        instrs[j].deps = direct;
        for r in instrs[j].reads.clone() {
            readers.entry(r).or_default().push(j);
        }
        for r in instrs[j].writes.clone() {
            last_writer.insert(r, j);
            readers.insert(r, Vec::new());
        }
    }
    Ok(())
}

impl Program {
    /// The program's invariants, checked independently of how dependencies were derived:
    /// dependencies point backwards (at most MAX_DEPS); every region read has its last
    /// earlier writer among the reader's transitive producers, and every region written has
    /// all earlier readers and writers among them; every instruction has work; matvec
    /// tiles cover their rows exactly once across the CTAs.
    pub fn check(&self) -> Result<()> {
        let bad = |j: usize, what: String| {
            Err(Error::invalid(format!(
                "persistent program, instruction {j} ({}): {what}",
                self.instrs[j].name
            )))
        };
        let c = closure(&self.instrs);
        for (j, ins) in self.instrs.iter().enumerate() {
            if ins.deps.len() > MAX_DEPS || ins.deps.iter().any(|&d| d >= j) {
                return bad(
                    j,
                    format!("dependencies {:?} do not point backwards", ins.deps),
                );
            }
            if ins.items == 0 {
                return bad(j, "no work items".into());
            }
            for (i, prev) in self.instrs[..j].iter().enumerate() {
                let raw = ins.reads.iter().any(|r| prev.writes.contains(r));
                let war = ins
                    .writes
                    .iter()
                    .any(|r| prev.reads.contains(r) || prev.writes.contains(r));
                if (raw || war) && !has(&c[j], i) {
                    return bad(
                        j,
                        format!(
                            "shares a buffer with instruction {i} ({}) without waiting for it",
                            prev.name
                        ),
                    );
                }
            }
            if let Body::Matvec {
                rows, tile_rows, ..
            } = ins.body
            {
                let mut next = 0;
                for cta in 0..self.ctas {
                    let r = cta_items(ins.items, cta, self.ctas);
                    if r.start != next {
                        return bad(
                            j,
                            format!("CTA {cta} starts at tile {} not {next}", r.start),
                        );
                    }
                    next = r.end;
                }
                if next != ins.items
                    || ins.items * tile_rows < rows
                    || (ins.items - 1) * tile_rows >= rows
                {
                    return bad(
                        j,
                        format!(
                            "{} tiles of {tile_rows} rows do not cover {rows} rows",
                            ins.items
                        ),
                    );
                }
            }
        }
        Ok(())
    }
}

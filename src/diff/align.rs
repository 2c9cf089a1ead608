//! Pairing the records of two traces: by node name and position. Most records pair one to
//! one; a prefill that one executor ran in chunks (the GPU: 2,048 rows at a time) and the other
//! in one pass gives one side several records where the other has one. Then the rows are
//! split at every boundary of either side when both carry full tensors (so each chunk is
//! judged on its own positions), and otherwise merged until both sides end at the same
//! position (stats combine exactly; only the NMSE lower bound is available anyway).

use super::Trace;
use crate::trace::{Record, Stats};
use std::collections::BTreeMap;

/// How a segment's records were paired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum How {
    /// One record on each side, same positions.
    Same,
    /// Rows cut out of larger records at a boundary of the other side.
    Split,
    /// Several consecutive records of one or both sides taken together.
    Merged,
}

/// Positions `pos .. pos + rows` of one node, with the records covering them on each side.
pub(super) struct Segment<'t> {
    pub a: Vec<&'t Record>,
    pub b: Vec<&'t Record>,
    pub pos: usize,
    pub rows: usize,
    pub how: How,
}

pub(super) struct Alignment<'t> {
    pub segments: Vec<Segment<'t>>,
    /// `node@pos` of rows only one side recorded.
    pub only_a: Vec<String>,
    pub only_b: Vec<String>,
}

fn end(r: &Record) -> usize {
    r.pos + r.shape[0]
}

/// Every node's records, sorted by position.
fn by_node(t: &Trace) -> BTreeMap<&str, Vec<&Record>> {
    let mut m: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
    for r in &t.records {
        m.entry(r.node.as_str()).or_default().push(r);
    }
    for v in m.values_mut() {
        v.sort_by_key(|r| r.pos);
    }
    m
}

pub(super) fn align<'t>(a: &'t Trace, b: &'t Trace) -> Alignment<'t> {
    let (ma, mb) = (by_node(a), by_node(b));
    let mut out = Alignment {
        segments: Vec::new(),
        only_a: Vec::new(),
        only_b: Vec::new(),
    };
    for (node, ra) in &ma {
        let Some(rb) = mb.get(node) else {
            out.only_a
                .extend(ra.iter().map(|r| format!("{}@{}", r.node, r.pos)));
            continue;
        };
        let tensors = ra.iter().chain(rb.iter()).all(|r| r.tensor.is_some());
        if tensors {
            split(ra, rb, &mut out);
        } else {
            merge(ra, rb, &mut out);
        }
    }
    for (node, rb) in &mb {
        if !ma.contains_key(node) {
            out.only_b
                .extend(rb.iter().map(|r| format!("{}@{}", r.node, r.pos)));
        }
    }
    out
}

/// The finest common partition: every boundary of either side cuts the rows.
fn split<'t>(ra: &[&'t Record], rb: &[&'t Record], out: &mut Alignment<'t>) {
    let mut cuts: Vec<usize> = ra.iter().chain(rb).flat_map(|r| [r.pos, end(r)]).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let covering = |rs: &[&'t Record], s: usize, e: usize| {
        rs.iter().copied().find(|r| r.pos <= s && e <= end(r))
    };
    for w in cuts.windows(2) {
        let (s, e) = (w[0], w[1]);
        match (covering(ra, s, e), covering(rb, s, e)) {
            (Some(x), Some(y)) => {
                let same = x.pos == y.pos && end(x) == end(y);
                out.segments.push(Segment {
                    a: vec![x],
                    b: vec![y],
                    pos: s,
                    rows: e - s,
                    how: if same { How::Same } else { How::Split },
                });
            }
            (Some(x), None) => out.only_a.push(format!("{}@{s}", x.node)),
            (None, Some(y)) => out.only_b.push(format!("{}@{s}", y.node)),
            (None, None) => {}
        }
    }
}

/// The coarsest common partition: consecutive records are taken together until both sides
/// end at the same position. Records with no counterpart go to the one-side lists.
fn merge<'t>(ra: &[&'t Record], rb: &[&'t Record], out: &mut Alignment<'t>) {
    let (mut i, mut j) = (0, 0);
    while i < ra.len() && j < rb.len() {
        let (x, y) = (ra[i], rb[j]);
        if end(x) <= y.pos {
            out.only_a.push(format!("{}@{}", x.node, x.pos));
            i += 1;
            continue;
        }
        if end(y) <= x.pos {
            out.only_b.push(format!("{}@{}", y.node, y.pos));
            j += 1;
            continue;
        }
        let (mut ga, mut gb) = (vec![x], vec![y]);
        let (mut ea, mut eb) = (end(x), end(y));
        let mut ok = x.pos == y.pos;
        // Extend the side that ends first with its next record, if contiguous.
        while ok && ea != eb {
            let next = if ea < eb {
                ra.get(i + ga.len()).filter(|n| n.pos == ea)
            } else {
                rb.get(j + gb.len()).filter(|n| n.pos == eb)
            };
            match next {
                Some(n) if ea < eb => {
                    ea = end(n);
                    ga.push(n);
                }
                Some(n) => {
                    eb = end(n);
                    gb.push(n);
                }
                None => ok = false,
            }
        }
        let (na, nb) = (ga.len(), gb.len());
        if ok {
            out.segments.push(Segment {
                pos: x.pos,
                rows: ea - x.pos,
                how: if na == 1 && nb == 1 {
                    How::Same
                } else {
                    How::Merged
                },
                a: ga,
                b: gb,
            });
        } else {
            out.only_a
                .extend(ga.iter().map(|r| format!("{}@{}", r.node, r.pos)));
            out.only_b
                .extend(gb.iter().map(|r| format!("{}@{}", r.node, r.pos)));
        }
        i += na;
        j += nb;
    }
    out.only_a
        .extend(ra[i..].iter().map(|r| format!("{}@{}", r.node, r.pos)));
    out.only_b
        .extend(rb[j..].iter().map(|r| format!("{}@{}", r.node, r.pos)));
}

/// Stats of several records' rows taken together (counts, sums and extrema combine exactly;
/// the L2 norm as the root of the summed squares).
pub(super) fn merged_stats(rs: &[&Record]) -> Stats {
    if let [one] = rs {
        return one.stats;
    }
    let finite = |s: &Stats| (s.count - s.nan - s.inf) as f64;
    let n: f64 = rs.iter().map(|r| finite(&r.stats)).sum();
    let sum: f64 = rs.iter().map(|r| r.stats.mean * finite(&r.stats)).sum();
    let mean = if n > 0.0 { sum / n } else { 0.0 };
    let sq: f64 = rs.iter().map(|r| r.stats.l2 * r.stats.l2).sum();
    let var = if n > 0.0 {
        (sq / n - mean * mean).max(0.0)
    } else {
        0.0
    };
    Stats {
        count: rs.iter().map(|r| r.stats.count).sum(),
        mean,
        std: var.sqrt(),
        min: rs.iter().map(|r| r.stats.min).fold(f64::INFINITY, f64::min),
        max: rs
            .iter()
            .map(|r| r.stats.max)
            .fold(f64::NEG_INFINITY, f64::max),
        l2: sq.sqrt(),
        nan: rs.iter().map(|r| r.stats.nan).sum(),
        inf: rs.iter().map(|r| r.stats.inf).sum(),
    }
}

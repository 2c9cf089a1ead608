//! Fault injection (`--inject NODE:KIND`, for tests and debugging): perturbs exactly one
//! graph node in one executor, so that `graphrun diff` can be shown to name that node as the
//! first divergence. A fault is a property of the node (`Node::fault`): the interpreter
//! applies it in the node's op, the scheduler gives a faulted node a kernel of its own
//! (so fusion never hides it) and the CUDA executor applies it to that kernel.
//!
//! Kinds:
//! - `scale=S`: the node's output is multiplied by S (any node);
//! - `bias=off`: a `bias_add` node passes its input through without adding the bias;
//! - `offset=N`: a `rope` node rotates as if every position were N further along (N ≥ 0).

use crate::error::{Error, Result};
pub use crate::graph::FaultKind;
use crate::graph::{Graph, Op};
use std::fmt;
use std::str::FromStr;

/// One `--inject` argument: `NODE:KIND`.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    pub node: String,
    pub kind: FaultKind,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.node, self.kind)
    }
}

const KINDS: &str = "scale=S, bias=off or offset=N";

impl FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Fault, String> {
        let (node, kind) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("`{s}`: expected NODE:KIND with KIND one of {KINDS}"))?;
        if node.is_empty() {
            return Err(format!("`{s}`: the node name is empty"));
        }
        let (k, v) = kind
            .split_once('=')
            .ok_or_else(|| format!("`{s}`: KIND `{kind}` is not one of {KINDS}"))?;
        let kind = match k {
            "scale" => {
                let x: f32 = v
                    .parse()
                    .map_err(|_| format!("`{s}`: scale `{v}` is not a number"))?;
                if !x.is_finite() {
                    return Err(format!("`{s}`: scale must be finite"));
                }
                FaultKind::Scale(x)
            }
            "bias" if v == "off" => FaultKind::BiasOff,
            "offset" => FaultKind::Offset(v.parse().map_err(|_| {
                format!("`{s}`: offset `{v}` is not a non-negative whole number of positions")
            })?),
            _ => return Err(format!("`{s}`: KIND `{kind}` is not one of {KINDS}")),
        };
        Ok(Fault {
            node: node.to_string(),
            kind,
        })
    }
}

/// Marks the faulted nodes of `g`. Errors name the fault and say what was expected: an
/// unknown node (with the closest names), or a kind the node's op cannot take.
pub fn inject(g: &mut Graph, faults: &[Fault]) -> Result<()> {
    for f in faults {
        let id = g.find(&f.node).ok_or_else(|| {
            let near: Vec<&str> = g
                .nodes()
                .map(|(_, n)| n.name.as_str())
                .filter(|n| n.ends_with(f.node.rsplit('.').next().unwrap_or("")))
                .take(3)
                .collect();
            Error::invalid(format!(
                "--inject {f}: the graph has no node `{}`{}",
                f.node,
                if near.is_empty() {
                    " (see `graphrun dump MODEL --stage lowered`)".to_string()
                } else {
                    format!(" (similar: {})", near.join(", "))
                }
            ))
        })?;
        let node = g.node(id);
        let ok = match f.kind {
            FaultKind::Scale(_) => true,
            FaultKind::BiasOff => matches!(node.op, Op::BiasAdd),
            FaultKind::Offset(_) => matches!(node.op, Op::Rope { .. }),
        };
        if !ok {
            let want = match f.kind {
                FaultKind::BiasOff => {
                    "bias=off applies to bias_add nodes (`blk.N.attn_q_bias`, ...)"
                }
                _ => "offset=N applies to rope nodes (`blk.N.attn_rope_q`, `blk.N.attn_rope_k`)",
            };
            return Err(Error::invalid(format!(
                "--inject {f}: `{}` is a {} node; {want}",
                f.node,
                node.op.name()
            )));
        }
        if node.fault.is_some() {
            return Err(Error::invalid(format!(
                "--inject {f}: `{}` already has a fault; one per node",
                f.node
            )));
        }
        g.set_fault(id, f.kind);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind_and_rejects_bad_ones() {
        let f: Fault = "blk.3.ffn_gate:scale=1.001".parse().unwrap();
        assert_eq!(f.node, "blk.3.ffn_gate");
        assert_eq!(f.kind, FaultKind::Scale(1.001));
        assert_eq!(
            "blk.0.attn_k_bias:bias=off".parse::<Fault>().unwrap().kind,
            FaultKind::BiasOff
        );
        assert_eq!(
            "blk.5.attn_rope_q:offset=1".parse::<Fault>().unwrap().kind,
            FaultKind::Offset(1)
        );
        for bad in [
            "blk.3.ffn_gate",
            ":scale=2",
            "x:scale=abc",
            "x:scale=inf",
            "x:bias=on",
            "x:offset=-1",
            "x:jitter=1",
        ] {
            assert!(bad.parse::<Fault>().is_err(), "{bad} should not parse");
        }
    }
}

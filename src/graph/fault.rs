//! The fault a node may carry (`Node::fault`): a deliberate perturbation for tests and
//! debugging, parsed and attached by `crate::fault`, applied by each executor to that node.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FaultKind {
    /// The node's output is multiplied by S.
    Scale(f32),
    /// A `bias_add` node passes its input through without the bias.
    BiasOff,
    /// A `rope` node rotates as if every position were N further along.
    Offset(u32),
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultKind::Scale(s) => write!(f, "scale={s}"),
            FaultKind::BiasOff => write!(f, "bias=off"),
            FaultKind::Offset(n) => write!(f, "offset={n}"),
        }
    }
}

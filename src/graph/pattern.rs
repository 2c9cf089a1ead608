//! Node-name patterns for choosing nodes by name (`--nodes`, `--tensors`): globs with `*`
//! (any run) and `?` (one character), comma separated, e.g. `blk.3.*,logits`.

/// Glob patterns (`*` any run, `?` one char), comma separated: `blk.3.*,logits`.
#[derive(Clone, Debug)]
pub struct NodePattern(Vec<String>);

impl NodePattern {
    pub fn new(s: &str) -> NodePattern {
        NodePattern(
            s.split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect(),
        )
    }
    pub fn all() -> NodePattern {
        NodePattern(vec!["*".into()])
    }
    pub fn matches(&self, name: &str) -> bool {
        self.0.iter().any(|p| glob(p.as_bytes(), name.as_bytes()))
    }
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|i| glob(rest, &s[i..])),
        Some((b'?', rest)) => !s.is_empty() && glob(rest, &s[1..]),
        Some((c, rest)) => s.first() == Some(c) && glob(rest, &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_node_names() {
        let p = NodePattern::new("blk.3.*, logits");
        assert!(p.matches("blk.3.ffn_gate"));
        assert!(p.matches("logits"));
        assert!(!p.matches("blk.30.ffn_gate"));
        assert!(!p.matches("blk.4.attn"));
        assert!(NodePattern::new("blk.?.attn").matches("blk.7.attn"));
        assert!(NodePattern::all().matches("anything"));
    }
}

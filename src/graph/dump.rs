//! `graphrun dump --stage lowered`: the graph as text, JSON or Graphviz DOT.

use super::{Graph, Node, NodePattern, Op};
use serde_json::json;
use std::fmt::Write as _;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DumpFormat {
    Text,
    Json,
    Dot,
}

/// Op parameters worth showing next to the op name.
fn params(n: &Node) -> String {
    match &n.op {
        Op::RmsNorm { eps } => format!("eps={eps:e}"),
        Op::MatMul { act } => format!("act={}", act.name()),
        Op::Rope {
            rope,
            base,
            n_head,
            head_dim,
        } => format!("{rope:?} base={base} heads={n_head}x{head_dim}"),
        Op::KvAppend { layer, cache, kv } => {
            format!("cache={cache:?} layer={layer} kv={}", kv.name())
        }
        Op::Attention {
            n_head,
            n_head_kv,
            head_dim,
            scale,
            kv,
            ..
        } => {
            format!(
                "heads={n_head} kv_heads={n_head_kv} dim={head_dim} scale={scale} kv={}",
                kv.name()
            )
        }
        _ => String::new(),
    }
}

/// The nodes matching `nodes` (all of them for `NodePattern::all()`) in `format`.
pub fn dump(g: &Graph, format: DumpFormat, nodes: &NodePattern) -> String {
    match format {
        DumpFormat::Text => text(g, nodes),
        DumpFormat::Json => serde_json::to_string_pretty(&to_json(g, nodes)).expect("json"),
        DumpFormat::Dot => dot(g, nodes),
    }
}

fn text(g: &Graph, nodes: &NodePattern) -> String {
    let mut s = String::new();
    let wbytes: u64 = g
        .nodes()
        .filter_map(|(_, n)| n.weight.as_ref())
        .map(|w| w.bytes)
        .sum();
    let shown = g.nodes().filter(|(_, n)| nodes.matches(&n.name)).count();
    writeln!(
        s,
        "graph {}: {} layers, {} nodes{}, {} weight bytes read per token row",
        g.arch,
        g.hparams.n_layer,
        g.len(),
        if shown < g.len() {
            format!(" ({shown} shown)")
        } else {
            String::new()
        },
        wbytes
    )
    .unwrap();
    for (id, n) in g.nodes().filter(|(_, n)| nodes.matches(&n.name)) {
        let ins: Vec<String> = if n.inputs.is_empty() {
            vec!["tokens".into()]
        } else {
            n.inputs.iter().map(|i| g.node(*i).name.clone()).collect()
        };
        write!(
            s,
            "%{:<4} {:<22} {:<10} [T, {:>6}] f32  <- {:<40}",
            id.0,
            n.name,
            n.op.name(),
            n.width,
            ins.join(", ")
        )
        .unwrap();
        if let Some(w) = &n.weight {
            write!(s, "  {} {} {:?} {}B", w.name, w.dtype, w.shape, w.bytes).unwrap();
        }
        let p = params(n);
        if !p.is_empty() {
            write!(s, "  {p}").unwrap();
        }
        s.push('\n');
    }
    s
}

pub fn to_json(g: &Graph, pattern: &NodePattern) -> serde_json::Value {
    let nodes: Vec<_> = g
        .nodes()
        .filter(|(_, n)| pattern.matches(&n.name))
        .map(|(id, n)| {
            json!({
                "id": id.0,
                "name": n.name,
                "op": n.op,
                "inputs": n.inputs.iter().map(|i| i.0).collect::<Vec<_>>(),
                "input_names": n.inputs.iter().map(|i| g.node(*i).name.clone()).collect::<Vec<_>>(),
                "shape": ["T", n.width],
                "dtype": "f32",
                "layer": n.layer,
                "weight": n.weight,
            })
        })
        .collect();
    json!({ "stage": "lowered", "arch": g.arch, "hparams": g.hparams, "nodes": nodes })
}

/// DOT of the matching nodes, clustered per block; an input from outside the selection is
/// drawn as a small ellipse with its name, so one block renders as a readable picture.
fn dot(g: &Graph, pattern: &NodePattern) -> String {
    let mut s = format!(
        "digraph \"{}\" {{\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\", fontsize=10];\n",
        g.arch
    );
    let mut current: Option<usize> = None;
    for (id, n) in g.nodes().filter(|(_, n)| pattern.matches(&n.name)) {
        if n.layer != current {
            if current.is_some() {
                s.push_str("  }\n");
            }
            if let Some(l) = n.layer {
                writeln!(
                    s,
                    "  subgraph cluster_blk_{l} {{\n    label=\"blk.{l}\"; style=rounded;"
                )
                .unwrap();
            }
            current = n.layer;
        }
        let w = n
            .weight
            .as_ref()
            .map_or(String::new(), |w| format!("\\n{} {}", w.name, w.dtype));
        writeln!(
            s,
            "    n{} [label=\"{}\\n{} [T,{}]{}\"];",
            id.0,
            n.name,
            n.op.name(),
            n.width,
            w
        )
        .unwrap();
    }
    if current.is_some() {
        s.push_str("  }\n");
    }
    s.push_str("  tokens [shape=ellipse];\n");
    let mut outside = Vec::new();
    for (id, n) in g.nodes().filter(|(_, n)| pattern.matches(&n.name)) {
        if n.inputs.is_empty() {
            writeln!(s, "  tokens -> n{};", id.0).unwrap();
        }
        for i in &n.inputs {
            if !pattern.matches(&g.node(*i).name) && !outside.contains(i) {
                outside.push(*i);
                writeln!(
                    s,
                    "  n{} [shape=ellipse, style=dashed, label=\"{}\"];",
                    i.0,
                    g.node(*i).name
                )
                .unwrap();
            }
            writeln!(s, "  n{} -> n{};", i.0, id.0).unwrap();
        }
    }
    s.push_str("}\n");
    s
}

//! Which contract judges a comparison, and which of its bands judges a record.

use super::Side;
use crate::codegen::{Epi, KernelId};
use crate::contracts::{self, Band, Contract};
use crate::error::{Error, Result};
use crate::exec::Executor;
use crate::graph::{ActSemantics, KvType};
use crate::trace::Record;
use std::path::Path;

/// The contract for a comparison when none is given: different activation semantics or
/// KV cache types (f16 rounds K and V) → `trace_cross_semantics`; two interpreter runs (any file format) → `trace_exact` (the
/// interpreter is deterministic, and GGUF vs APR must be bit-identical); anything else
/// (GPU vs interpreter, fused vs unfused) → `trace_same_semantics`.
pub fn choose_contract(a: &Side, b: &Side) -> (&'static str, String) {
    match (a.act, b.act) {
        (Some(x), Some(y)) if x != y => {
            return (
                "trace_cross_semantics",
                format!("activation semantics differ ({} vs {})", x.name(), y.name()),
            );
        }
        _ => {}
    }
    match (a.kv, b.kv) {
        (Some(x), Some(y)) if x != y => {
            return (
                "trace_cross_semantics",
                format!("KV cache types differ ({} vs {})", x.name(), y.name()),
            );
        }
        _ => {}
    }
    if a.executor == Some(Executor::Interp) && b.executor == Some(Executor::Interp) {
        (
            "trace_exact",
            "both traces come from the deterministic CPU interpreter with the same semantics"
                .to_string(),
        )
    } else {
        (
            "trace_same_semantics",
            format!(
                "same semantics, different executors or schedules ({} vs {})",
                a.label(),
                b.label()
            ),
        )
    }
}

/// Loads a contract by name (`trace_exact`) or from a `.toml` path.
pub fn load_contract(spec: &str) -> Result<Contract> {
    if spec.ends_with(".toml") || spec.contains('/') {
        return contracts::load_file(Path::new(spec));
    }
    contracts::load(spec)
}

/// The band classes of a record, most specific first (see `classes`).
pub fn record_class(r: &Record, output_node: Option<&str>) -> Vec<String> {
    classes(&r.node, &r.op, r.group.as_deref(), output_node)
}

/// The band classes of a node's output, most specific first: the fused group's class (from
/// its kernels `group`: `qkv`, `gate_up`, `matvec_add`, `norm_matvec`) when the output is a
/// fused group's, `logits` for the graph's output node, then the node's op (`matmul`, ...).
pub fn classes(
    node: &str,
    op: &str,
    group: Option<&str>,
    output_node: Option<&str>,
) -> Vec<String> {
    let mut c = Vec::new();
    if let Some(g) = group {
        let last = g.rsplit('+').next().and_then(KernelId::parse);
        let class = match last {
            Some(KernelId::Qkv { .. }) => Some("qkv"),
            Some(KernelId::Matvec {
                epi: Epi::Swiglu, ..
            }) => Some("gate_up"),
            Some(KernelId::Matvec { epi: Epi::Add, .. }) => Some("matvec_add"),
            Some(KernelId::Matvec { epi: Epi::None, .. }) => Some("norm_matvec"),
            _ => None,
        };
        c.extend(class.map(String::from));
    }
    if output_node == Some(node) {
        c.push("logits".into());
    }
    c.push(op.to_string());
    c
}

/// The semantics keys of one side: activation semantics, and with it the KV cache type
/// where that changes the arithmetic (`f32_kvf16`: f32 math over an f16 cache, whose
/// rounding flips are larger than f32 reassociation), most specific first.
fn sem_keys(act: ActSemantics, kv: KvType) -> [String; 2] {
    [
        format!("{}_kv{}", act.name(), kv.name()),
        act.name().to_string(),
    ]
}

/// The NMSE band of a record of class `classes` (see `record_class`) under contract `c`,
/// for the semantics of both sides (activations, KV cache type) and the kind of weights:
/// table `nmse_real` when `real` and it has a table for the semantics, else `nmse`; in it
/// `<act>_kv<kv>.<class>`, `<act>.<class>` (classes in order), then `.default` of each,
/// `<class>`, `default`. With two different semantics the stricter band applies.
pub fn band(
    c: &Contract,
    sides: [(ActSemantics, KvType); 2],
    classes: &[String],
    real: bool,
) -> Result<f64> {
    let num = |b: Option<&Band>| match b {
        Some(Band::Value(v)) => Some(*v),
        _ => None,
    };
    let one = |(act, kv): (ActSemantics, KvType)| -> Option<f64> {
        let keys = sem_keys(act, kv);
        let sem = keys
            .iter()
            .find(|k| {
                c.get(&["nmse", k.as_str()]).is_some()
                    || c.get(&["nmse_real", k.as_str()]).is_some()
            })
            .map_or(act.name(), |k| k.as_str());
        let table = if real && c.get(&["nmse_real", sem]).is_some() {
            "nmse_real"
        } else {
            "nmse"
        };
        let get = |path: &[&str]| num(c.get(&[&[table], path].concat()));
        classes
            .iter()
            .find_map(|k| get(&[sem, k]))
            .or_else(|| get(&[sem, "default"]))
            .or_else(|| classes.iter().find_map(|k| get(&[k])))
            .or_else(|| get(&["default"]))
    };
    let mut best: Option<f64> = None;
    for side in sides {
        if let Some(b) = one(side) {
            best = Some(best.map_or(b, |x: f64| x.min(b)));
        }
    }
    best.ok_or_else(|| {
        Error::invalid(format!(
            "contract `{}` ({}) has no band `nmse.default` (nor one for {}, act {}/{})",
            c.name,
            c.source,
            classes.join("/"),
            sides[0].0.name(),
            sides[1].0.name()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    const F32: (ActSemantics, KvType) = (ActSemantics::F32, KvType::F32);
    const Q8: (ActSemantics, KvType) = (ActSemantics::Q8, KvType::F32);
    const F32_KV16: (ActSemantics, KvType) = (ActSemantics::F32, KvType::F16);

    fn contract(bands: &str) -> Contract {
        Contract::parse(
            &format!("contract = \"t\"\ninvariant = \"\"\ntests = []\n{bands}"),
            "t",
        )
        .unwrap()
    }

    /// Every key a band lookup may use below the semantics level: for tests that check that
    /// each key in a contract is read by this code.
    const CLASS_KEYS: &[&str] = &[
        "qkv",
        "gate_up",
        "matvec_add",
        "norm_matvec",
        "logits",
        "embedding",
        "rms_norm",
        "matmul",
        "bias_add",
        "rope",
        "kv_append",
        "attention",
        "silu",
        "mul",
        "add",
        "default",
    ];

    fn cls(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn band_lookup_order_stricter_side_and_real_weights() {
        let c = contract(
            "[bands.nmse]\ndefault = 0.1\nrope = 0.2\n[bands.nmse.f32]\ndefault = 1e-8\nlogits = 1e-9\n[bands.nmse.q8]\ndefault = 5e-3\n[bands.nmse_real.q8]\nmatmul = 5e-2\ndefault = 1e-2\n",
        );
        assert_eq!(band(&c, [Q8, Q8], &cls(&["matmul"]), false).unwrap(), 5e-3);
        assert_eq!(band(&c, [Q8, Q8], &cls(&["matmul"]), true).unwrap(), 5e-2);
        assert_eq!(band(&c, [Q8, Q8], &cls(&["add"]), true).unwrap(), 1e-2);
        // f32 has no real-weights table: the general one applies.
        assert_eq!(band(&c, [F32, F32], &cls(&["matmul"]), true).unwrap(), 1e-8);
        // A more specific class wins (the logits node is a matmul).
        assert_eq!(
            band(&c, [F32, F32], &cls(&["logits", "matmul"]), false).unwrap(),
            1e-9
        );
        // Different semantics: the stricter side's band.
        assert_eq!(band(&c, [F32, Q8], &cls(&["matmul"]), false).unwrap(), 1e-8);
        // An f16 cache has its own f32 table when the contract gives one, else the act's.
        let kv =
            contract("[bands.nmse.f32]\ndefault = 1e-8\n[bands.nmse.f32_kvf16]\ndefault = 2e-6\n");
        assert_eq!(
            band(&kv, [F32_KV16, F32_KV16], &cls(&["add"]), false).unwrap(),
            2e-6
        );
        assert_eq!(band(&kv, [F32, F32], &cls(&["add"]), false).unwrap(), 1e-8);
        assert_eq!(
            band(&c, [F32_KV16, F32_KV16], &cls(&["matmul"]), false).unwrap(),
            1e-8
        );
        let per_op = contract("[bands.nmse]\ndefault = 0.1\nrope = 0.2\n");
        assert_eq!(
            band(&per_op, [Q8, Q8], &cls(&["rope"]), false).unwrap(),
            0.2
        );
        assert_eq!(band(&per_op, [Q8, Q8], &cls(&["add"]), false).unwrap(), 0.1);
        let empty = contract("[bands.nmse.q8]\nmatmul = 1\n");
        let e = band(&empty, [F32, F32], &cls(&["add"]), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("nmse.default"), "{e}");
    }

    #[test]
    fn every_band_key_of_the_trace_contracts_is_read_by_the_lookup() {
        for name in [
            "trace_exact",
            "trace_same_semantics",
            "trace_cross_semantics",
        ] {
            let c = contracts::load(name).unwrap();
            for key in c.leaf_keys() {
                let parts: Vec<&str> = key.split('.').collect();
                assert!(
                    matches!(parts[0], "nmse" | "nmse_real"),
                    "{name}: band `{key}` is not read by graphrun diff"
                );
                let rest = &parts[1..];
                let ok = match rest {
                    [k] => CLASS_KEYS.contains(k),
                    [sem, k] => {
                        let sems: Vec<String> = [ActSemantics::F32, ActSemantics::Q8]
                            .into_iter()
                            .flat_map(|a| [KvType::F16, KvType::F32].map(|kv| sem_keys(a, kv)))
                            .flatten()
                            .collect();
                        sems.iter().any(|x| x == sem) && CLASS_KEYS.contains(k)
                    }
                    _ => false,
                };
                assert!(ok, "{name}: band `{key}` is not read by graphrun diff");
            }
        }
    }
}

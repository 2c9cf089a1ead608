//! Where the interpreter spends its time: wall time per op type (and weight type) over one
//! prefill of T tokens followed by 20 decode steps, on the cached 0.5B model.
//! Run: `cargo run --release --example op_profile -- T [q8|f32]`.

use graphrun::exec::{Observer, interp::Interpreter};
use graphrun::graph::{ActSemantics, LowerOptions, Node, NodeId, lower};
use graphrun::model::ModelFile;
use std::collections::BTreeMap;
struct P {
    last: std::time::Instant,
    acc: BTreeMap<String, f64>,
}
impl Observer for P {
    fn node_done(
        &mut self,
        _: NodeId,
        n: &Node,
        _: usize,
        _: usize,
        _: &mut [f32],
    ) -> graphrun::Result<()> {
        let now = std::time::Instant::now();
        let key = format!(
            "{}:{}",
            n.op.name(),
            n.weight
                .as_ref()
                .map(|w| format!("{}", w.dtype))
                .unwrap_or_default()
        );
        *self.acc.entry(key).or_default() += (now - self.last).as_secs_f64();
        self.last = now;
        Ok(())
    }
}
fn main() {
    let t: usize = std::env::args().nth(1).unwrap().parse().unwrap();
    if let Some(n) = std::env::var("GRAPHRUN_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .unwrap();
    }
    let act = if std::env::args().nth(2).as_deref() == Some("f32") {
        ActSemantics::F32
    } else {
        ActSemantics::Q8
    };
    let m = ModelFile::open(graphrun::model::default_model_path().unwrap()).unwrap();
    let mut it = Interpreter::new(
        &m,
        lower(
            &m,
            LowerOptions {
                act,
                ..Default::default()
            },
        )
        .unwrap(),
        1024,
    )
    .unwrap();
    let toks: Vec<u32> = (0..t as u32).map(|i| 100 + i * 7).collect();
    let mut p = P {
        last: std::time::Instant::now(),
        acc: BTreeMap::new(),
    };
    let t0 = std::time::Instant::now();
    it.step(&toks, t - 1..t, &mut p).unwrap();
    let reps = 20;
    let t1 = std::time::Instant::now();
    for _ in 0..reps {
        p.last = std::time::Instant::now();
        it.step(&[5], 0..1, &mut p).unwrap();
    }
    let total = t0.elapsed().as_secs_f64();
    println!(
        "decode: {:.1} tok/s over {reps} steps",
        reps as f64 / t1.elapsed().as_secs_f64()
    );
    let mut v: Vec<_> = p.acc.into_iter().collect();
    v.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap());
    for (k, s) in v {
        println!("{k:<20} {s:8.3} s");
    }
    println!("total {total:.3} s");
}

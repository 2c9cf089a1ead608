//! Summary statistics of a tensor, shared by `inspect --stats` and node traces.

use serde::{Deserialize, Serialize};

/// Mean, population std, min, max and L2 norm over the finite values (accumulated in f64),
/// plus counts of NaN and ±Inf values.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub count: u64,
    pub mean: f64,
    pub std: f64,
    pub min: f64,
    pub max: f64,
    pub l2: f64,
    pub nan: u64,
    pub inf: u64,
}

impl Stats {
    pub fn of(x: &[f32]) -> Stats {
        let (mut n, mut sum, mut sq) = (0u64, 0.0f64, 0.0f64);
        let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
        let (mut nan, mut inf) = (0u64, 0u64);
        for &v in x {
            if v.is_nan() {
                nan += 1;
            } else if v.is_infinite() {
                inf += 1;
            } else {
                let v = v as f64;
                n += 1;
                sum += v;
                sq += v * v;
                min = min.min(v);
                max = max.max(v);
            }
        }
        let mean = if n > 0 { sum / n as f64 } else { 0.0 };
        let var = if n > 0 {
            (sq / n as f64 - mean * mean).max(0.0)
        } else {
            0.0
        };
        Stats {
            count: x.len() as u64,
            mean,
            std: var.sqrt(),
            min: if n > 0 { min } else { 0.0 },
            max: if n > 0 { max } else { 0.0 },
            l2: sq.sqrt(),
            nan,
            inf,
        }
    }
}

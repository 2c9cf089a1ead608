//! How two tensors are compared: the one definition of NMSE and the other metrics that
//! `graphrun diff`, the live diff and the parity tests all use (bands in `contracts/`).
//!
//! B is the reference. Over the pairs where both values are finite:
//! NMSE = Σ(a−b)² / Σb² (f64 sums); when Σb² = 0 it is 0 if the sides are equal and
//! infinite otherwise. A value that is NaN/Inf on one side only, or NaN/Inf with different
//! bits on both, is a mismatch: it makes `nmse` infinite (no band admits it) and is
//! described in `Metrics::note`.

/// Metrics of one pair of tensors.
#[derive(Clone, Debug, PartialEq)]
pub struct Metrics {
    /// Largest |a − b| over the finite pairs.
    pub max_abs: f64,
    /// Over the finite pairs (see the module docs); infinite when non-finite values differ.
    pub nmse: f64,
    /// Cosine similarity of the finite pairs (None when either side is all zero).
    pub cosine: Option<f64>,
    /// Why the pair is unequal regardless of the numbers: NaN/Inf mismatches, length.
    pub note: Option<String>,
}

/// Compares `a` against the reference `b`.
pub fn compare(a: &[f32], b: &[f32]) -> Metrics {
    if a.len() != b.len() {
        return Metrics {
            max_abs: f64::INFINITY,
            nmse: f64::INFINITY,
            cosine: None,
            note: Some(format!("lengths differ: {} vs {}", a.len(), b.len())),
        };
    }
    let (mut d2, mut b2, mut a2, mut ab, mut max_abs) = (0f64, 0f64, 0f64, 0f64, 0f64);
    let (mut bad_a, mut bad_b) = (0usize, 0usize);
    for (&x, &y) in a.iter().zip(b) {
        match (x.is_finite(), y.is_finite()) {
            (true, true) => {
                let (x, y) = (x as f64, y as f64);
                d2 += (x - y) * (x - y);
                b2 += y * y;
                a2 += x * x;
                ab += x * y;
                max_abs = max_abs.max((x - y).abs());
            }
            (false, true) => bad_a += 1,
            (true, false) => bad_b += 1,
            (false, false) => {
                if x.to_bits() != y.to_bits() {
                    bad_a += 1;
                    bad_b += 1;
                }
            }
        }
    }
    let note = match (bad_a, bad_b) {
        (0, 0) => None,
        (n, 0) => Some(format!("{n} NaN/Inf values appear in A only")),
        (0, n) => Some(format!("{n} NaN/Inf values appear in B only")),
        (n, m) => Some(format!("NaN/Inf values differ ({n} in A, {m} in B)")),
    };
    let nmse = if note.is_some() {
        f64::INFINITY
    } else if b2 > 0.0 {
        d2 / b2
    } else if d2 == 0.0 {
        0.0
    } else {
        f64::INFINITY
    };
    Metrics {
        max_abs,
        nmse,
        cosine: (a2 > 0.0 && b2 > 0.0).then(|| ab / (a2.sqrt() * b2.sqrt())),
        note,
    }
}

/// NMSE of `a` against the reference `b` (see the module docs).
pub fn nmse(a: &[f32], b: &[f32]) -> f64 {
    compare(a, b).nmse
}

/// The NMSE lower bound from the L2 norms alone, `(‖a‖ − ‖b‖)² / ‖b‖²` (for records traced
/// without full tensors): NMSE ≥ this by the triangle inequality.
pub fn nmse_lower_bound(l2_a: f64, l2_b: f64) -> f64 {
    if l2_b > 0.0 {
        (l2_a - l2_b) * (l2_a - l2_b) / (l2_b * l2_b)
    } else if l2_a == 0.0 {
        0.0
    } else {
        f64::INFINITY
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_tensors_have_zero_error() {
        let m = compare(&[1.0, 2.0], &[1.0, 2.0]);
        assert_eq!((m.nmse, m.max_abs, m.note), (0.0, 0.0, None));
        assert_eq!(nmse(&[0.0, 0.0], &[0.0, 0.0]), 0.0);
        // Identical NaNs in the same places are equal, too.
        assert_eq!(nmse(&[f32::NAN, 1.0], &[f32::NAN, 1.0]), 0.0);
    }

    #[test]
    fn nmse_is_relative_to_the_reference() {
        let m = compare(&[1.1, 2.0], &[1.0, 2.0]);
        assert!((m.nmse - 0.01 / 5.0).abs() < 1e-9);
        assert!((m.max_abs - 0.1).abs() < 1e-6);
        assert!(m.cosine.unwrap() < 1.0);
        assert_eq!(nmse(&[1.0], &[0.0]), f64::INFINITY);
    }

    #[test]
    fn non_finite_mismatches_are_never_in_band() {
        let m = compare(&[f32::NAN, 2.0], &[1.0, 2.0]);
        assert!(m.note.unwrap().contains("A only"));
        assert_eq!(m.nmse, f64::INFINITY);
        assert!(
            compare(&[1.0], &[f32::INFINITY])
                .note
                .unwrap()
                .contains("B only")
        );
        assert_eq!(nmse(&[f32::INFINITY], &[f32::NEG_INFINITY]), f64::INFINITY);
        assert_eq!(nmse(&[1.0, 2.0], &[1.0]), f64::INFINITY);
    }

    #[test]
    fn lower_bound_from_norms() {
        assert_eq!(nmse_lower_bound(1.0, 1.0), 0.0);
        assert!((nmse_lower_bound(1.1, 1.0) - 0.01).abs() < 1e-12);
        assert_eq!(nmse_lower_bound(1.0, 0.0), f64::INFINITY);
    }
}

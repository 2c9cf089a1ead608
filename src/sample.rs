//! How one token is chosen from a row of logits: the sampler's configuration, its pure
//! function (`sample`, what the host and the device sampler both compute) and the seeded
//! draws (`Sampler`). Below the executors, which take configurations and draws from here;
//! `generate` drives them.

use crate::error::{Error, Result};
use crate::model::synth::Rng;
use crate::numerics::argmax;

/// How one token is chosen from a row of logits (see `sample`).
#[derive(Clone, Debug, PartialEq)]
pub struct SamplerConfig {
    /// Softmax temperature; 0 means greedy.
    pub temperature: f32,
    /// Keep the K most likely tokens; 0 keeps all, 1 is greedy.
    pub top_k: usize,
    /// Nucleus: keep the smallest set of most likely tokens whose probability reaches P;
    /// 1 keeps all, 0 keeps only the most likely token (greedy).
    pub top_p: f32,
    pub seed: u64,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig {
            temperature: 0.0,
            top_k: 40,
            top_p: 0.95,
            seed: 0x5eed,
        }
    }
}

impl SamplerConfig {
    /// Checks the ranges; errors name the command-line flag.
    pub fn validate(&self) -> Result<()> {
        check_temperature(self.temperature).map_err(|e| Error::invalid(format!("--temp {e}")))?;
        check_top_p(self.top_p).map_err(|e| Error::invalid(format!("--top-p {e}")))?;
        Ok(())
    }

    /// True when the configuration always picks the most likely token (temperature 0,
    /// top-k 1 or top-p 0): no draw is needed and the executor may pick it (on the GPU: on
    /// the device).
    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0 || self.top_k == 1 || self.top_p == 0.0
    }
}

/// The temperature must be finite and ≥ 0 (the message leaves out the flag's name).
pub fn check_temperature(t: f32) -> std::result::Result<(), String> {
    if t.is_finite() && t >= 0.0 {
        Ok(())
    } else {
        Err(format!("must be a number ≥ 0 (0 = greedy), got {t}"))
    }
}

/// Top-p must lie in [0, 1] (the message leaves out the flag's name).
pub fn check_top_p(p: f32) -> std::result::Result<(), String> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(format!(
            "must be in [0, 1] (1 keeps every token, 0 is greedy), got {p}"
        ))
    }
}

/// Picks a token from one row of finite `logits` with one uniform draw `u` in [0, 1). The
/// whole sampler is this pure function, so that any implementation (the host; the device
/// sampler, kernels/argmax.cu `sample`, checked against it in tests/gpu_sample.rs) can be
/// checked against it for the same logits and draw:
///
/// 1. greedy (`cfg.is_greedy()`): the largest logit, lowest id on ties (`argmax`); `u` is
///    not used;
/// 2. candidates: ids sorted by logit, descending, ties by ascending id; the first `top_k`
///    are kept (all when `top_k` is 0);
/// 3. weights in f64: w_j = exp((l_j − l_max) / T), with l_j and T widened to f64 first;
///    probabilities p_j = w_j / Σ w (summed in candidate order);
/// 4. nucleus: keep the shortest prefix whose running sum of p_j reaches `top_p` (at least
///    one token; with `top_p` 1 rounding may leave the sum just below 1, and then all are
///    kept);
/// 5. draw: r = u · Σ_kept p_j; the token is the first kept j with r < p_0 + … + p_j (the
///    last kept one if rounding leaves none).
pub fn sample(logits: &[f32], cfg: &SamplerConfig, u: f64) -> u32 {
    if cfg.is_greedy() || logits.len() <= 1 {
        return argmax(logits) as u32;
    }
    let by_logit = |&a: &usize, &b: &usize| logits[b].total_cmp(&logits[a]).then(a.cmp(&b));
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    let k = match cfg.top_k {
        0 => logits.len(),
        k => k.min(logits.len()),
    };
    if k < idx.len() {
        idx.select_nth_unstable_by(k - 1, by_logit);
        idx.truncate(k);
    }
    idx.sort_unstable_by(by_logit);
    let (l_max, t) = (logits[idx[0]] as f64, cfg.temperature as f64);
    let mut p: Vec<f64> = idx
        .iter()
        .map(|&i| ((logits[i] as f64 - l_max) / t).exp())
        .collect();
    let z: f64 = p.iter().sum();
    let mut keep = p.len();
    let mut cum = 0.0;
    for (j, v) in p.iter_mut().enumerate() {
        *v /= z;
        cum += *v;
        if cum >= cfg.top_p as f64 {
            keep = j + 1;
            break;
        }
    }
    let r = u * p[..keep].iter().sum::<f64>();
    let mut acc = 0.0;
    for (j, &pj) in p[..keep].iter().enumerate() {
        acc += pj;
        if r < acc {
            return idx[j] as u32;
        }
    }
    idx[keep - 1] as u32
}

/// `sample` for each row of `logits` (`[picks.len(), vocab]`) with row i's (configuration,
/// draw) `picks[i]`: the host's side of `BatchEngine::decode_sample`.
pub fn sample_rows(logits: &[f32], picks: &[(SamplerConfig, f64)]) -> Vec<u32> {
    if picks.is_empty() {
        return Vec::new();
    }
    let vocab = logits.len() / picks.len();
    logits
        .chunks_exact(vocab)
        .zip(picks)
        .map(|(r, (cfg, u))| sample(r, cfg, *u))
        .collect()
}

/// `sample` with a seeded generator supplying the draws: one draw per sampled token
/// (none when greedy), so a seed reproduces the same tokens run after run. A clone goes
/// on with the same draws (a pipelined decode loop takes back a draw it made ahead).
#[derive(Clone)]
pub struct Sampler {
    cfg: SamplerConfig,
    rng: Rng,
}

impl Sampler {
    pub fn new(cfg: SamplerConfig) -> Result<Sampler> {
        cfg.validate()?;
        Ok(Sampler {
            rng: Rng::new(cfg.seed),
            cfg,
        })
    }

    pub fn is_greedy(&self) -> bool {
        self.cfg.is_greedy()
    }

    pub fn config(&self) -> &SamplerConfig {
        &self.cfg
    }

    /// The next uniform draw in [0, 1): the top 53 bits of the generator's output.
    pub fn draw(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        if self.is_greedy() {
            return argmax(logits) as u32;
        }
        let u = self.draw();
        sample(logits, &self.cfg, u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(temperature: f32, top_k: usize, top_p: f32) -> SamplerConfig {
        SamplerConfig {
            temperature,
            top_k,
            top_p,
            seed: 7,
        }
    }

    /// softmax(logits / t) in f64, as `sample` defines it.
    fn softmax(logits: &[f32], t: f64) -> Vec<f64> {
        let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let w: Vec<f64> = logits.iter().map(|&l| ((l as f64 - m) / t).exp()).collect();
        let z: f64 = w.iter().sum();
        w.iter().map(|x| x / z).collect()
    }

    /// Empirical frequencies of `n` draws from a seeded `Sampler`.
    fn frequencies(logits: &[f32], c: &SamplerConfig, n: usize) -> Vec<f64> {
        let mut s = Sampler::new(c.clone()).unwrap();
        let mut counts = vec![0usize; logits.len()];
        for _ in 0..n {
            counts[s.sample(logits) as usize] += 1;
        }
        counts.iter().map(|&k| k as f64 / n as f64).collect()
    }

    /// Each frequency within 5 standard errors of its expected probability (and exactly 0
    /// where the probability is 0).
    fn assert_matches(freq: &[f64], want: &[f64], n: usize) {
        for (i, (&f, &p)) in freq.iter().zip(want).enumerate() {
            if p == 0.0 {
                assert_eq!(f, 0.0, "token {i} was drawn although excluded");
                continue;
            }
            let se = (p * (1.0 - p) / n as f64).sqrt();
            assert!(
                (f - p).abs() <= 5.0 * se + 1e-12,
                "token {i}: frequency {f:.5}, expected {p:.5} (±{:.5})\nall: {freq:?}\nwant: {want:?}",
                5.0 * se
            );
        }
    }

    const LOGITS: [f32; 7] = [1.5, 2.0, -0.5, 0.3, 2.0, -3.0, 0.9];
    const N: usize = 200_000;

    #[test]
    fn sampled_frequencies_match_the_softmax_at_each_temperature() {
        for t in [0.5f32, 1.0, 1.7] {
            let want = softmax(&LOGITS, t as f64);
            assert_matches(&frequencies(&LOGITS, &cfg(t, 0, 1.0), N), &want, N);
        }
    }

    #[test]
    fn top_k_keeps_the_k_most_likely_tokens_renormalized() {
        // Sorted: ids 1 and 4 (2.0, tie: lower id first), 0 (1.5), 6 (0.9), 3, 2, 5.
        let full = softmax(&LOGITS, 0.8);
        let kept = [1usize, 4, 0];
        let z: f64 = kept.iter().map(|&i| full[i]).sum();
        let want: Vec<f64> = (0..LOGITS.len())
            .map(|i| if kept.contains(&i) { full[i] / z } else { 0.0 })
            .collect();
        assert_matches(&frequencies(&LOGITS, &cfg(0.8, 3, 1.0), N), &want, N);
    }

    #[test]
    fn top_p_keeps_the_shortest_prefix_reaching_p() {
        let full = softmax(&LOGITS, 1.0);
        // p(1) + p(4) < 0.7 ≤ p(1) + p(4) + p(0): three tokens are kept.
        assert!(full[1] + full[4] < 0.7 && full[1] + full[4] + full[0] >= 0.7);
        let kept = [1usize, 4, 0];
        let z: f64 = kept.iter().map(|&i| full[i]).sum();
        let want: Vec<f64> = (0..LOGITS.len())
            .map(|i| if kept.contains(&i) { full[i] / z } else { 0.0 })
            .collect();
        assert_matches(&frequencies(&LOGITS, &cfg(1.0, 0, 0.7), N), &want, N);
    }

    #[test]
    fn sample_rows_samples_each_row_with_its_own_pick() {
        let rows: Vec<f32> = [[0.1f32, 2.0, 1.9, -1.0], [3.0, 0.0, 2.9, 2.95]].concat();
        let picks = vec![
            (cfg(0.0, 40, 0.9), 0.7),
            (cfg(1.0, 3, 1.0), 0.99),
            (cfg(1.0, 3, 1.0), 0.01),
        ];
        let three: Vec<f32> = [&rows[..], &rows[4..]].concat();
        let got = sample_rows(&three, &picks);
        let want: Vec<u32> = three
            .chunks_exact(4)
            .zip(&picks)
            .map(|(r, (c, u))| sample(r, c, *u))
            .collect();
        assert_eq!(got, want);
        assert_eq!(got[0], 1, "a greedy pick takes the argmax");
        assert_ne!(
            got[1], got[2],
            "the draws reach different tokens of the same row"
        );
        assert!(sample_rows(&[], &[]).is_empty());
    }

    #[test]
    fn top_k_1_top_p_0_and_temperature_0_equal_greedy() {
        let mut rng = Rng::new(99);
        for case in 0..500 {
            // Small integer logits make ties common: greedy takes the lowest id.
            let logits: Vec<f32> = (0..50).map(|_| (rng.next_u64() % 7) as f32).collect();
            let want = argmax(&logits) as u32;
            for u in [0.0, 0.3, 0.999_999] {
                for c in [cfg(1.0, 1, 1.0), cfg(2.0, 0, 0.0), cfg(0.0, 0, 1.0)] {
                    assert!(c.is_greedy());
                    assert_eq!(sample(&logits, &c, u), want, "case {case}, {c:?}, u {u}");
                }
            }
        }
    }

    #[test]
    fn the_draw_picks_the_token_whose_cumulative_interval_holds_it() {
        // T = 1, no truncation: ids sorted by logit are 1, 4 (tie), 0, 6, 3, 2, 5; the draw
        // u selects the first j with u < p_0 + … + p_j.
        let c = cfg(1.0, 0, 1.0);
        let p = softmax(&LOGITS, 1.0);
        let order = [1usize, 4, 0, 6, 3, 2, 5];
        let mut cum = 0.0;
        for &i in &order {
            let lo = cum;
            cum += p[i];
            assert_eq!(
                sample(&LOGITS, &c, lo + 1e-9) as usize,
                i,
                "u just above {lo}"
            );
            assert_eq!(
                sample(&LOGITS, &c, cum - 1e-9) as usize,
                i,
                "u just below {cum}"
            );
        }
        assert_eq!(sample(&LOGITS, &c, 0.0), 1);
        assert_eq!(sample(&LOGITS, &c, 1.0 - 1e-12), 5);
    }

    #[test]
    fn the_same_seed_gives_the_same_tokens() {
        let mut rng = Rng::new(5);
        let rows: Vec<Vec<f32>> = (0..200)
            .map(|_| (0..1000).map(|_| rng.uniform() * 4.0).collect())
            .collect();
        let run = |seed: u64| -> Vec<u32> {
            let mut s = Sampler::new(SamplerConfig {
                temperature: 0.9,
                top_k: 50,
                top_p: 0.9,
                seed,
            })
            .unwrap();
            rows.iter().map(|r| s.sample(r)).collect()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43), "another seed should change some token");
        // The sampler is `sample` fed by the seeded draws, nothing else.
        let mut s = Sampler::new(cfg(0.9, 50, 0.9)).unwrap();
        let mut draws = Sampler::new(cfg(0.9, 50, 0.9)).unwrap();
        for r in &rows {
            let u = draws.draw();
            assert_eq!(s.sample(r), sample(r, &cfg(0.9, 50, 0.9), u));
        }
    }

    #[test]
    fn out_of_range_settings_are_refused_naming_the_flag() {
        for (c, flag) in [
            (cfg(-1.0, 0, 1.0), "--temp"),
            (cfg(f32::NAN, 0, 1.0), "--temp"),
            (cfg(f32::INFINITY, 0, 1.0), "--temp"),
            (cfg(1.0, 0, 1.5), "--top-p"),
            (cfg(1.0, 0, -0.1), "--top-p"),
        ] {
            let e = Sampler::new(c).err().expect("refused").to_string();
            assert!(e.starts_with(flag), "{e}");
        }
        assert!(Sampler::new(cfg(1.0, 0, 0.0)).is_ok());
    }
}

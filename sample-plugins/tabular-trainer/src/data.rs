//! A deterministic synthetic tabular dataset: two features, a binary label
//! decided by a hidden linear boundary plus noise, generated from a seed so
//! that every run (and every test) sees the same data.

/// SplitMix64: a tiny, fast, seedable generator (enough for sample data).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Approximately normal (sum of uniforms), mean 0, deviation ~1.
    pub fn gaussian(&mut self) -> f64 {
        (0..12).map(|_| self.unit()).sum::<f64>() - 6.0
    }
}

/// One labelled example.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub features: [f64; 2],
    pub label: f64,
}

/// Generates `count` samples around the boundary `1.5 x0 - 2 x1 + 0.5 = 0`.
pub fn generate(count: u64, seed: u64) -> Vec<Sample> {
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|_| {
            let features = [rng.gaussian() * 2.0, rng.gaussian() * 2.0];
            let margin = 1.5 * features[0] - 2.0 * features[1] + 0.5 + rng.gaussian() * 0.8;
            Sample {
                features,
                label: if margin > 0.0 { 1.0 } else { 0.0 },
            }
        })
        .collect()
}

/// Splits off the last `validation_share` of the samples for validation.
pub fn split(mut samples: Vec<Sample>, validation_share: f64) -> (Vec<Sample>, Vec<Sample>) {
    let validation_len = ((samples.len() as f64) * validation_share).round() as usize;
    let validation = samples.split_off(samples.len() - validation_len.min(samples.len()));
    (samples, validation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_data() {
        assert_eq!(generate(50, 3), generate(50, 3));
        assert_ne!(generate(50, 3), generate(50, 4));
    }

    #[test]
    fn both_labels_occur_and_split_keeps_everything() {
        let samples = generate(1000, 7);
        let positives = samples.iter().filter(|s| s.label == 1.0).count();
        assert!((300..700).contains(&positives), "{positives}");
        let (train, validation) = split(samples, 0.2);
        assert_eq!((train.len(), validation.len()), (800, 200));
    }
}

//! Logistic regression trained with mini-batch gradient descent, and its
//! JSON file format (so a later run can start from it as a checkpoint).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::data::Sample;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub weights: [f64; 2],
    pub bias: f64,
}

/// Loss and accuracy of a model on some samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    pub loss: f64,
    pub accuracy: f64,
}

impl Model {
    pub fn probability(&self, features: &[f64; 2]) -> f64 {
        let z = self.weights[0] * features[0] + self.weights[1] * features[1] + self.bias;
        1.0 / (1.0 + (-z).exp())
    }

    /// One gradient step on a batch; returns the batch's mean log-loss.
    pub fn step(&mut self, batch: &[Sample], learning_rate: f64) -> f64 {
        let (mut grad, mut grad_bias, mut loss) = ([0.0; 2], 0.0, 0.0);
        for sample in batch {
            let p = self.probability(&sample.features);
            let error = p - sample.label;
            grad[0] += error * sample.features[0];
            grad[1] += error * sample.features[1];
            grad_bias += error;
            loss += log_loss(p, sample.label);
        }
        let n = batch.len().max(1) as f64;
        self.weights[0] -= learning_rate * grad[0] / n;
        self.weights[1] -= learning_rate * grad[1] / n;
        self.bias -= learning_rate * grad_bias / n;
        loss / n
    }

    pub fn score(&self, samples: &[Sample]) -> Scores {
        let n = samples.len().max(1) as f64;
        let (mut loss, mut correct) = (0.0, 0usize);
        for sample in samples {
            let p = self.probability(&sample.features);
            loss += log_loss(p, sample.label);
            if (p >= 0.5) == (sample.label == 1.0) {
                correct += 1;
            }
        }
        Scores {
            loss: loss / n,
            accuracy: correct as f64 / n,
        }
    }

    pub fn load(path: &Path) -> Result<Self, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read the model {}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{} is not a model file: {e}", path.display()))
    }

    pub fn save(&self, path: &Path) -> Result<(), String> {
        let text = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("cannot write the model {}: {e}", path.display()))
    }
}

fn log_loss(p: f64, label: f64) -> f64 {
    let p = p.clamp(1e-12, 1.0 - 1e-12);
    -(label * p.ln() + (1.0 - label) * (1.0 - p).ln())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::generate;

    #[test]
    fn training_improves_accuracy_and_loss() {
        let samples = generate(1000, 1);
        let mut model = Model::default();
        let before = model.score(&samples);
        for _ in 0..20 {
            for batch in samples.chunks(32) {
                model.step(batch, 0.1);
            }
        }
        let after = model.score(&samples);
        assert!(after.accuracy > 0.85, "{after:?}");
        assert!(after.loss < before.loss);
    }

    #[test]
    fn save_and_load_round_trip() {
        let path = std::env::temp_dir().join(format!("tabular-model-{}.json", std::process::id()));
        let model = Model {
            weights: [1.0, -2.0],
            bias: 0.5,
        };
        model.save(&path).unwrap();
        assert_eq!(Model::load(&path).unwrap(), model);
        std::fs::write(&path, "nonsense").unwrap();
        assert!(Model::load(&path).unwrap_err().contains("is not a model file"));
        std::fs::remove_file(path).unwrap();
    }
}

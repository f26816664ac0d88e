//! A nearest-centroid classifier over a generated three-class dataset:
//! small enough to read, real enough that accuracy means something.

use serde::{Deserialize, Serialize};

/// One labelled point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub x: f64,
    pub y: f64,
    pub label: usize,
}

const CENTRES: [(f64, f64); 3] = [(0.0, 0.0), (4.0, 1.0), (1.5, 4.5)];

/// `count` points around three centres, from a seed.
pub fn generate(count: usize, seed: u64) -> Vec<Point> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut unit = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..count)
        .map(|i| {
            let label = i % CENTRES.len();
            let (cx, cy) = CENTRES[label];
            let spread = |u: f64| (u - 0.5) * 3.0;
            Point {
                x: cx + spread(unit()),
                y: cy + spread(unit()),
                label,
            }
        })
        .collect()
}

/// The model: one centroid per class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Centroids {
    pub centres: Vec<(f64, f64)>,
}

impl Centroids {
    pub fn new(classes: usize) -> Self {
        Self {
            centres: vec![(0.0, 0.0); classes],
        }
    }

    /// One pass of moving each centre toward its class's points.
    pub fn epoch(&mut self, points: &[Point], rate: f64) {
        for p in points {
            let c = &mut self.centres[p.label];
            c.0 += rate * (p.x - c.0);
            c.1 += rate * (p.y - c.1);
        }
    }

    pub fn predict(&self, x: f64, y: f64) -> usize {
        let distance = |c: &(f64, f64)| (c.0 - x).powi(2) + (c.1 - y).powi(2);
        (0..self.centres.len())
            .min_by(|&a, &b| distance(&self.centres[a]).total_cmp(&distance(&self.centres[b])))
            .unwrap_or(0)
    }

    pub fn accuracy(&self, points: &[Point]) -> f64 {
        let correct = points.iter().filter(|p| self.predict(p.x, p.y) == p.label).count();
        correct as f64 / points.len().max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn training_separates_the_classes() {
        let points = generate(600, 3);
        let mut model = Centroids::new(3);
        let before = model.accuracy(&points);
        for _ in 0..5 {
            model.epoch(&points, 0.05);
        }
        assert!(model.accuracy(&points) > 0.85 && model.accuracy(&points) > before);
    }
}

//! Thinning a series to a bounded number of points for drawing, keeping
//! its shape: the points are cut into equal runs and each run keeps its
//! lowest and its highest point (in their order), so spikes survive; the
//! first and the last point are always kept.

/// At most `max_points` of `points` (at least 4 are allowed), in order,
/// always with the first and the last; all of them when they fit.
pub fn thin(points: &[(f64, f64)], max_points: usize) -> Vec<(f64, f64)> {
    let max_points = max_points.max(4);
    if points.len() <= max_points {
        return points.to_vec();
    }
    let (first, last) = (points[0], points[points.len() - 1]);
    let inner = &points[1..points.len() - 1];
    let buckets = (max_points - 2) / 2;
    let mut kept = Vec::with_capacity(max_points);
    kept.push(first);
    for bucket in 0..buckets {
        let from = bucket * inner.len() / buckets;
        let to = ((bucket + 1) * inner.len() / buckets).max(from + 1).min(inner.len());
        let run = &inner[from..to];
        let (mut low, mut high) = (0, 0);
        for (i, point) in run.iter().enumerate() {
            if point.1 < run[low].1 {
                low = i;
            }
            if point.1 > run[high].1 {
                high = i;
            }
        }
        match low.cmp(&high) {
            std::cmp::Ordering::Less => kept.extend([run[low], run[high]]),
            std::cmp::Ordering::Greater => kept.extend([run[high], run[low]]),
            std::cmp::Ordering::Equal => kept.push(run[low]),
        }
    }
    kept.push(last);
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_series_are_kept_whole() {
        let points = [(0.0, 1.0), (1.0, 2.0)];
        assert_eq!(thin(&points, 1000), points);
    }

    #[test]
    fn a_million_points_become_at_most_the_bound_with_ends_and_extremes() {
        let mut points: Vec<(f64, f64)> = (0..1_000_000)
            .map(|i| (f64::from(i), (f64::from(i) / 1000.0).sin()))
            .collect();
        points[777_777].1 = 50.0;
        points[333_333].1 = -50.0;
        let last = (1_000_000.0, 0.123);
        points.push(last);
        let kept = thin(&points, 1000);
        assert!(kept.len() <= 1000, "{}", kept.len());
        assert_eq!(kept.first(), points.first());
        assert_eq!(kept.last(), Some(&last), "the last point is never dropped");
        assert!(
            kept.contains(&points[777_777]) && kept.contains(&points[333_333]),
            "spikes survive"
        );
        assert!(kept.windows(2).all(|w| w[0].0 < w[1].0), "in order");
    }
}

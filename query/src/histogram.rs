//! `histogram_quantile` over classic `le` buckets, with Prometheus's handling of
//! unsorted, duplicate and non-monotonic buckets.

/// One cumulative bucket: observations at or below `upper`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bucket {
    pub upper: f64,
    pub count: f64,
}

/// Relative difference under which neighbouring bucket counts are treated as equal
/// (Prometheus's `smallDeltaTolerance`: float noise from summing rates).
const SMALL_DELTA_TOLERANCE: f64 = 1e-12;

fn almost_equal(a: f64, b: f64, eps: f64) -> bool {
    if a == b {
        return true;
    }
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || diff < f64::MIN_POSITIVE {
        return diff < eps * f64::MIN_POSITIVE;
    }
    diff / (a.abs() + b.abs()) < eps
}

/// The φ-quantile of the buckets, and whether the counts had to be forced monotonic.
pub(crate) fn bucket_quantile(q: f64, buckets: &mut Vec<Bucket>) -> (f64, bool) {
    if q.is_nan() {
        return (f64::NAN, false);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, false);
    }
    if q > 1.0 {
        return (f64::INFINITY, false);
    }
    let Some((merged, forced)) = prepare(buckets) else { return (f64::NAN, false) };
    if merged.len() < 2 {
        return (f64::NAN, forced);
    }
    let observations = merged[merged.len() - 1].count;
    if observations == 0.0 {
        return (f64::NAN, forced);
    }
    let mut rank = q * observations;
    let b = merged[..merged.len() - 1].partition_point(|x| x.count < rank);
    if b == merged.len() - 1 {
        return (merged[merged.len() - 2].upper, forced);
    }
    if b == 0 && merged[0].upper <= 0.0 {
        return (merged[0].upper, forced);
    }
    let end = merged[b].upper;
    let mut count = merged[b].count;
    let mut start = 0.0;
    if b > 0 {
        start = merged[b - 1].upper;
        count -= merged[b - 1].count;
        rank -= merged[b - 1].count;
    }
    (start + (end - start) * (rank / count), forced)
}

/// The estimated fraction of observations between `lower` and `upper`, and whether
/// the counts had to be forced monotonic. As in Prometheus 3.5, the lowest bucket
/// reaches down to -Inf, so a bound inside it gives NaN.
pub(crate) fn bucket_fraction(lower: f64, upper: f64, buckets: &mut Vec<Bucket>) -> (f64, bool) {
    let Some((merged, forced)) = prepare(buckets) else { return (f64::NAN, false) };
    if merged.len() < 2 || lower.is_nan() || upper.is_nan() {
        return (f64::NAN, forced);
    }
    if lower >= upper {
        return (0.0, forced);
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    for (i, b) in merged.iter().enumerate() {
        let lo = if i == 0 { f64::NEG_INFINITY } else { merged[i - 1].upper };
        let hi = b.upper;
        let interpolate = |v: f64| rank + (b.count - rank) * (v - lo) / (hi - lo);
        if !lower_set && lo >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && lo >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && lo < lower && hi > lower {
            lower_rank = interpolate(lower);
            lower_set = true;
        }
        if !upper_set && lo < upper && hi > upper {
            upper_rank = interpolate(upper);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank = b.count;
    }
    let count = merged[merged.len() - 1].count;
    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }
    ((upper_rank - lower_rank) / count, forced)
}

/// Sorts the buckets, merges equal bounds and forces the counts monotonic; `None`
/// without a `+Inf` bucket.
fn prepare(buckets: &mut Vec<Bucket>) -> Option<(Vec<Bucket>, bool)> {
    buckets.retain(|b| !b.upper.is_nan());
    buckets.sort_by(|a, b| a.upper.total_cmp(&b.upper));
    match buckets.last() {
        Some(b) if b.upper == f64::INFINITY => {}
        _ => return None,
    }
    // Buckets with the same bound (e.g. "1" and "1.0") are added up.
    let mut merged: Vec<Bucket> = Vec::with_capacity(buckets.len());
    for b in buckets.iter() {
        match merged.last_mut() {
            Some(m) if m.upper == b.upper => m.count += b.count,
            _ => merged.push(*b),
        }
    }
    let mut forced = false;
    let mut prev = merged[0].count;
    for b in merged.iter_mut().skip(1) {
        let curr = b.count;
        if curr == prev {
            continue;
        }
        if almost_equal(prev, curr, SMALL_DELTA_TOLERANCE) {
            b.count = prev;
            continue;
        }
        if curr < prev {
            b.count = prev;
            forced = true;
            continue;
        }
        prev = curr;
    }
    Some((merged, forced))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(pairs: &[(f64, f64)]) -> Vec<Bucket> {
        pairs.iter().map(|&(upper, count)| Bucket { upper, count }).collect()
    }

    #[test]
    fn interpolates_within_bucket() {
        let mut x = b(&[(1.0, 10.0), (2.0, 20.0), (f64::INFINITY, 20.0)]);
        assert_eq!(bucket_quantile(0.75, &mut x).0, 1.5);
    }

    #[test]
    fn needs_an_inf_bucket() {
        assert!(bucket_quantile(0.5, &mut b(&[(1.0, 10.0), (2.0, 20.0)])).0.is_nan());
    }

    #[test]
    fn top_bucket_returns_second_highest_bound() {
        let mut x = b(&[(1.0, 1.0), (2.0, 2.0), (f64::INFINITY, 10.0)]);
        assert_eq!(bucket_quantile(0.99, &mut x).0, 2.0);
    }

    #[test]
    fn forces_monotonicity_and_reports_it() {
        let mut x = b(&[(1.0, 10.0), (2.0, 5.0), (f64::INFINITY, 10.0)]);
        let (v, forced) = bucket_quantile(0.5, &mut x);
        assert!(forced);
        assert_eq!(v, 0.5);
    }

    #[test]
    fn out_of_range_quantiles_and_empty_histograms() {
        let mut x = b(&[(1.0, 0.0), (f64::INFINITY, 0.0)]);
        assert!(bucket_quantile(0.5, &mut x).0.is_nan());
        assert_eq!(bucket_quantile(-0.1, &mut x).0, f64::NEG_INFINITY);
        assert_eq!(bucket_quantile(1.1, &mut x).0, f64::INFINITY);
    }

    #[test]
    fn fraction_interpolates_and_is_nan_in_the_lowest_bucket() {
        let mut bs = b(&[(1.0, 10.0), (2.0, 20.0), (f64::INFINITY, 20.0)]);
        assert_eq!(bucket_fraction(1.0, 1.5, &mut bs).0, 0.25);
        assert_eq!(bucket_fraction(1.0, 100.0, &mut bs.clone()).0, 0.5);
        assert_eq!(bucket_fraction(2.0, 1.0, &mut bs.clone()).0, 0.0);
        assert!(bucket_fraction(0.0, 1.5, &mut bs.clone()).0.is_nan());
        assert!(bucket_fraction(0.0, 1.5, &mut b(&[(1.0, 1.0)])).0.is_nan());
    }

    #[test]
    fn first_bucket_with_non_positive_bound() {
        let mut x = b(&[(-1.0, 5.0), (f64::INFINITY, 10.0)]);
        assert_eq!(bucket_quantile(0.1, &mut x).0, -1.0);
    }
}

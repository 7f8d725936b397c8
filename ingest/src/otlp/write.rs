//! Appends translated OTLP series in one storage batch, accumulating delta points
//! into cumulative values when configured, and reports what was refused.

use std::collections::HashMap;

use parking_lot::Mutex;
use vigil_storage::{Appendable, Labels, StorageError, is_stale_nan};

use super::translate::Translated;
use crate::exemplars::ExemplarStore;

/// Most series whose delta running totals are kept: bounds memory when a sender
/// churns through series; points of further new series are refused.
pub const MAX_DELTA_SERIES: usize = 1_000_000;

/// Running totals of delta series (in memory: a restart starts them from zero,
/// which queries see as a counter reset, as with Prometheus's deltatocumulative).
#[derive(Default)]
pub struct DeltaState {
    totals: Mutex<HashMap<Labels, f64>>,
}

impl DeltaState {
    /// An empty state.
    pub fn new() -> Self {
        DeltaState::default()
    }
}

/// What one OTLP request did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OtlpReport {
    /// Samples written.
    pub samples_written: u64,
    /// Data points refused in translation plus samples refused by storage.
    pub rejected: u64,
    /// Exemplars stored.
    pub exemplars_written: u64,
    /// Why things were refused (empty when nothing was).
    pub message: String,
}

/// Appends `t` (and its metadata) in one batch; exemplars after the commit.
pub fn write_otlp(
    store: &dyn Appendable,
    exemplars: &ExemplarStore,
    deltas: &DeltaState,
    t: Translated,
) -> Result<OtlpReport, StorageError> {
    let mut messages = t.messages;
    let mut rejected = t.rejected_points;
    let mut app = store.appender();
    {
        let mut totals = deltas.totals.lock();
        for s in &t.series {
            if !s.delta {
                for x in &s.samples {
                    app.append(&s.labels, x.t, x.v);
                }
                continue;
            }
            if !totals.contains_key(&s.labels) && totals.len() >= MAX_DELTA_SERIES {
                rejected += s.samples.len() as u64;
                messages.push(format!(
                    "more than {MAX_DELTA_SERIES} delta series to accumulate; {} refused",
                    s.labels
                ));
                continue;
            }
            let total = totals.entry(s.labels.clone()).or_insert(0.0);
            for x in &s.samples {
                if is_stale_nan(x.v) {
                    app.append(&s.labels, x.t, x.v);
                    continue;
                }
                *total += x.v;
                app.append(&s.labels, x.t, *total);
            }
        }
    }
    for (family, meta) in t.metadata {
        app.update_metadata(&family, meta);
    }
    let outcome = app.commit()?;
    rejected += outcome.rejected();
    if let Some((labels, ts, err)) = &outcome.first_error {
        messages.push(format!(
            "{} samples refused by storage, first: {err} for series {labels} at timestamp {ts}",
            outcome.rejected()
        ));
    }
    let mut written_exemplars = 0;
    for s in t.series {
        for ex in s.exemplars {
            if exemplars.add(&s.labels, ex).is_ok() {
                written_exemplars += 1;
            }
        }
    }
    Ok(OtlpReport {
        samples_written: outcome.appended,
        rejected,
        exemplars_written: written_exemplars,
        message: messages.join("; "),
    })
}

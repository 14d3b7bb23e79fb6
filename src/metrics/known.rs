//! Gauges exported only once their value is known: a 0 would read as "the
//! input is empty" or "the watermark is 1970".

use prometheus::{Gauge, Registry};

/// Which of them.
pub(super) enum Which {
    /// `pipeline_source_expected_bytes`.
    Bytes,
    /// `pipeline_source_expected_records`.
    Records,
    /// `pipeline_source_watermark`.
    Watermark,
}

pub(super) struct Known {
    bytes: Gauge,
    records: Gauge,
    watermark: Gauge,
}

impl Known {
    pub(super) fn new() -> Known {
        let g = |name: &str, help: &str| Gauge::new(name, help).expect("valid metric");
        Known {
            bytes: g(
                "pipeline_source_expected_bytes",
                "Size of the input in bytes (a CSV file); exported once known. Progress: pipeline_source_bytes_total / this.",
            ),
            records: g(
                "pipeline_source_expected_records",
                "Records the source will produce (the Elasticsearch count, within --limit); exported once known. Progress: pipeline_records_read_total / this.",
            ),
            watermark: g(
                "pipeline_source_watermark",
                "Where an incremental run (--es-since-field) stands: the value saved in the state file, in seconds since the Unix epoch when it is a date; exported once known.",
            ),
        }
    }

    pub(super) fn set(&self, registry: &Registry, which: Which, v: f64) {
        let g = match which {
            Which::Bytes => &self.bytes,
            Which::Records => &self.records,
            Which::Watermark => &self.watermark,
        };
        g.set(v);
        // Registering twice is refused by the registry: the first set exports it.
        let _ = registry.register(Box::new(g.clone()));
    }
}

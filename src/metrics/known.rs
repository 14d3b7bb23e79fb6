//! Gauges exported only once their value is known: a 0 would read as "the
//! input is empty" or "the watermark is 1970".

use prometheus::{Gauge, Registry};

/// Which of them.
#[derive(Clone, Copy)]
pub(super) enum Which {
    /// `pipeline_source_expected_bytes`.
    Bytes,
    /// `pipeline_source_expected_records`.
    Records,
    /// `pipeline_source_watermark`.
    Watermark,
    /// `pipeline_source_resumed_records`.
    Resumed,
}

pub(super) struct Known {
    bytes: Gauge,
    records: Gauge,
    watermark: Gauge,
    resumed: Gauge,
    /// Which have been set, by [`Which`].
    set: [std::sync::atomic::AtomicBool; 4],
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
            resumed: g(
                "pipeline_source_resumed_records",
                "Rows a run resumed from --checkpoint skipped because an earlier run of the job had finished them (never counted read); exported when the run resumes.",
            ),
            set: Default::default(),
        }
    }

    fn gauge(&self, which: Which) -> &Gauge {
        match which {
            Which::Bytes => &self.bytes,
            Which::Records => &self.records,
            Which::Watermark => &self.watermark,
            Which::Resumed => &self.resumed,
        }
    }

    /// The value, once it is known.
    pub(super) fn get(&self, which: Which) -> Option<f64> {
        let g = self.gauge(which);
        self.set[which as usize]
            .load(std::sync::atomic::Ordering::Relaxed)
            .then(|| g.get())
    }

    pub(super) fn set(&self, registry: &Registry, which: Which, v: f64) {
        let g = self.gauge(which);
        g.set(v);
        self.set[which as usize].store(true, std::sync::atomic::Ordering::Relaxed);
        // Registering twice is refused by the registry: the first set exports it.
        let _ = registry.register(Box::new(g.clone()));
    }
}

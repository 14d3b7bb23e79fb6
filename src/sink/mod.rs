//! Sinks: where records go. A [`Sink`] is opened once (so configuration
//! errors are seen before anything is read), hands each worker its own
//! [`BatchWriter`], and is finished once every worker is done. The batching
//! loop shared by every sink lives in [`batch`].

pub mod api;
pub mod batch;
pub mod file;
pub mod mysql;

use std::sync::Arc;

use crate::config::SinkConfig;
use crate::error::PipelineError;

pub use api::{BatchWriter, Sink};

/// Opens the configured sink. `fields` are the field names the source will
/// produce, when it knows them before reading (a CSV header), so a mismatch
/// with a table is reported before anything is read. `dry` (`--check`):
/// checks everything but creates or changes nothing.
pub fn open(
    config: &SinkConfig,
    fields: Option<&[String]>,
    dry: bool,
) -> Result<Arc<dyn Sink>, PipelineError> {
    match config {
        SinkConfig::File(c) if dry => Ok(Arc::new(file::FileSink::dry(c))),
        SinkConfig::File(c) => Ok(Arc::new(file::FileSink::open(c)?)),
        SinkConfig::Mysql(c) => Ok(Arc::new(mysql::MysqlSink::open(c, fields, dry)?)),
    }
}

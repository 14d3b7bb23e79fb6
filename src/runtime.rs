//! The one tokio runtime the async clients (MySQL, Elasticsearch, the
//! Pushgateway) run on; pipeline threads call into it with `block_on`.

/// The one tokio runtime async clients (MySQL, Elasticsearch) run on;
/// pipeline threads call into it with `block_on`. Started on first use.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("pipeline-io")
            .enable_all()
            .build()
            .expect("start the tokio runtime")
    })
}

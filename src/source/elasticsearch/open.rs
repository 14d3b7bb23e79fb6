//! Opening the source: what the server is, what `--es-index` covers, the
//! incremental position, and the count of matching documents; and opening a
//! point in time for the processes of a sliced job to share.

use std::sync::Arc;

use elasticsearch::http::Method;
use serde_json::{json, Value as Json};

use crate::config::{EsConfig, EsMode};
use crate::error::{ErrorType, PipelineError, Stage};
use crate::metrics::Metrics;
use crate::runtime::runtime;

use super::client::{Call, Client, EsError};
use super::since::{self, Since};
use super::target::Target;
use super::{count_of, page, target, EsSource, Paging};

fn open_error(cfg: &EsConfig, e: EsError) -> PipelineError {
    let (error_type, message) = match e {
        EsError::Missing(_) => (
            ErrorType::Config,
            format!("index '{}' does not exist (--es-index)", cfg.index),
        ),
        other => (
            other.error_type(),
            format!("cannot read from Elasticsearch: {}", other.message()),
        ),
    };
    PipelineError::Unavailable {
        stage: Stage::Source,
        error_type,
        message,
    }
}

fn version_at_least(number: &str, major: u64, minor: u64) -> bool {
    let mut parts = number.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    let (ma, mi) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (ma, mi) >= (major, minor)
}

/// Warns when `--es-index` covers several indices and `_index` is not kept:
/// documents of different indices may share an `_id`.
fn warn_of_many_indices(cfg: &EsConfig, indices: &[String]) {
    tracing::debug!("--es-index {} covers {}", cfg.index, indices.join(","));
    if indices.len() > 1 && !cfg.meta_fields.iter().any(|m| m == "_index") {
        let mut shown = indices[..indices.len().min(5)].join(", ");
        if indices.len() > 5 {
            shown.push_str(", …");
        }
        tracing::warn!(
            "--es-index {} covers {} indices ({shown}): documents of different indices may have the same _id, and a table keyed on _id alone keeps only one of them; keep _index with --es-meta-fields _id,_index and make (_index, _id) the key",
            cfg.index,
            indices.len()
        );
    }
}

/// The incremental position of `--es-since-field` (`field`) in
/// `--state-file`, exported as the watermark; None for a full read.
fn open_since(
    cfg: &EsConfig,
    field: Option<&str>,
    target: &Target,
    metrics: &Metrics,
) -> Result<Option<Since>, PipelineError> {
    let since = match (field, &cfg.state_file) {
        (Some(field), Some(path)) => {
            let slice = cfg.slice_id.map(|i| (i, cfg.slices));
            Some(Since::open(
                field,
                path,
                (target.kind, target.millis.clone()),
                cfg.since_missing,
                slice,
            )?)
        }
        _ => None,
    };
    if let Some(v) = since
        .as_ref()
        .and_then(|s| s.previous.value.as_ref())
        .and_then(since::Point::seconds)
    {
        metrics.watermark(v);
    }
    Ok(since)
}

/// How to page, by `--es-mode` and what the server (`info`, its `GET /`)
/// offers; and the server in words (`Elasticsearch 8.15.0`).
fn choose_paging(cfg: &EsConfig, info: &Json) -> Result<(Paging, String), PipelineError> {
    let number = info["version"]["number"]
        .as_str()
        .unwrap_or("0")
        .to_string();
    let opensearch = info["version"]["distribution"].as_str() == Some("opensearch");
    let pit = if opensearch {
        version_at_least(&number, 2, 4).then_some(Paging::OsPit)
    } else {
        version_at_least(&number, 7, 10).then_some(Paging::EsPit)
    };
    let product = if opensearch {
        "OpenSearch"
    } else {
        "Elasticsearch"
    };
    let paging = match (cfg.mode, pit) {
        (EsMode::Scroll, _) | (EsMode::Auto, None) => Paging::Scroll,
        (_, Some(p)) => p,
        (EsMode::Pit, None) => {
            return Err(PipelineError::Config(format!(
                "--es-mode pit: this server ({product} {number}) has no point in time API; use --es-mode scroll or auto"
            )))
        }
    };
    Ok((paging, format!("{product} {number}")))
}

impl EsSource {
    /// Asks the server what it is, checks the index and counts the matching
    /// documents. A missing index, bad credentials or an unreachable server
    /// are reported here, before anything is read.
    pub fn open(cfg: &EsConfig, metrics: &Metrics) -> Result<EsSource, PipelineError> {
        if let (Some(user), None, None) = (&cfg.user, &cfg.password, &cfg.api_key) {
            tracing::warn!(
                "--es-user {user} is set but no password (--es-pass or PIPELINE_ES_PASS): requests carry user {user} with an empty password"
            );
        }
        let field = cfg.state_file.as_ref().and(cfg.since_field.as_deref());
        // A state file that is not one of this job's is refused before any
        // server is asked (a server that cannot be reached is retried).
        if let (Some(field), Some(path)) = (field, &cfg.state_file) {
            since::check_state(field, path, cfg.slice_id.map(|i| (i, cfg.slices)))?;
        }
        let client = Arc::new(Client::new(cfg)?);
        let (info, target) = runtime().block_on(Self::ask_server(&client, cfg, field, metrics))?;
        warn_of_many_indices(cfg, target.indices.as_deref().unwrap_or_default());
        let since = open_since(cfg, field, &target, metrics)?;
        let query = match &since {
            Some(s) => s.narrow(cfg.query.clone()),
            None => cfg.query.clone(),
        };
        let count = Self::count_to_read(&client, cfg, since.as_ref(), &query, metrics)?;
        let (paging, server) = choose_paging(cfg, &info)?;
        tracing::info!(
            "{server}: index {} holds {count} matching documents; paging with {}{}",
            cfg.index,
            match paging {
                Paging::EsPit | Paging::OsPit => "point in time + search_after",
                Paging::Scroll => "scroll",
            },
            match cfg.slice_id {
                Some(id) => format!("; this process reads slice {id} of {}", cfg.slices),
                None => String::new(),
            }
        );
        if cfg.pit_id.is_some() && paging == Paging::Scroll {
            return Err(PipelineError::Config(format!(
                "--es-pit-id: {server} has no point in time API; give each process its own slice with --es-slice-id and let it open its own scroll"
            )));
        }
        let source = EsSource {
            cfg: cfg.clone(),
            client,
            paging,
            query,
            count,
            since,
            server,
            limited: false,
            resumed_at: None,
            open_pit_id: None,
        };
        if let Some(id) = &cfg.pit_id {
            runtime()
                .block_on(source.check_shared_pit(id, target.indices.as_deref()))
                .map_err(|e| open_error(cfg, e))?
                .map_err(PipelineError::Config)?;
        }
        Ok(source)
    }

    /// The server's own description (`GET /`) and what `--es-index` covers,
    /// with the kind of `field` (`--es-since-field`) in its mappings.
    async fn ask_server(
        client: &Client,
        cfg: &EsConfig,
        field: Option<&str>,
        metrics: &Metrics,
    ) -> Result<(Json, Target), PipelineError> {
        let check_info = |j: &Json| {
            j["version"]["number"]
                .as_str()
                .map(|_| ())
                .ok_or_else(|| "no version.number".to_string())
        };
        let mut call = Call::new(Method::Get, "/");
        call.check = Some(&check_info);
        call.retries = Some(metrics);
        let (info, _) = client.send(call).await.map_err(|e| open_error(cfg, e))?;
        let target = target::resolve(client, &cfg.index, field, Some(metrics))
            .await
            .map_err(|e| open_error(cfg, e))?
            .map_err(PipelineError::Config)?;
        // A field no index maps (a typo, a field no document has) would
        // read every document on every run, or none: refused, unless
        // the indices hold no document yet (nothing mapped it so far).
        if let (Some(f), since::Kind::Unmapped) = (field, target.kind) {
            let all = json!({"match_all": {}});
            let n = Self::count_matching(client, &cfg.index, &all, Some(metrics))
                .await
                .map_err(|e| open_error(cfg, e))?;
            if n > 0 {
                return Err(PipelineError::Config(format!(
                    "--es-since-field {f}: no index of --es-index {} maps this field, and it holds {n} documents (a misspelt name? a field no document has a value of?); name a field of the documents",
                    cfg.index
                )));
            }
        }
        Ok((info, target))
    }

    /// The documents `query` matches; with `--es-since-missing skip`, says
    /// how many it leaves out for having no value of the field.
    fn count_to_read(
        client: &Client,
        cfg: &EsConfig,
        since: Option<&Since>,
        query: &Json,
        metrics: &Metrics,
    ) -> Result<u64, PipelineError> {
        let (count, unvalued) = runtime()
            .block_on(async {
                let count = Self::count_matching(client, &cfg.index, query, Some(metrics)).await?;
                // Documents --es-since-missing skip leaves out, to report.
                let unvalued = match since {
                    Some(s) if s.missing == crate::config::SinceMissing::Skip => {
                        let q = s.without_value(cfg.query.clone());
                        Self::count_matching(client, &cfg.index, &q, Some(metrics)).await?
                    }
                    _ => 0,
                };
                Ok((count, unvalued))
            })
            .map_err(|e| match (since, e) {
                // The saved position is part of the query: say where it is.
                (Some(s), EsError::Refused(why)) if s.previous.value.is_some() => {
                    PipelineError::Config(format!(
                        "the server refused the query narrowed to the position in --state-file '{}' ({why}); correct the file, or delete it to read everything again",
                        s.path.display()
                    ))
                }
                (_, e) => open_error(cfg, e),
            })?;
        if unvalued > 0 {
            if let Some(s) = since {
                tracing::warn!(
                    "{unvalued} matching documents have no value of {} (absent, null or empty) and are not read (--es-since-missing skip)",
                    s.field
                );
            }
        }
        Ok(count)
    }

    /// `--es-open-pit`: opens a point in time on the index for the
    /// processes of a sliced job to share (`--es-pit-id`), and returns its id.
    pub fn open_shared_pit(cfg: &EsConfig, metrics: &Metrics) -> Result<String, PipelineError> {
        let source = EsSource::open(cfg, metrics)?;
        if source.paging == Paging::Scroll {
            return Err(PipelineError::Config(format!(
                "--es-open-pit: {} is read with scroll here (--es-mode scroll, or a server without point in time), and a scroll cannot be shared between processes: give each process its own slice with --es-slice-id instead",
                source.server
            )));
        }
        let id = runtime()
            .block_on(source.open_pit())
            .map_err(|e| source.run_error(e, metrics, 0))?;
        tracing::info!(
            "opened a point in time on {} for --es-keep-alive {}: pass its id to every process with --es-pit-id (or PIPELINE_ES_PIT_ID)",
            cfg.index,
            cfg.keep_alive
        );
        Ok(id)
    }

    /// `_count` with the query.
    pub(super) async fn count_matching(
        client: &Client,
        index: &str,
        query: &Json,
        retries: Option<&Metrics>,
    ) -> Result<u64, EsError> {
        let path = format!("/{index}/_count");
        let mut call = Call::new(Method::Post, &path);
        call.retries = retries;
        call.body = Some(json!({"query": query}));
        call.check = Some(&page::check_count);
        let (answer, _) = client.send(call).await?;
        Ok(count_of(&answer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_major_and_minor() {
        assert!(version_at_least("8.15.3", 7, 10));
        assert!(version_at_least("7.10.0", 7, 10));
        assert!(!version_at_least("7.9.3", 7, 10));
        assert!(version_at_least("2.4.0", 2, 4));
        assert!(!version_at_least("1.3.2", 2, 4));
    }
}

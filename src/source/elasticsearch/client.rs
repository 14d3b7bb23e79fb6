//! The HTTP side of the Elasticsearch source: one client per node, each
//! request bounded by `--es-timeout`, passing failures (connection errors,
//! timeouts, 429, 502-504, and 2xx answers that are not what was asked
//! for, such as a proxy's HTML page) retried with the run's [`Backoff`]
//! within `--retry-for`, honouring Retry-After.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use elasticsearch::auth::Credentials;
use elasticsearch::cert::{Certificate, CertificateValidation};
use elasticsearch::http::headers::{HeaderMap, HeaderValue, ACCEPT_ENCODING};
use elasticsearch::http::request::JsonBody;
use elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use elasticsearch::http::Method;
use elasticsearch::Elasticsearch;
use serde_json::Value as Json;

use super::page::{error_reason, Bad};
use crate::config::EsConfig;
use crate::error::{ErrorType, PipelineError, Stage};
use crate::metrics::Metrics;
use crate::retry::{format_duration, Failure, Reason, RetryPolicy};
use crate::shutdown::Shutdown;

/// Why a request failed, after any retries.
#[derive(Debug)]
pub(super) enum EsError {
    /// 401 / 403.
    Auth(String),
    /// 404 index_not_found.
    Missing(String),
    /// 404 search_context_missing: the point in time or scroll is gone.
    Expired(String),
    /// The server could not be reached, kept answering 429/5xx, or kept
    /// answering with something that is not a valid response.
    Unavailable(String),
    /// A scroll page was lost: a scroll cannot be asked for the same page
    /// twice, so it is not retried.
    ScrollLost(String),
    /// Anything else the server refused.
    Refused(String),
    /// No node's host name resolves, and none has ever answered: a
    /// mistake in --es-url, not a passing failure.
    Unresolved(String),
    /// The run was stopped while the request was in flight.
    Stopped,
}

impl EsError {
    pub(super) fn error_type(&self) -> ErrorType {
        match self {
            EsError::Auth(_) => ErrorType::Auth,
            EsError::Missing(_) | EsError::Unresolved(_) => ErrorType::Config,
            EsError::Expired(_) => ErrorType::Timeout,
            EsError::Unavailable(_) | EsError::ScrollLost(_) => ErrorType::Connection,
            EsError::Refused(_) | EsError::Stopped => ErrorType::Server,
        }
    }

    pub(super) fn message(&self) -> &str {
        match self {
            EsError::Auth(m)
            | EsError::Missing(m)
            | EsError::Expired(m)
            | EsError::Unavailable(m)
            | EsError::ScrollLost(m)
            | EsError::Refused(m)
            | EsError::Unresolved(m) => m,
            EsError::Stopped => "stopped",
        }
    }
}

/// A passing failure of one attempt.
struct Passing {
    /// A wait the server asked for (`Retry-After`).
    hint: Option<Duration>,
    /// What went wrong, for the log line and the final error.
    why: String,
    error_type: ErrorType,
    /// Whether the server may have acted on the request.
    acted: bool,
}

impl Passing {
    fn new(why: String, error_type: ErrorType, acted: bool) -> Passing {
        Passing {
            hint: None,
            why,
            error_type,
            acted,
        }
    }
}

/// What the retry loop hands back of a failed attempt.
enum Failed {
    /// A passing failure: what went wrong.
    Passing(String),
    /// A failure no retry can mend.
    Final(EsError),
}

/// When a failed request may be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Retry {
    /// Whenever the failure is a passing one.
    Passing,
    /// Only when the server surely did not act on it (the connection could
    /// not be made, or 429): a scroll page.
    IfNotActedOn,
    /// Never: one attempt (releasing a point in time or scroll).
    Never,
}

/// Checks a 2xx body; `Err` says what is wrong with it.
pub(super) type Check<'a> = &'a (dyn Fn(&Json) -> Result<(), String> + Sync);

/// Reads a 2xx body into what the caller wants; `Err` says why it cannot.
pub(super) type Reader<'a, T> = &'a (dyn Fn(&[u8]) -> Result<T, Bad> + Sync);

/// One request.
pub(super) struct Call<'a> {
    pub method: Method,
    pub path: &'a str,
    pub query: &'a [(&'a str, &'a str)],
    pub body: Option<Json>,
    pub check: Option<Check<'a>>,
    pub retry: Retry,
    /// Counted as a page fetch in the metrics (each failed attempt as an
    /// error, each retry as a retry).
    pub metrics: Option<&'a Metrics>,
    /// Only its retries counted (the requests made before the run starts).
    pub retries: Option<&'a Metrics>,
}

impl<'a> Call<'a> {
    pub(super) fn new(method: Method, path: &'a str) -> Call<'a> {
        Call {
            method,
            path,
            query: &[],
            body: None,
            check: None,
            retry: Retry::Passing,
            metrics: None,
            retries: None,
        }
    }
}

/// A connection to one or more nodes, with retries.
pub(super) struct Client {
    nodes: Vec<(Elasticsearch, String)>,
    next: AtomicUsize,
    /// Some node has answered (with anything) at least once.
    answered: AtomicBool,
    /// Per node: its host name did not resolve before any node answered.
    unresolved: Vec<AtomicBool>,
    retry: RetryPolicy,
    timeout: Duration,
    /// Accept-Encoding of every request: `gzip` with --es-compression,
    /// else `identity` (the HTTP client would otherwise ask for gzip).
    accept_encoding: &'static str,
}

/// The first characters of a body that is not what was expected, for the
/// error message (control characters and long bodies cut).
fn preview(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(60)]);
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("{}{}", flat.trim(), if bytes.len() > 60 { "…" } else { "" })
}

/// The reason a TLS handshake refused the server's certificate, from an
/// error chain's text (rustls says "invalid peer certificate: <reason>").
fn untrusted(chain: &str) -> Option<&str> {
    const MARK: &str = "invalid peer certificate: ";
    let at = chain.find(MARK)? + MARK.len();
    let rest = &chain[at..];
    Some(rest.split([':', ';', ')']).next().unwrap_or(rest).trim())
}

impl Client {
    pub(super) fn new(cfg: &EsConfig) -> Result<Client, PipelineError> {
        let mut nodes = Vec::new();
        for url in &cfg.urls {
            let shown = crate::config::redacted(url.as_str());
            let mut builder = TransportBuilder::new(SingleNodeConnectionPool::new(url.clone()))
                .disable_proxy()
                .timeout(cfg.timeout);
            if let Some(key) = &cfg.api_key {
                builder = builder.auth(Credentials::EncodedApiKey(key.expose().to_string()));
            } else if let Some(user) = &cfg.user {
                let pass = cfg
                    .password
                    .as_ref()
                    .map(|p| p.expose().to_string())
                    .unwrap_or_default();
                builder = builder.auth(Credentials::Basic(user.clone(), pass));
            }
            if cfg.insecure {
                builder = builder.cert_validation(CertificateValidation::None);
            } else if let Some(ca) = &cfg.ca_cert {
                let pem = std::fs::read(ca).map_err(|e| {
                    PipelineError::Config(format!(
                        "--es-ca-cert '{}': {e}; give the path of a readable PEM file",
                        ca.display()
                    ))
                })?;
                let cert = Certificate::from_pem(&pem).map_err(|e| {
                    PipelineError::Config(format!(
                        "--es-ca-cert '{}' is not a PEM certificate: {e}; give the CA certificate in PEM form",
                        ca.display()
                    ))
                })?;
                builder = builder.cert_validation(CertificateValidation::Full(cert));
            }
            let transport = builder.build().map_err(|e| {
                PipelineError::Config(format!("cannot set up the client for {shown}: {e}"))
            })?;
            nodes.push((Elasticsearch::new(transport), shown));
        }
        Ok(Client {
            unresolved: nodes.iter().map(|_| AtomicBool::new(false)).collect(),
            nodes,
            next: AtomicUsize::new(0),
            answered: AtomicBool::new(false),
            retry: cfg.retry,
            timeout: cfg.timeout,
            accept_encoding: if cfg.compression { "gzip" } else { "identity" },
        })
    }

    /// Sends a page request, cancelled at once when `stop` is raised; a
    /// 2xx body is read by `read` (a body it refuses is a passing failure,
    /// retried like a 5xx).
    pub(super) async fn send_or_stop<T>(
        &self,
        call: Call<'_>,
        read: Reader<'_, T>,
        stop: &Shutdown,
    ) -> Result<(T, u64), EsError> {
        tokio::select! {
            r = self.send_with(call, read) => r,
            _ = stop.cancelled() => Err(EsError::Stopped),
        }
    }

    /// Sends `call`, retrying passing failures as its [`Retry`] allows.
    /// Returns the JSON body (checked by `call.check`) and its size in bytes.
    pub(super) async fn send(&self, call: Call<'_>) -> Result<(Json, u64), EsError> {
        let check = call.check;
        let read = move |bytes: &[u8]| -> Result<Json, Bad> {
            let json: Json =
                serde_json::from_slice(bytes).map_err(|e| Bad::NotJson(e.to_string()))?;
            if let Some(check) = check {
                check(&json).map_err(Bad::Invalid)?;
            }
            Ok(json)
        };
        self.send_with(call, &read).await
    }

    /// Sends `call`, retrying passing failures as its [`Retry`] allows; a
    /// 2xx body is read by `read`. Returns what it read and the body's size.
    async fn send_with<T>(&self, call: Call<'_>, read: Reader<'_, T>) -> Result<(T, u64), EsError> {
        let call = &call;
        // Until some node has answered, a server that is not there fails
        // the run after --start-retry-for, not all of --retry-for.
        let retrier = match self.answered.load(Ordering::Relaxed) {
            true => self.retry.retrier(),
            false => self.retry.starting(),
        };
        let sent = retrier
            .run_async(
                || self.attempt(call, read),
                |failed: &Failed, progress, delay| {
                    if let Failed::Passing(why) = failed {
                        tracing::warn!(
                            "{why}; retry {progress} in {}",
                            crate::retry::format_wait(delay)
                        );
                    }
                    if let Some(m) = call.metrics.or(call.retries) {
                        m.retried(Stage::Source);
                    }
                },
            )
            .await;
        sent.map_err(|gave_up| match (gave_up.error, gave_up.reason) {
            (Failed::Final(e), _) => e,
            (Failed::Passing(why), Reason::Exhausted(spent)) => {
                EsError::Unavailable(format!("{why} ({spent})"))
            }
            (Failed::Passing(why), _) if call.retry == Retry::IfNotActedOn => {
                EsError::ScrollLost(why)
            }
            (Failed::Passing(why), _) => EsError::Unavailable(why),
        })
    }

    /// One try of `call`, on the next node. A passing failure is counted
    /// (with `call.metrics`) and retryable as `call.retry` allows.
    async fn attempt<T>(
        &self,
        call: &Call<'_>,
        read: Reader<'_, T>,
    ) -> Result<(T, u64), Failure<Failed>> {
        let n = self.next.load(Ordering::Relaxed) % self.nodes.len();
        let (client, shown) = &self.nodes[n];
        let started = Instant::now();
        let mut headers = HeaderMap::new();
        headers.insert(
            ACCEPT_ENCODING,
            HeaderValue::from_static(self.accept_encoding),
        );
        let sent = client
            .send(
                call.method,
                call.path,
                headers,
                Some(call.query),
                call.body.clone().map(JsonBody::new),
                None,
            )
            .await;
        let fatal = |e| Failure::fatal(Failed::Final(e));
        let passing = match sent {
            Err(e) => self.not_sent(n, shown, &e).map_err(fatal)?,
            Ok(resp) => match self.received(shown, resp, started, call, read).await {
                Ok(Ok(done)) => return Ok(done),
                Ok(Err(passing)) => passing,
                Err(e) => return Err(fatal(e)),
            },
        };
        if let Some(m) = call.metrics {
            m.error(Stage::Source, passing.error_type, 1);
        }
        Err(Failure {
            retryable: match call.retry {
                Retry::Passing => true,
                Retry::IfNotActedOn => !passing.acted,
                Retry::Never => false,
            },
            hint: passing.hint,
            error: Failed::Passing(passing.why),
        })
    }

    /// A request that got no answer from node `n`: a passing failure (the
    /// next node is tried next), or an error no retry can mend.
    fn not_sent(
        &self,
        n: usize,
        shown: &str,
        e: &elasticsearch::Error,
    ) -> Result<Passing, EsError> {
        // Try the next node, if there is one.
        self.next.fetch_add(1, Ordering::Relaxed);
        if e.is_timeout() {
            return Ok(Passing::new(
                format!(
                    "no answer from {shown} within --es-timeout {}",
                    format_duration(self.timeout)
                ),
                ErrorType::Timeout,
                true,
            ));
        }
        let chain = crate::error::chain(e);
        if let Some(why) = untrusted(&chain) {
            // Not a passing failure: retrying cannot help.
            return Err(EsError::Auth(format!(
                "{shown} presented a TLS certificate that is not trusted ({why}); give its CA with --es-ca-cert, or skip the check with --es-insecure"
            )));
        }
        if let Some(why) = self.unresolvable(n, &chain) {
            // Before any answer, a name that does not resolve is a mistake
            // in --es-url (as for --db-host): exit 2 at once once every node
            // failed so, instead of retrying for --retry-for.
            if self.unresolved.iter().all(|u| u.load(Ordering::Relaxed)) {
                return Err(EsError::Unresolved(format!(
                    "cannot resolve the host name of {shown} ({why}); check --es-url"
                )));
            }
            return Ok(Passing::new(
                format!("cannot resolve the host name of {shown} ({why})"),
                ErrorType::Connection,
                false,
            ));
        }
        let connect = std::error::Error::source(e)
            .and_then(|s| s.downcast_ref::<reqwest::Error>())
            .is_some_and(reqwest::Error::is_connect);
        Ok(Passing::new(
            format!("cannot reach {shown}: {chain}"),
            ErrorType::Connection,
            !connect,
        ))
    }

    /// An answer: what `read` made of it (`Ok(Ok(..))`), a passing failure
    /// (`Ok(Err(..))`), or an error no retry can mend.
    async fn received<T>(
        &self,
        shown: &str,
        resp: elasticsearch::http::response::Response,
        started: Instant,
        call: &Call<'_>,
        read: Reader<'_, T>,
    ) -> Result<Result<(T, u64), Passing>, EsError> {
        self.answered.store(true, Ordering::Relaxed);
        let status = resp.status_code().as_u16();
        let hint = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = match resp.bytes().await {
            Ok(bytes) => bytes,
            Err(e) => {
                self.next.fetch_add(1, Ordering::Relaxed);
                let et = if e.is_timeout() {
                    ErrorType::Timeout
                } else {
                    ErrorType::Connection
                };
                let why = format!("reading the answer from {shown}: {e}");
                return Ok(Err(Passing::new(why, et, true)));
            }
        };
        if let Some(m) = call.metrics {
            m.fetch_observed(started.elapsed());
            m.source_bytes(bytes.len() as u64);
        }
        Ok(match self.answer(shown, status, &bytes, read)? {
            Ok(value) => Ok((value, bytes.len() as u64)),
            Err((why, et)) => Err(Passing {
                hint,
                ..Passing::new(why, et, status != 429)
            }),
        })
    }

    /// When no node has answered yet and the error chain of a request to
    /// node `n` is a failed host name lookup: marks the node and says why.
    fn unresolvable<'c>(&self, n: usize, chain: &'c str) -> Option<&'c str> {
        const MARK: &str = "dns error: ";
        if self.answered.load(Ordering::Relaxed) {
            return None;
        }
        let at = chain.find(MARK)? + MARK.len();
        self.unresolved[n].store(true, Ordering::Relaxed);
        Some(chain[at..].trim())
    }

    /// Reads one answer: `Ok(Ok(value))` to return, `Ok(Err(..))` for a
    /// passing failure, `Err` for a failure no retry can mend.
    #[allow(clippy::type_complexity)]
    fn answer<T>(
        &self,
        shown: &str,
        status: u16,
        bytes: &[u8],
        read: Reader<'_, T>,
    ) -> Result<Result<T, (String, ErrorType)>, EsError> {
        match status {
            200..=299 => match read(bytes) {
                Ok(v) => Ok(Ok(v)),
                Err(Bad::NotJson(e)) => Ok(Err((
                    format!(
                        "{shown} answered HTTP {status} with a body that is not JSON ({e}; it starts with '{}'): a proxy or gateway page, or a body cut short",
                        preview(bytes)
                    ),
                    ErrorType::Parse,
                ))),
                Err(Bad::Invalid(what)) => Ok(Err((
                    format!(
                        "{shown} answered HTTP {status} with JSON that is not a valid response: {what}"
                    ),
                    ErrorType::Parse,
                ))),
            },
            401 | 403 => Err(EsError::Auth(format!(
                "{shown} refused the credentials (HTTP {status}); check --es-user and PIPELINE_ES_PASS, or PIPELINE_ES_API_KEY"
            ))),
            429 | 502 | 503 | 504 => Ok(Err((
                format!("{shown} answered HTTP {status}"),
                ErrorType::Server,
            ))),
            _ => {
                let json: Json = serde_json::from_slice(bytes).unwrap_or(Json::Null);
                let (kind, reason) = error_reason(&json);
                if kind == "index_not_found_exception" {
                    return Err(EsError::Missing(reason));
                }
                if kind == "search_context_missing_exception"
                    || reason.contains("No search context found")
                {
                    return Err(EsError::Expired(reason));
                }
                if json.is_null() {
                    return Err(EsError::Refused(format!(
                        "{shown} answered HTTP {status}: '{}'",
                        preview(bytes)
                    )));
                }
                Err(EsError::Refused(format!("HTTP {status} {kind}: {reason}")))
            }
        }
    }
}

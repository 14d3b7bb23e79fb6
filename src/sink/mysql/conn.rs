//! Talking to the server: connection options and TLS, connecting, and what
//! each server error means to the sink (retry, the rows' fault, fatal).
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, SslOpts, Value as MyValue};

use crate::config::{MysqlConfig, SslMode};
use crate::error::{ErrorType, PipelineError, Stage};

/// The error of a statement that got no answer within `--db-timeout`: the
/// connection is then given up and the batch retried on a new one.
pub(super) fn timed_out(limit: Duration) -> DbError {
    DbError::Retry(
        ErrorType::Timeout,
        format!(
            "no answer from MySQL within --db-timeout {}",
            crate::retry::format_duration(limit)
        ),
    )
}

/// Runs one statement bounded by `--db-timeout`.
pub(super) async fn bounded<T>(
    limit: Duration,
    statement: impl std::future::Future<Output = Result<T, mysql_async::Error>>,
) -> Result<Result<T, mysql_async::Error>, DbError> {
    tokio::time::timeout(limit, statement)
        .await
        .map_err(|_| timed_out(limit))
}

/// A driver error as one plain line: the driver nests I/O errors in two
/// wrappers that each repeat "Input/output error: ".
pub(super) fn plain(e: &mysql_async::Error) -> String {
    match e {
        mysql_async::Error::Io(mysql_async::IoError::Io(io)) => io.to_string(),
        other => {
            let text = other.to_string();
            let mut rest = text.as_str();
            while let Some(r) = rest.strip_prefix("Input/output error: ") {
                rest = r;
            }
            rest.to_string()
        }
    }
}

/// A database error, sorted into what the sink does about it.
#[derive(Debug)]
pub(super) enum DbError {
    /// Passing: roll back, reconnect, retry the batch.
    Retry(ErrorType, String),
    /// The rows' fault: isolate them.
    Data(ErrorType, String),
    /// Anything else: the batch (and the run) fails.
    Fatal(ErrorType, String),
}

impl DbError {
    /// Its type, in the metrics' vocabulary.
    pub(super) fn error_type(&self) -> ErrorType {
        match self {
            DbError::Retry(t, _) | DbError::Data(t, _) | DbError::Fatal(t, _) => *t,
        }
    }
}

pub(super) fn classify(e: &mysql_async::Error) -> DbError {
    use mysql_async::Error as E;
    match e {
        E::Server(se) => {
            let msg = format!("server error {} ({}): {}", se.code, se.state, se.message);
            match se.code {
                // deadlock, lock wait timeout
                1213 | 1205 => DbError::Retry(ErrorType::Timeout, msg),
                // gone away, lost, killed (KILL, KILL QUERY), shutting down,
                // interrupted; an XA transaction rolled back under us
                2006 | 2013 | 1927 | 1053 | 1317 | 1158 | 1159 | 1160 | 1161 | 1399 | 1402
                | 1613 | 1614 => DbError::Retry(ErrorType::Connection, msg),
                // max_statement_time
                1969 | 3024 => DbError::Retry(ErrorType::Timeout, msg),
                1062 | 1586 => DbError::Data(ErrorType::Duplicate, msg),
                // bad values, too long, out of range, NULL, bad dates, JSON, checks, FKs
                1048 | 1263 | 1264 | 1265 | 1292 | 1366 | 1367 | 1406 | 1411 | 1364 | 1690
                | 3140 | 4025 | 3819 | 1452 | 1451 | 4078 | 1918 => {
                    DbError::Data(ErrorType::Conversion, msg)
                }
                1044 | 1045 | 1698 | 1142 | 1143 | 1227 => DbError::Fatal(ErrorType::Auth, msg),
                // a packet over max_allowed_packet: the same again would fail again
                1153 | 1301 => DbError::Fatal(ErrorType::Server, msg),
                _ => DbError::Fatal(ErrorType::Server, msg),
            }
        }
        // The driver refusing a packet over max_allowed_packet (rows are
        // sized so that it never happens) is not a lost connection: a retry
        // would send the same packet again.
        E::Io(_) if plain(e).contains("larger than max_allowed_packet") => {
            DbError::Fatal(ErrorType::Server, plain(e))
        }
        E::Io(_) | E::Driver(_) => DbError::Retry(ErrorType::Connection, plain(e)),
        other => DbError::Fatal(ErrorType::Server, plain(other)),
    }
}

pub(super) fn ssl_opts(cfg: &MysqlConfig) -> Option<SslOpts> {
    let base = SslOpts::default();
    let with_ca = |o: SslOpts| match &cfg.ssl_ca {
        Some(ca) => o.with_root_certs(vec![ca.clone().into()]),
        None => o,
    };
    match cfg.ssl_mode {
        SslMode::Disabled => None,
        SslMode::Preferred | SslMode::Required => Some(
            base.with_danger_accept_invalid_certs(true)
                .with_danger_skip_domain_validation(true),
        ),
        SslMode::VerifyCa => Some(with_ca(base).with_danger_skip_domain_validation(true)),
        SslMode::VerifyIdentity => Some(with_ca(base)),
    }
}

pub(super) fn build_opts(cfg: &MysqlConfig, ssl: Option<SslOpts>) -> Opts {
    OptsBuilder::default()
        .ip_or_hostname(cfg.host.clone())
        .tcp_port(cfg.port)
        .user(Some(cfg.user.clone()))
        .pass(cfg.password.as_ref().map(|p| p.expose().to_string()))
        .db_name(Some(cfg.database.clone()))
        .prefer_socket(false)
        .ssl_opts(ssl)
        .stmt_cache_size(64)
        .init(vec![
            // Dates and times are UTC on the wire; strict so bad values are errors.
            "SET time_zone = '+00:00'",
            "SET SESSION sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')",
        ])
        .into()
}

async fn connect_once(opts: Opts, limit: Duration) -> Result<Conn, mysql_async::Error> {
    match tokio::time::timeout(limit, Conn::new(opts)).await {
        Ok(r) => r,
        Err(_) => Err(mysql_async::Error::Io(mysql_async::IoError::Io(
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "no answer from MySQL within --db-timeout {} while connecting",
                    crate::retry::format_duration(limit)
                ),
            ),
        ))),
    }
}

/// Connects; with `--db-ssl-mode preferred`, falls back to plain TCP when
/// the server does not offer TLS.
pub(super) async fn connect(
    shared_opts: &Opts,
    cfg: &MysqlConfig,
) -> Result<Conn, mysql_async::Error> {
    match connect_once(shared_opts.clone(), cfg.timeout).await {
        Err(mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer))
            if cfg.ssl_mode == SslMode::Preferred =>
        {
            connect_once(build_opts(cfg, None), cfg.timeout).await
        }
        other => other,
    }
}

/// Connects when the run starts. A server that cannot be reached (refused,
/// timed out, reset) is tried again within `--start-retry-for`, as an
/// Elasticsearch that is not there yet; a host name that does not resolve,
/// a refused user or password, or a missing database fails at once. The
/// error is [`connect_error`]'s, saying how long the server was tried.
pub(super) async fn connect_at_start(
    opts: &Opts,
    cfg: &MysqlConfig,
) -> Result<Conn, PipelineError> {
    use crate::retry::{Failure, Reason};
    let target = format!("{}:{}", cfg.host, cfg.port);
    let tried = cfg
        .retry
        .starting()
        .run_async(
            || async {
                connect(opts, cfg).await.map_err(|e| match classify(&e) {
                    DbError::Retry(..) if !plain(&e).contains("lookup address") => {
                        Failure::passing(e)
                    }
                    _ => Failure::fatal(e),
                })
            },
            |e: &mysql_async::Error, progress: &str, delay| {
                tracing::warn!(
                    "cannot connect to MySQL at {target} ({}); retry {progress} in {}",
                    plain(e),
                    crate::retry::format_wait(delay)
                )
            },
        )
        .await;
    tried.map_err(
        |gave_up| match (connect_error(cfg, &gave_up.error), gave_up.reason) {
            (
                PipelineError::Unavailable {
                    stage,
                    error_type,
                    message,
                },
                Reason::Exhausted(spent),
            ) => PipelineError::Unavailable {
                stage,
                error_type,
                message: format!("{message} ({spent})"),
            },
            (e, _) => e,
        },
    )
}

/// One clear line for a connection that could not be made at start (exit 2).
pub(super) fn connect_error(cfg: &MysqlConfig, e: &mysql_async::Error) -> PipelineError {
    let target = format!("{}:{}", cfg.host, cfg.port);
    let (error_type, why) = match e {
        // 1698: no password is accepted for this user (unix_socket auth).
        mysql_async::Error::Server(se) if se.code == 1045 || se.code == 1698 => (
            ErrorType::Auth,
            format!(
                "access denied for user '{}' (check --db-user and the password, which came from {})",
                cfg.user, cfg.password_source
            ),
        ),
        mysql_async::Error::Server(se) if se.code == 1049 => (
            ErrorType::Config,
            format!("database '{}' does not exist (--db-name)", cfg.database),
        ),
        mysql_async::Error::Server(se) if se.code == 1044 => (
            ErrorType::Auth,
            format!("user '{}' may not use database '{}'", cfg.user, cfg.database),
        ),
        mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer) => (
            ErrorType::Config,
            "the server does not offer TLS, which --db-ssl-mode asks for".into(),
        ),
        other => (classify(other).error_type(), plain(other)),
    };
    PipelineError::Unavailable {
        stage: Stage::Sink,
        error_type,
        message: format!(
            "cannot connect to MySQL at {target}: {why}; check --db-url (or --db-host, --db-port, --db-user) and that the server is up"
        ),
    }
}

pub(super) async fn text_rows(
    conn: &mut Conn,
    sql: &str,
    params: Vec<MyValue>,
) -> Result<Vec<Vec<Option<String>>>, mysql_async::Error> {
    let rows: Vec<mysql_async::Row> = conn.exec(sql, params).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            row.unwrap()
                .into_iter()
                .map(|v| match v {
                    MyValue::NULL => None,
                    MyValue::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
                    other => Some(other.as_sql(true).trim_matches('\'').to_string()),
                })
                .collect()
        })
        .collect())
}

pub(super) async fn exec(conn: &mut Conn, limit: Duration, sql: &str) -> Result<(), DbError> {
    bounded(limit, conn.query_drop(sql))
        .await?
        .map_err(|e| match classify(&e) {
            // A data error on a control statement is not about a row.
            DbError::Data(t, m) => DbError::Fatal(t, format!("{m} (during {sql})")),
            DbError::Retry(t, m) => DbError::Retry(t, format!("{m} (during {sql})")),
            DbError::Fatal(t, m) => DbError::Fatal(t, format!("{m} (during {sql})")),
        })
}

/// Runs one statement with parameters, bounded by `--db-timeout`; errors
/// as [`exec`] gives them.
pub(super) async fn exec_with(
    conn: &mut Conn,
    limit: Duration,
    sql: &str,
    params: Vec<MyValue>,
) -> Result<(), DbError> {
    bounded(limit, conn.exec_drop(sql, params))
        .await?
        .map_err(|e| match classify(&e) {
            DbError::Data(t, m) | DbError::Fatal(t, m) => {
                DbError::Fatal(t, format!("{m} (during {sql})"))
            }
            DbError::Retry(t, m) => DbError::Retry(t, format!("{m} (during {sql})")),
        })
}

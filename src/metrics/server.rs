//! The optional HTTP server (actix-web on its own thread, signals disabled):
//! `GET /metrics`, `GET /status` (the run now, as JSON), `GET /health` and
//! `GET /` (the live page). Unknown paths answer 404, other
//! methods on known paths 405. It is stopped gracefully, after the pipeline
//! has drained, so in-flight scrapes finish.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use actix_web::dev::ServerHandle;
use actix_web::{http::header, web, App, HttpResponse, HttpServer};

use super::{Metrics, TEXT_CONTENT_TYPE};
use crate::error::PipelineError;

/// A running metrics server.
pub struct MetricsServer {
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
    addr: SocketAddr,
}

type Shared = web::Data<Arc<Metrics>>;

async fn metrics(m: Shared) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(TEXT_CONTENT_TYPE)
        .body(m.render())
}

async fn health(m: Shared) -> HttpResponse {
    let (well, body) = m.health();
    let mut resp = if well {
        HttpResponse::Ok()
    } else {
        HttpResponse::ServiceUnavailable()
    };
    resp.content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body.to_string())
}

async fn status(m: Shared) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(m.status().to_string())
}

async fn index(m: Shared) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        // The page's own style and script, and /status: nothing from
        // elsewhere is loaded, or may be.
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'",
        ))
        .body(super::page::render(&m.status()))
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound()
        .content_type("text/plain; charset=utf-8")
        .body("not found; try /metrics, /status, /health or /\n")
}

async fn method_not_allowed() -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, "GET, HEAD"))
        .content_type("text/plain; charset=utf-8")
        .body("method not allowed; use GET\n")
}

impl MetricsServer {
    /// Binds `host:port` and serves in a background thread. A bind failure
    /// (port in use, bad address) is returned before anything is served.
    pub fn start(host: &str, port: u16, m: Arc<Metrics>) -> Result<MetricsServer, PipelineError> {
        let (tx, rx) = std::sync::mpsc::channel();
        let bind_host = host.to_string();
        let thread = std::thread::Builder::new()
            .name("metrics-http".into())
            .spawn(move || {
                let system = actix_web::rt::System::new();
                system.block_on(async move {
                    let data = web::Data::new(m);
                    let server = HttpServer::new(move || {
                        App::new()
                            .app_data(data.clone())
                            .service(
                                web::resource("/metrics")
                                    .route(web::get().to(metrics))
                                    .route(web::head().to(metrics))
                                    .default_service(web::to(method_not_allowed)),
                            )
                            .service(
                                web::resource("/health")
                                    .route(web::get().to(health))
                                    .route(web::head().to(health))
                                    .default_service(web::to(method_not_allowed)),
                            )
                            .service(
                                web::resource("/status")
                                    .route(web::get().to(status))
                                    .route(web::head().to(status))
                                    .default_service(web::to(method_not_allowed)),
                            )
                            .service(
                                web::resource("/")
                                    .route(web::get().to(index))
                                    .route(web::head().to(index))
                                    .default_service(web::to(method_not_allowed)),
                            )
                            .default_service(web::to(not_found))
                    })
                    .workers(1)
                    .disable_signals()
                    .shutdown_timeout(5)
                    .bind((bind_host.as_str(), port));
                    match server {
                        Err(e) => {
                            let _ = tx.send(Err(e));
                        }
                        Ok(server) => {
                            let addr = server.addrs().first().copied();
                            let running = server.run();
                            let _ = tx.send(Ok((running.handle(), addr)));
                            let _ = running.await;
                        }
                    }
                });
            })
            .map_err(|e| PipelineError::Config(format!("cannot start the thread serving --metrics-port: {e}; leave out --metrics-port, or free memory and run again")))?;

        let bind_error = |reason: String| PipelineError::MetricsBind {
            host: host.to_string(),
            port,
            reason,
        };
        match rx.recv() {
            Ok(Ok((handle, Some(addr)))) => Ok(MetricsServer {
                handle,
                thread: Some(thread),
                addr,
            }),
            Ok(Ok((handle, None))) => {
                drop(handle.stop(false));
                Err(bind_error("no address to listen on".into()))
            }
            Ok(Err(e)) => {
                let _ = thread.join();
                let reason = if e.kind() == std::io::ErrorKind::AddrInUse {
                    "the port is already in use".to_string()
                } else {
                    e.to_string()
                };
                Err(bind_error(reason))
            }
            Err(_) => Err(bind_error("the metrics thread ended early".into())),
        }
    }

    /// The address actually bound (useful with `--metrics-port 0`).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections, lets in-flight requests finish, and waits
    /// for the server thread.
    pub fn stop(mut self) {
        // `stop` returns a future that resolves once the server is down; the
        // thread running the server finishes at the same moment, so joining
        // the thread is the wait.
        drop(self.handle.stop(true));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

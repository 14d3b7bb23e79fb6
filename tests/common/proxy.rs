//! A small fault-injecting HTTP/1.1 proxy for tests: it sits between
//! pipeline-cli and a real server on loopback, forwards every request, and
//! replaces chosen answers with a fault (an HTML login page with status 200,
//! a body cut short, a stall, a reset connection, an error status).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the proxy answers instead of the server's answer.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Status 200 with an HTML sign-in page (what an SSO gateway sends).
    Html,
    /// The server's answer with its body cut in half (Content-Length kept
    /// consistent, so only the JSON is broken).
    Truncate,
    /// The server's status and headers, half the body, then the connection
    /// closes (Content-Length announces the whole body).
    CutConnection,
    /// The request is forwarded but nothing is ever answered.
    Stall,
    /// The request is not answered: the connection is closed.
    Reset,
    /// This status with an error body.
    Status(u16),
    /// This status with an Elasticsearch error of this type.
    Error(u16, &'static str),
    /// The server's answer with its body passed through this function.
    Rewrite(fn(&[u8]) -> Vec<u8>),
}

/// Which requests get a fault.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The request line (`POST /docs/_search?scroll=1m`) contains this.
    pub request: String,
    /// The request body contains this (empty: any).
    pub body: String,
    /// Matching requests let through before the first fault.
    pub skip: usize,
    /// Faults to inject (then the rule is spent).
    pub times: usize,
    /// The fault.
    pub fault: Fault,
}

impl Rule {
    /// `times` faults on requests whose line contains `request`.
    pub fn new(request: &str, fault: Fault, times: usize) -> Rule {
        Rule {
            request: request.to_string(),
            body: String::new(),
            skip: 0,
            times,
            fault,
        }
    }

    /// Only requests whose body contains `body`.
    pub fn with_body(mut self, body: &str) -> Rule {
        self.body = body.to_string();
        self
    }

    /// Let `n` matching requests through first.
    pub fn after(mut self, n: usize) -> Rule {
        self.skip = n;
        self
    }
}

struct State {
    upstream: u16,
    rules: Mutex<Vec<Rule>>,
    injected: AtomicUsize,
    requests: Mutex<Vec<String>>,
    /// Each request's Accept-Encoding (empty when it had none).
    encodings: Mutex<Vec<String>>,
    stop: AtomicBool,
}

/// A running proxy on a free loopback port.
pub struct Proxy {
    /// The port to point pipeline-cli at.
    pub port: u16,
    state: Arc<State>,
}

impl Proxy {
    /// Starts a proxy in front of `127.0.0.1:upstream`.
    pub fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State {
            upstream,
            rules: Mutex::new(Vec::new()),
            injected: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
            encodings: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let s = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let s = s.clone();
                std::thread::spawn(move || {
                    let _ = serve(conn, &s);
                });
            }
        });
        Proxy { port, state }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Adds a fault rule (rules are tried in the order added).
    pub fn add(&self, rule: Rule) {
        self.state.rules.lock().unwrap().push(rule);
    }

    /// Faults injected so far.
    pub fn injected(&self) -> usize {
        self.state.injected.load(Ordering::SeqCst)
    }

    /// Every request line seen so far.
    pub fn requests(&self) -> Vec<String> {
        self.state.requests.lock().unwrap().clone()
    }

    /// The Accept-Encoding of every request seen so far ("" for none).
    pub fn accept_encodings(&self) -> Vec<String> {
        self.state.encodings.lock().unwrap().clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

struct Request {
    line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn read_request(r: &mut BufReader<TcpStream>) -> std::io::Result<Option<Request>> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let line = line.trim_end().to_string();
    let mut headers = Vec::new();
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        r.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            let (k, v) = (k.trim().to_string(), v.trim().to_string());
            if k.eq_ignore_ascii_case("content-length") {
                length = v.parse().unwrap_or(0);
            }
            headers.push((k, v));
        }
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body)?;
    Ok(Some(Request {
        line,
        headers,
        body,
    }))
}

/// The fault for this request, if a rule takes it.
fn fault_for(state: &State, req: &Request) -> Option<Fault> {
    let body = String::from_utf8_lossy(&req.body);
    let mut rules = state.rules.lock().unwrap();
    for rule in rules.iter_mut() {
        if rule.times == 0 || !req.line.contains(&rule.request) || !body.contains(&rule.body) {
            continue;
        }
        if rule.skip > 0 {
            rule.skip -= 1;
            return None;
        }
        rule.times -= 1;
        state.injected.fetch_add(1, Ordering::SeqCst);
        return Some(rule.fault);
    }
    None
}

/// Forwards one request; returns (status line, headers, decoded body).
fn forward(state: &State, req: &Request) -> std::io::Result<(String, Vec<String>, Vec<u8>)> {
    let mut up = TcpStream::connect(("127.0.0.1", state.upstream))?;
    let mut head = format!("{}\r\n", req.line);
    for (k, v) in &req.headers {
        if k.eq_ignore_ascii_case("connection")
            || k.eq_ignore_ascii_case("content-length")
            || k.eq_ignore_ascii_case("accept-encoding")
        {
            continue;
        }
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        req.body.len()
    ));
    up.write_all(head.as_bytes())?;
    up.write_all(&req.body)?;
    let mut raw = Vec::new();
    up.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap_or("HTTP/1.1 502 Bad Gateway")
        .to_string();
    let mut chunked = false;
    let mut headers = Vec::new();
    for h in lines {
        let name = h
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match name.as_str() {
            "transfer-encoding" => chunked = h.to_ascii_lowercase().contains("chunked"),
            "content-length" | "connection" | "keep-alive" => {}
            _ => headers.push(h.to_string()),
        }
    }
    let rest = &raw[split + 4..];
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    Ok((status, headers, body))
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&data[..end]);
        let size =
            usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap_or(0);
        data = &data[end + 2..];
        if size == 0 || data.len() < size {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[(size + 2).min(data.len())..];
    }
}

fn respond(
    conn: &mut TcpStream,
    status: &str,
    headers: &[String],
    body: &[u8],
    announced: usize,
) -> std::io::Result<()> {
    let mut head = format!("{status}\r\n");
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str(&format!("Content-Length: {announced}\r\n\r\n"));
    conn.write_all(head.as_bytes())?;
    conn.write_all(body)?;
    conn.flush()
}

fn serve(conn: TcpStream, state: &State) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut conn = conn;
    while let Some(req) = read_request(&mut reader)? {
        state.requests.lock().unwrap().push(req.line.clone());
        let encoding = req
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("accept-encoding"))
            .map_or(String::new(), |(_, v)| v.clone());
        state.encodings.lock().unwrap().push(encoding);
        let fault = fault_for(state, &req);
        match fault {
            None => {
                let (status, headers, body) = match forward(state, &req) {
                    Ok(r) => r,
                    Err(_) => {
                        let _ = conn.shutdown(Shutdown::Both);
                        return Ok(());
                    }
                };
                respond(&mut conn, &status, &headers, &body, body.len())?;
            }
            Some(Fault::Html) => {
                let page = b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body><form action=\"/login\"><input name=\"user\"></form></body></html>\n";
                respond(
                    &mut conn,
                    "HTTP/1.1 200 OK",
                    &["Content-Type: text/html; charset=utf-8".to_string()],
                    page,
                    page.len(),
                )?;
            }
            Some(Fault::Rewrite(f)) => {
                let (status, headers, body) = forward(state, &req)?;
                let body = f(&body);
                respond(&mut conn, &status, &headers, &body, body.len())?;
            }
            Some(Fault::Truncate) => {
                let (status, headers, body) = forward(state, &req)?;
                let half = &body[..body.len() / 2];
                respond(&mut conn, &status, &headers, half, half.len())?;
            }
            Some(Fault::CutConnection) => {
                let (status, headers, body) = forward(state, &req)?;
                let half = &body[..body.len() / 2];
                respond(&mut conn, &status, &headers, half, body.len())?;
                let _ = conn.shutdown(Shutdown::Both);
                return Ok(());
            }
            Some(Fault::Stall) => {
                let _ = forward(state, &req);
                while !state.stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                }
                return Ok(());
            }
            Some(Fault::Reset) => {
                let _ = conn.shutdown(Shutdown::Both);
                return Ok(());
            }
            Some(fault @ (Fault::Status(_) | Fault::Error(..))) => {
                let (code, kind) = match fault {
                    Fault::Error(code, kind) => (code, kind),
                    Fault::Status(code) => (code, "proxy_fault"),
                    _ => unreachable!(),
                };
                let body = format!(
                    "{{\"error\":{{\"root_cause\":[{{\"type\":\"{kind}\",\"reason\":\"injected {code}\"}}],\"type\":\"{kind}\",\"reason\":\"injected {code}\"}},\"status\":{code}}}"
                );
                respond(
                    &mut conn,
                    &format!("HTTP/1.1 {code} Injected"),
                    &["Content-Type: application/json".to_string()],
                    body.as_bytes(),
                    body.len(),
                )?;
            }
        }
    }
    Ok(())
}

/// A TCP proxy for MySQL's protocol in front of a real server: it passes
/// bytes both ways, and cuts a connection at a chosen statement (matched in
/// the client-to-server stream, so TLS must be off). After a cut it can
/// refuse new connections for a while, to hold a client's reconnect back
/// while a test does something else.
pub struct TcpProxy {
    /// The port to point pipeline-cli at.
    pub port: u16,
    state: Arc<TcpState>,
}

/// Where a [`TcpProxy`] cuts.
#[derive(Debug, Clone)]
pub struct Cut {
    /// The client's bytes contain this (`XA PREPARE`).
    pub statement: String,
    /// True: the statement reaches the server (it runs) and only its answer
    /// is lost; false: the connection is cut before the server sees it.
    pub forward: bool,
    /// Matching statements let through before the cut.
    pub skip: usize,
    /// New connections are refused for this long after the cut.
    pub refuse_for: Duration,
    /// Every open connection is cut, not only the one that sent it.
    pub all: bool,
}

struct TcpState {
    upstream: u16,
    cuts: Mutex<Vec<Cut>>,
    done: AtomicUsize,
    refuse_until: Mutex<Option<std::time::Instant>>,
    /// Every connection's two sockets, for a cut of them all.
    open: Mutex<Vec<(TcpStream, TcpStream)>>,
    stop: AtomicBool,
    /// Each chunk of client bytes waits this long before it is passed on.
    delay: Mutex<Duration>,
}

impl TcpProxy {
    /// Starts a proxy in front of `127.0.0.1:upstream`.
    pub fn start(upstream: u16) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(TcpState {
            upstream,
            cuts: Mutex::new(Vec::new()),
            done: AtomicUsize::new(0),
            refuse_until: Mutex::new(None),
            open: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            delay: Mutex::new(Duration::ZERO),
        });
        let s = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let refusing = s
                    .refuse_until
                    .lock()
                    .unwrap()
                    .is_some_and(|t| std::time::Instant::now() < t);
                if refusing {
                    let _ = conn.shutdown(Shutdown::Both);
                    continue;
                }
                let s = s.clone();
                std::thread::spawn(move || {
                    let _ = tcp_serve(conn, &s);
                });
            }
        });
        TcpProxy { port, state }
    }

    /// `mysql://root@127.0.0.1:PORT/test`.
    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}/test", self.port)
    }

    /// Cuts the connection that sends `cut.statement` (once).
    pub fn cut(&self, cut: Cut) {
        self.state.cuts.lock().unwrap().push(cut);
    }

    /// Connections cut so far.
    pub fn cuts_done(&self) -> usize {
        self.state.done.load(Ordering::SeqCst)
    }

    /// Holds each chunk the client sends this long before passing it on: a
    /// slow link, for a run that lasts (zero: at once again).
    pub fn slow(&self, delay: Duration) {
        *self.state.delay.lock().unwrap() = delay;
    }

    /// Refuses new connections until `refuse_for` from now (zero: accepts again).
    pub fn refuse_for(&self, refuse_for: Duration) {
        *self.state.refuse_until.lock().unwrap() = Some(std::time::Instant::now() + refuse_for);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        *self.state.refuse_until.lock().unwrap() = None;
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// The cut this chunk of client bytes (after `tail`, the end of the last
/// chunk) triggers, if any.
fn tcp_cut_for(state: &TcpState, tail: &[u8], chunk: &[u8]) -> Option<Cut> {
    let mut seen = tail.to_vec();
    seen.extend_from_slice(chunk);
    let mut cuts = state.cuts.lock().unwrap();
    // A match that ends in this chunk (one wholly in `tail` was seen before).
    let at = cuts.iter().position(|c| {
        let pat = c.statement.as_bytes();
        seen.windows(pat.len())
            .enumerate()
            .any(|(i, w)| w == pat && i + pat.len() > tail.len())
    })?;
    if cuts[at].skip > 0 {
        cuts[at].skip -= 1;
        return None;
    }
    Some(cuts.remove(at))
}

fn tcp_serve(client: TcpStream, state: &Arc<TcpState>) -> std::io::Result<()> {
    let upstream = TcpStream::connect(("127.0.0.1", state.upstream))?;
    state
        .open
        .lock()
        .unwrap()
        .push((client.try_clone()?, upstream.try_clone()?));
    let cutting = Arc::new(AtomicBool::new(false));
    {
        // Server to client, until the connection ends or is cut.
        let mut from = upstream.try_clone()?;
        let mut to = client.try_clone()?;
        let cutting = cutting.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if cutting.load(Ordering::SeqCst) || to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let _ = to.shutdown(Shutdown::Both);
        });
    }
    let mut from = client.try_clone()?;
    let mut to = upstream.try_clone()?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        if let Some(cut) = tcp_cut_for(state, &tail, chunk) {
            cutting.store(true, Ordering::SeqCst);
            state.done.fetch_add(1, Ordering::SeqCst);
            if !cut.refuse_for.is_zero() {
                *state.refuse_until.lock().unwrap() =
                    Some(std::time::Instant::now() + cut.refuse_for);
            }
            if cut.forward {
                let _ = to.write_all(chunk);
                // Time for the server to run it before the connection goes.
                std::thread::sleep(Duration::from_millis(300));
            }
            let _ = client.shutdown(Shutdown::Both);
            let _ = upstream.shutdown(Shutdown::Both);
            if cut.all {
                for (c, u) in state.open.lock().unwrap().drain(..) {
                    let _ = c.shutdown(Shutdown::Both);
                    let _ = u.shutdown(Shutdown::Both);
                }
            }
            return Ok(());
        }
        let delay = *state.delay.lock().unwrap();
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        if to.write_all(chunk).is_err() {
            break;
        }
        tail = chunk[chunk.len().saturating_sub(64)..].to_vec();
    }
    let _ = upstream.shutdown(Shutdown::Both);
    let _ = client.shutdown(Shutdown::Both);
    Ok(())
}

//! An HTTP/1.1 proxy in front of one S3 server, for tests that count
//! requests or need the store to fail in a controlled way.
//!
//! The client-to-server direction is parsed (request line, headers, body by
//! `Content-Length` or chunked) so that each request is seen exactly once on
//! keep-alive connections. Responses are forwarded byte for byte, and their
//! heads parsed on the way, so that each request's log entry also says what
//! it was answered (HTTP/1.1 answers come in the order of the requests).
//! Requests are forwarded unchanged, `Host` included, so SigV4 signatures
//! still verify upstream.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// What the proxy does to the requests that follow. One fault at a time;
/// [`Proxy::set_fault`] replaces the current one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Answer the next `times` requests with this status and an S3 XML error
    /// body whose `<Code>` is `s3_code`, without forwarding them.
    Status {
        code: u16,
        s3_code: &'static str,
        times: u32,
    },
    /// For the next `times` requests whose body is longer than `after_bytes`
    /// (as sent, chunk framing included): forward that much of the body, then
    /// reset both connections.
    DropMidBody {
        after_bytes: usize,
        times: u32,
    },
    /// Let the next `requests` requests through, then act as `then`.
    Pass {
        requests: u32,
        then: Box<Fault>,
    },
    /// Hold every request this long before forwarding it.
    Delay {
        ms: u64,
    },
    /// Let `requests` more requests through, then reset every connection on
    /// its next request (and every new one), as a dead server would, until
    /// the fault is changed. Reset requests are not read, so not counted.
    ResetAfter {
        requests: u32,
    },
    /// Never answer the next `times` requests; keep their connections open
    /// until the client gives up on them, as a hung server does. With
    /// `forward`, the request still reaches the server and takes effect:
    /// only the answer is lost.
    Hang {
        times: u32,
        forward: bool,
    },
    /// Forward the next `times` requests that have a body of a known
    /// length with one byte of it changed (the middle one, its lowest bit
    /// flipped), as a faulty link or middlebox would: same length, other
    /// bytes.
    Corrupt {
        times: u32,
    },
}

/// The fault in force and the requests it applies to.
struct Armed {
    fault: Fault,
    method: Option<String>,
    path_contains: Option<String>,
}

impl Armed {
    fn applies_to(&self, head: &Head) -> bool {
        self.method.as_ref().is_none_or(|m| m == &head.method)
            && self
                .path_contains
                .as_ref()
                .is_none_or(|p| head.target.contains(p.as_str()))
    }
}

/// One request the proxy read, and what became of it.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// The request's headers as sent, in order.
    pub headers: Vec<(String, String)>,
    /// The status of the final answer that went back to the client; `None`
    /// while there is none (yet): the request was dropped, hung or reset.
    pub status: Option<u16>,
    /// The fault in force failed this request (answered it with an error,
    /// dropped its connection mid-body, or never answered it): the server's
    /// answer, if any, never reached the client.
    pub injected: bool,
}

impl Exchange {
    /// First request header with this name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path, without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// The same method on the same path and query: the same request, sent
    /// again.
    pub fn same_request(&self, other: &Exchange) -> bool {
        self.method == other.method && self.target == other.target
    }
}

#[derive(Default)]
struct Log {
    counts: BTreeMap<String, u64>,
    exchanges: Vec<Exchange>,
    /// Each request's head as sent (request line and headers).
    heads: Vec<String>,
}

impl Log {
    fn answered(&mut self, index: usize, status: u16, injected: bool) {
        if let Some(x) = self.exchanges.get_mut(index) {
            x.status = Some(status);
            x.injected |= injected;
        }
    }
}

struct Shared {
    upstream: String,
    log: Mutex<Log>,
    /// Bumped by `reset_counts`, so that answers to requests logged before
    /// it are not written into the new log.
    epoch: AtomicU64,
    /// Requests the fault failed, and connections `ResetAfter` reset.
    injected: AtomicU64,
    body_bytes: AtomicU64,
    connections: AtomicU64,
    fault: Mutex<Armed>,
    stopping: AtomicBool,
    /// Clones of live client sockets, so that drop can end their threads.
    live: Mutex<HashMap<u64, TcpStream>>,
    next_id: AtomicU64,
}

/// Where a request is in the log.
#[derive(Debug, Clone, Copy)]
struct Logged {
    epoch: u64,
    index: usize,
}

enum Action {
    Forward {
        delay_ms: u64,
        drop_after: Option<usize>,
        corrupt: bool,
    },
    Respond {
        code: u16,
        s3_code: &'static str,
    },
    Hang {
        forward: bool,
    },
}

impl Shared {
    fn resetting(&self) -> bool {
        matches!(
            self.fault.lock().unwrap().fault,
            Fault::ResetAfter { requests: 0 }
        )
    }

    /// Logs the request; returns what to do with it and where it is in the
    /// log.
    fn on_request(&self, head: &Head) -> (Action, Logged) {
        let logged = {
            let mut log = self.log.lock().unwrap();
            *log.counts.entry(head.method.clone()).or_insert(0) += 1;
            log.exchanges.push(Exchange {
                method: head.method.clone(),
                target: head.target.clone(),
                headers: head.headers.clone(),
                status: None,
                injected: false,
            });
            log.heads
                .push(String::from_utf8_lossy(&head.raw).into_owned());
            Logged {
                epoch: self.epoch.load(Ordering::SeqCst),
                index: log.exchanges.len() - 1,
            }
        };
        (self.action(head), logged)
    }

    /// Notes the final answer to a logged request.
    fn answered(&self, logged: Logged, status: u16, injected: bool) {
        let mut log = self.log.lock().unwrap();
        if self.epoch.load(Ordering::SeqCst) == logged.epoch {
            log.answered(logged.index, status, injected);
        }
    }

    /// Notes that the fault failed a logged request (without an answer, or
    /// with its body damaged).
    fn failed(&self, logged: Logged) {
        self.injected.fetch_add(1, Ordering::SeqCst);
        let mut log = self.log.lock().unwrap();
        if self.epoch.load(Ordering::SeqCst) == logged.epoch
            && let Some(x) = log.exchanges.get_mut(logged.index)
        {
            x.injected = true;
        }
    }

    fn action(&self, head: &Head) -> Action {
        let forward = Action::Forward {
            delay_ms: 0,
            drop_after: None,
            corrupt: false,
        };
        let mut armed = self.fault.lock().unwrap();
        if !armed.applies_to(head) {
            return forward;
        }
        let fault = &mut armed.fault;
        match fault {
            Fault::None => forward,
            Fault::Pass { requests: 0, then } => {
                *fault = (**then).clone();
                drop(armed);
                self.action(head)
            }
            Fault::Pass { requests, .. } => {
                *requests -= 1;
                forward
            }
            Fault::Delay { ms } => Action::Forward {
                delay_ms: *ms,
                drop_after: None,
                corrupt: false,
            },
            Fault::Status { times: 0, .. }
            | Fault::DropMidBody { times: 0, .. }
            | Fault::Hang { times: 0, .. }
            | Fault::Corrupt { times: 0 } => {
                *fault = Fault::None;
                forward
            }
            Fault::Status {
                code,
                s3_code,
                times,
            } => {
                let action = Action::Respond {
                    code: *code,
                    s3_code,
                };
                *times = times.saturating_sub(1);
                if *times == 0 {
                    *fault = Fault::None;
                }
                action
            }
            Fault::DropMidBody { after_bytes, times } => {
                let longer = match head.body {
                    BodyKind::Length(n) => n > *after_bytes as u64,
                    BodyKind::Chunked => true,
                    BodyKind::None => false,
                };
                if !longer {
                    return forward;
                }
                let action = Action::Forward {
                    delay_ms: 0,
                    drop_after: Some(*after_bytes),
                    corrupt: false,
                };
                *times = times.saturating_sub(1);
                if *times == 0 {
                    *fault = Fault::None;
                }
                action
            }
            Fault::ResetAfter { requests } => {
                *requests = requests.saturating_sub(1);
                forward
            }
            Fault::Hang { times, forward } => {
                let action = Action::Hang { forward: *forward };
                *times = times.saturating_sub(1);
                if *times == 0 {
                    *fault = Fault::None;
                }
                action
            }
            Fault::Corrupt { times } => {
                if !matches!(head.body, BodyKind::Length(n) if n > 0) {
                    return forward;
                }
                *times = times.saturating_sub(1);
                if *times == 0 {
                    *fault = Fault::None;
                }
                Action::Forward {
                    delay_ms: 0,
                    drop_after: None,
                    corrupt: true,
                }
            }
        }
    }
}

pub struct Proxy {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Starts a proxy to `upstream` (`http://127.0.0.1:PORT`); it stops on
    /// drop.
    pub fn start(upstream: &str) -> Proxy {
        let (authority, _) = super::split_url(upstream);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy on 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            upstream: authority,
            log: Mutex::new(Log::default()),
            epoch: AtomicU64::new(0),
            injected: AtomicU64::new(0),
            body_bytes: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            fault: Mutex::new(Armed {
                fault: Fault::None,
                method: None,
                path_contains: None,
            }),
            stopping: AtomicBool::new(false),
            live: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        });
        let s = shared.clone();
        let acceptor = thread::Builder::new()
            .name(format!("proxy-{}", addr.port()))
            .spawn(move || accept_loop(listener, s))
            .expect("spawn proxy thread");
        Proxy {
            endpoint: format!("http://{addr}"),
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// Requests seen, by method.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.shared.log.lock().unwrap().counts.clone()
    }

    pub fn count(&self, method: &str) -> u64 {
        self.counts().get(method).copied().unwrap_or(0)
    }

    /// All requests seen, every method.
    pub fn total(&self) -> u64 {
        self.counts().values().sum()
    }

    /// Request body bytes forwarded upstream, as sent (chunk framing
    /// included).
    pub fn body_bytes(&self) -> u64 {
        self.shared.body_bytes.load(Ordering::SeqCst)
    }

    /// Client connections accepted.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    pub fn reset_counts(&self) {
        {
            let mut log = self.shared.log.lock().unwrap();
            *log = Log::default();
            self.shared.epoch.fetch_add(1, Ordering::SeqCst);
        }
        self.shared.injected.store(0, Ordering::SeqCst);
        self.shared.body_bytes.store(0, Ordering::SeqCst);
        self.shared.connections.store(0, Ordering::SeqCst);
    }

    /// The head (request line and headers) of every request seen, in
    /// arrival order.
    pub fn request_heads(&self) -> Vec<String> {
        self.shared.log.lock().unwrap().heads.clone()
    }

    /// (method, path and query) of every request seen, in arrival order.
    pub fn requests(&self) -> Vec<(String, String)> {
        self.exchanges()
            .into_iter()
            .map(|x| (x.method, x.target))
            .collect()
    }

    /// Every request seen, in arrival order, with its headers and what it
    /// was answered.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.shared.log.lock().unwrap().exchanges.clone()
    }

    /// How many times the fault took effect since the last `reset_counts`:
    /// requests answered with its error, dropped mid-body or left hanging,
    /// and connections reset by `ResetAfter`. (`Delay` fails nothing and is
    /// not counted.)
    pub fn injected(&self) -> u64 {
        self.shared.injected.load(Ordering::SeqCst)
    }

    /// Requests with this method whose path and query contain `needle`.
    pub fn count_matching(&self, method: &str, needle: &str) -> u64 {
        self.requests()
            .iter()
            .filter(|(m, t)| m == method && t.contains(needle))
            .count() as u64
    }

    pub fn set_fault(&self, fault: Fault) {
        self.set_fault_matching("", "", fault);
    }

    /// As [`Proxy::set_fault`], for the requests with this method (any when
    /// empty) whose path and query contain `path_contains`; others pass
    /// untouched and do not use up `times`. A `ResetAfter` counts matching
    /// requests only, then resets everything.
    pub fn set_fault_matching(&self, method: &str, path_contains: &str, fault: Fault) {
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
        *self.shared.fault.lock().unwrap() = Armed {
            fault,
            method: non_empty(method),
            path_contains: non_empty(path_contains),
        };
    }

    /// The fault still in force (a `Status` or `DropMidBody` that has fired
    /// `times` times is back to `None`).
    pub fn fault(&self) -> Fault {
        self.shared.fault.lock().unwrap().fault.clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // accept() has no timeout: a connection of our own wakes it.
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
        for (_, s) in self.shared.live.lock().unwrap().drain() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for conn in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        let Ok(client) = conn else { continue };
        shared.connections.fetch_add(1, Ordering::SeqCst);
        let s = shared.clone();
        let _ = thread::Builder::new()
            .name("proxy-conn".into())
            .spawn(move || Connection::new(s, client).run());
    }
}

enum BodyKind {
    None,
    Length(u64),
    Chunked,
}

struct Head {
    raw: Vec<u8>,
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: BodyKind,
    expect_continue: bool,
}

struct Upstream {
    stream: TcpStream,
    copier: JoinHandle<()>,
    /// Set before a deliberate reset, so that the copier does not send the
    /// client a FIN that would turn the reset into a clean close.
    quiet: Arc<AtomicBool>,
    /// Requests sent on this connection whose answer has not come yet, in
    /// order.
    awaiting: Arc<Mutex<VecDeque<Awaiting>>>,
}

struct Awaiting {
    logged: Logged,
    /// The answer to a HEAD has no body, whatever its headers say.
    head_request: bool,
}

/// Copies the server's answers to the client byte for byte, noting the
/// status of each final answer against the request it answers.
fn relay_responses(
    shared: &Shared,
    from: TcpStream,
    to: &mut TcpStream,
    awaiting: &Mutex<VecDeque<Awaiting>>,
) -> io::Result<()> {
    let mut reader = BufReader::with_capacity(64 * 1024, from);
    let uncounted = AtomicU64::new(0);
    loop {
        let mut raw = Vec::new();
        let mut lines = Vec::new();
        loop {
            let start = raw.len();
            if reader.read_until(b'\n', &mut raw)? == 0 {
                // The server closed the connection (between answers, or
                // mid-head: then pass on what came).
                to.write_all(&raw)?;
                return Ok(());
            }
            let line = String::from_utf8_lossy(&raw[start..])
                .trim_end()
                .to_string();
            if line.is_empty() {
                break;
            }
            lines.push(line);
        }
        let status = lines
            .first()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(0);
        // An interim answer (`100 Continue`): the final one is still to come.
        if (100..200).contains(&status) {
            to.write_all(&raw)?;
            continue;
        }
        // Noted before the client can see it, so that a test reading the
        // log once the client is done finds it.
        let request = awaiting.lock().unwrap().pop_front();
        if let Some(r) = &request {
            shared.answered(r.logged, status, false);
        }
        to.write_all(&raw)?;
        let mut body = BodyKind::None;
        let mut framed = false;
        for line in &lines[1..] {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.trim().eq_ignore_ascii_case("transfer-encoding")
                && value.to_ascii_lowercase().ends_with("chunked")
            {
                body = BodyKind::Chunked;
                framed = true;
            } else if name.trim().eq_ignore_ascii_case("content-length") && !framed {
                let n: u64 = value.parse().unwrap_or(0);
                body = if n == 0 {
                    BodyKind::None
                } else {
                    BodyKind::Length(n)
                };
                framed = true;
            }
        }
        let no_body =
            request.as_ref().is_some_and(|r| r.head_request) || matches!(status, 204 | 304);
        if no_body {
            continue;
        }
        if !framed {
            // Delimited by the end of the connection.
            io::copy(&mut reader, to)?;
            return Ok(());
        }
        let mut budget = None;
        copy_body(&mut reader, to, &body, &mut budget, &uncounted)?;
    }
}

struct Connection {
    shared: Arc<Shared>,
    id: u64,
    client: TcpStream,
    reader: BufReader<TcpStream>,
    upstream: Option<Upstream>,
}

enum BodyEnd {
    Done,
    Dropped,
}

impl Connection {
    fn new(shared: Arc<Shared>, client: TcpStream) -> Connection {
        let _ = client.set_nodelay(true);
        let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
        if let Ok(c) = client.try_clone() {
            shared.live.lock().unwrap().insert(id, c);
        }
        let reader = BufReader::with_capacity(64 * 1024, client.try_clone().expect("clone socket"));
        Connection {
            shared,
            id,
            client,
            reader,
            upstream: None,
        }
    }

    fn run(mut self) {
        loop {
            if self.reader.buffer().is_empty() {
                // Blocks until the next request starts arriving, so the fault
                // in force is the one at the time of the request.
                match self.client.peek(&mut [0u8; 1]) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            if self.shared.stopping.load(Ordering::SeqCst) {
                break;
            }
            if self.shared.resetting() {
                self.shared.injected.fetch_add(1, Ordering::SeqCst);
                return self.reset();
            }
            let head = match read_head(&mut self.reader) {
                Ok(Some(h)) => h,
                _ => break,
            };
            let (action, logged) = self.shared.on_request(&head);
            match action {
                Action::Respond { code, s3_code } => {
                    self.shared.injected.fetch_add(1, Ordering::SeqCst);
                    self.shared.answered(logged, code, true);
                    if !self.respond_error(&head, code, s3_code) {
                        break;
                    }
                }
                Action::Forward {
                    delay_ms,
                    drop_after,
                    corrupt,
                } => {
                    if delay_ms > 0 {
                        thread::sleep(Duration::from_millis(delay_ms));
                    }
                    if corrupt {
                        // Counted and marked like a failed request; the
                        // store's answer is still noted.
                        self.shared.failed(logged);
                    }
                    match self.forward(&head, logged, drop_after, corrupt) {
                        Ok(BodyEnd::Done) => {}
                        Ok(BodyEnd::Dropped) => {
                            self.shared.failed(logged);
                            return self.reset();
                        }
                        Err(_) => return self.reset(),
                    }
                }
                Action::Hang { forward } => {
                    self.shared.failed(logged);
                    return self.hang(&head, forward);
                }
            }
        }
        self.finish();
    }

    /// Takes the request (and, with `forward`, sends it upstream on a
    /// connection of its own whose answer is thrown away), then holds the
    /// client's connection without a word until the client closes it.
    fn hang(mut self, head: &Head, forward: bool) {
        let mut body = Vec::new();
        if !head.expect_continue {
            let mut budget = None;
            let _ = copy_body(
                &mut self.reader,
                &mut body,
                &head.body,
                &mut budget,
                &self.shared.body_bytes,
            );
        }
        if forward && !head.expect_continue {
            let mut request = head.raw.clone();
            request.extend_from_slice(&body);
            if let Ok(mut up) = TcpStream::connect(&self.shared.upstream) {
                let _ = up.write_all(&request);
                // The answer is read so that the server completes the
                // request, and dropped.
                let _ = up.set_read_timeout(Some(Duration::from_secs(30)));
                let _ = io::copy(&mut BufReader::new(up).take(1 << 20), &mut io::sink());
            }
        }
        let mut sink = [0u8; 4096];
        while !self.shared.stopping.load(Ordering::SeqCst) {
            match self.reader.read(&mut sink) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        self.finish();
    }

    fn upstream(&mut self) -> io::Result<&mut Upstream> {
        if self.upstream.is_none() {
            let stream = TcpStream::connect(&self.shared.upstream)?;
            let _ = stream.set_nodelay(true);
            let from = stream.try_clone()?;
            let mut to = self.client.try_clone()?;
            let quiet = Arc::new(AtomicBool::new(false));
            let awaiting = Arc::new(Mutex::new(VecDeque::new()));
            let (q, a, shared) = (quiet.clone(), awaiting.clone(), self.shared.clone());
            let copier = thread::Builder::new()
                .name("proxy-resp".into())
                .spawn(move || {
                    let _ = relay_responses(&shared, from, &mut to, &a);
                    if !q.load(Ordering::SeqCst) {
                        let _ = to.shutdown(Shutdown::Write);
                    }
                })?;
            self.upstream = Some(Upstream {
                stream,
                copier,
                quiet,
                awaiting,
            });
        }
        Ok(self.upstream.as_mut().unwrap())
    }

    fn forward(
        &mut self,
        head: &Head,
        logged: Logged,
        drop_after: Option<usize>,
        corrupt: bool,
    ) -> io::Result<BodyEnd> {
        let upstream = self.upstream()?;
        // Queued before the server can see the request, so that its answer
        // finds it.
        upstream.awaiting.lock().unwrap().push_back(Awaiting {
            logged,
            head_request: head.method == "HEAD",
        });
        upstream.stream.write_all(&head.raw)?;
        let up = &mut self.upstream.as_mut().unwrap().stream;
        let mut budget = drop_after;
        if corrupt {
            let mut body = Vec::new();
            copy_body(
                &mut self.reader,
                &mut body,
                &head.body,
                &mut budget,
                &self.shared.body_bytes,
            )?;
            let middle = body.len() / 2;
            body[middle] ^= 1;
            up.write_all(&body)?;
            return Ok(BodyEnd::Done);
        }
        copy_body(
            &mut self.reader,
            up,
            &head.body,
            &mut budget,
            &self.shared.body_bytes,
        )
    }

    /// Answers the request itself. Returns whether the connection can carry
    /// on.
    fn respond_error(&mut self, head: &Head, code: u16, s3_code: &str) -> bool {
        // With `Expect: 100-continue` the client waits for us before sending
        // the body, and may never send it: answer now and close.
        let keep_alive = !head.expect_continue;
        if keep_alive {
            let mut budget = None;
            let sink_bytes = AtomicU64::new(0);
            if copy_body(
                &mut self.reader,
                &mut io::sink(),
                &head.body,
                &mut budget,
                &sink_bytes,
            )
            .is_err()
            {
                return false;
            }
        }
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{s3_code}</Code><Message>injected by the test proxy</Message><Resource>{}</Resource><RequestId>proxy-fault</RequestId></Error>",
            xml_escape(&head.target)
        );
        let is_head = head.method == "HEAD";
        let mut resp = format!(
            "HTTP/1.1 {code} {}\r\nContent-Type: application/xml\r\nx-amz-request-id: proxy-fault\r\nContent-Length: {}\r\n",
            reason(code),
            if is_head { 0 } else { body.len() }
        );
        if code == 503 {
            resp.push_str("Retry-After: 0\r\n");
        }
        resp.push_str(if keep_alive {
            "\r\n"
        } else {
            "Connection: close\r\n\r\n"
        });
        if !is_head {
            resp.push_str(&body);
        }
        self.client.write_all(resp.as_bytes()).is_ok() && keep_alive
    }

    /// Ends the connection so that the client sees an error, not a clean
    /// close: closing a socket that still holds unread data makes the kernel
    /// send an RST (std alone cannot set SO_LINGER). Without unread data the
    /// client still sees the connection end before any response.
    fn reset(mut self) {
        if let Some(up) = self.upstream.take() {
            up.quiet.store(true, Ordering::SeqCst);
            let _ = up.stream.shutdown(Shutdown::Both);
            let _ = up.copier.join();
        }
        // Every clone of the socket has to go for the close to happen.
        self.shared.live.lock().unwrap().remove(&self.id);
    }

    fn finish(mut self) {
        if let Some(up) = self.upstream.take() {
            // The client is gone: stop writing upstream and let the copier
            // drain whatever response is still on its way.
            let _ = up.stream.shutdown(Shutdown::Write);
        }
        self.shared.live.lock().unwrap().remove(&self.id);
    }
}

fn read_head(reader: &mut BufReader<TcpStream>) -> io::Result<Option<Head>> {
    let mut raw = Vec::new();
    let mut lines = Vec::new();
    loop {
        let start = raw.len();
        let n = reader.read_until(b'\n', &mut raw)?;
        if n == 0 {
            return Ok(None);
        }
        if raw.len() > 1 << 20 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request head too large",
            ));
        }
        let line = String::from_utf8_lossy(&raw[start..])
            .trim_end()
            .to_string();
        if line.is_empty() {
            if lines.is_empty() {
                // Stray CRLF between requests is allowed (RFC 9112 2.2).
                raw.clear();
                continue;
            }
            break;
        }
        lines.push(line);
    }
    let mut parts = lines[0].split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let mut body = BodyKind::None;
    let mut expect_continue = false;
    let mut headers = Vec::new();
    for line in &lines[1..] {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        headers.push((name.trim().to_string(), value.trim().to_string()));
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim();
        match name.as_str() {
            "transfer-encoding" if value.to_ascii_lowercase().ends_with("chunked") => {
                body = BodyKind::Chunked;
            }
            "content-length" if !matches!(body, BodyKind::Chunked) => {
                let n = value.parse().map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidData, "bad content-length")
                })?;
                body = if n == 0 {
                    BodyKind::None
                } else {
                    BodyKind::Length(n)
                };
            }
            "expect" if value.eq_ignore_ascii_case("100-continue") => expect_continue = true,
            _ => {}
        }
    }
    Ok(Some(Head {
        raw,
        method,
        target,
        headers,
        body,
        expect_continue,
    }))
}

/// Copies one request body from `reader` to `out`. With a budget, stops
/// (returning `Dropped`) once that many bytes went out and more remain.
fn copy_body(
    reader: &mut BufReader<TcpStream>,
    out: &mut dyn Write,
    body: &BodyKind,
    budget: &mut Option<usize>,
    counter: &AtomicU64,
) -> io::Result<BodyEnd> {
    match body {
        BodyKind::None => Ok(BodyEnd::Done),
        BodyKind::Length(n) => copy_exact(reader, out, *n, budget, counter),
        BodyKind::Chunked => loop {
            let mut line = Vec::new();
            reader.read_until(b'\n', &mut line)?;
            if line.is_empty() {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let text = String::from_utf8_lossy(&line);
            let size_hex = text.trim().split(';').next().unwrap_or("").trim();
            let size = u64::from_str_radix(size_hex, 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
            if let BodyEnd::Dropped = send(out, &line, budget, counter)? {
                return Ok(BodyEnd::Dropped);
            }
            if size == 0 {
                // Trailers, then the empty line that ends the body.
                loop {
                    let mut t = Vec::new();
                    reader.read_until(b'\n', &mut t)?;
                    if t.is_empty() {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                    let last = t == b"\r\n" || t == b"\n";
                    if let BodyEnd::Dropped = send(out, &t, budget, counter)? {
                        return Ok(BodyEnd::Dropped);
                    }
                    if last {
                        return Ok(BodyEnd::Done);
                    }
                }
            }
            if let BodyEnd::Dropped = copy_exact(reader, out, size, budget, counter)? {
                return Ok(BodyEnd::Dropped);
            }
            let mut crlf = Vec::new();
            reader.read_until(b'\n', &mut crlf)?;
            if let BodyEnd::Dropped = send(out, &crlf, budget, counter)? {
                return Ok(BodyEnd::Dropped);
            }
        },
    }
}

fn copy_exact(
    reader: &mut BufReader<TcpStream>,
    out: &mut dyn Write,
    mut n: u64,
    budget: &mut Option<usize>,
    counter: &AtomicU64,
) -> io::Result<BodyEnd> {
    let mut buf = vec![0u8; 64 * 1024];
    while n > 0 {
        let want = buf.len().min(n as usize);
        let got = reader.read(&mut buf[..want])?;
        if got == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        n -= got as u64;
        if let BodyEnd::Dropped = send(out, &buf[..got], budget, counter)? {
            return Ok(BodyEnd::Dropped);
        }
    }
    Ok(BodyEnd::Done)
}

/// Writes `data`, or only the part of it the budget allows, returning
/// `Dropped` when the budget ran out before the end of `data`.
fn send(
    out: &mut dyn Write,
    data: &[u8],
    budget: &mut Option<usize>,
    counter: &AtomicU64,
) -> io::Result<BodyEnd> {
    let allowed = match budget {
        Some(b) => data.len().min(*b),
        None => data.len(),
    };
    out.write_all(&data[..allowed])?;
    counter.fetch_add(allowed as u64, Ordering::SeqCst);
    if let Some(b) = budget {
        *b -= allowed;
        if allowed < data.len() {
            out.flush()?;
            return Ok(BodyEnd::Dropped);
        }
    }
    Ok(BodyEnd::Done)
}

fn reason(code: u16) -> &'static str {
    match code {
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        412 => "Precondition Failed",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

//! Real S3 servers for the tests: moto (AWS semantics, including conditional
//! writes) and Garage (a real S3-compatible store, which ignores them).
//!
//! Each server runs as a child of the test process, in its own process
//! group, so Ctrl-C on `cargo test` does not race with our own shutdown. A
//! watchdog `sh` holds the read end of a pipe whose write end only this
//! process has: when the process ends for any reason, even SIGKILL, the pipe
//! closes, and the watchdog kills the server and removes its directory.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::{HttpResponse, http, random_hex};

const MOTO_INSTALL: &str =
    "install it with `pip install 'moto[server]>=5,<6'` (or run scripts/install-test-deps)";
const GARAGE_INSTALL: &str =
    "install it with `cargo install garage --locked` (or run scripts/install-test-deps)";

/// The key name the test access key gets inside Garage.
const GARAGE_KEY_NAME: &str = "test";

const STARTUP_TIMEOUT: Duration = Duration::from_secs(90);
const GARAGE_CLI_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Moto,
    Garage,
}

/// Environment variables the AWS SDK would otherwise consult and that could
/// point a test at real credentials, a profile or another endpoint.
pub const AWS_ENV_TO_REMOVE: &[&str] = &[
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_ENDPOINT_URL_S3",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
];

struct Ports {
    s3: u16,
    rpc: u16,
    web: u16,
}

/// How a Garage node joins a cluster: the secret every node shares, the
/// replication factor, and the access key the cluster will know.
#[derive(Debug, Clone)]
pub struct GarageMember {
    pub rpc_secret: String,
    pub replication_factor: u8,
    pub access_key: String,
    pub secret_key: String,
}

pub struct S3Server {
    pub kind: Kind,
    /// `http://127.0.0.1:PORT`, path-style.
    pub endpoint: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
    /// Garage's `[s3_web]` endpoint. Requests need `Host: BUCKET.web.garage.localhost`
    /// (see [`S3Server::web_get`]).
    pub web_endpoint: Option<String>,
    /// Holds the config, data and the server's log; removed when the server
    /// is dropped or the test process ends.
    pub dir: PathBuf,
    binary: PathBuf,
    config: Option<PathBuf>,
    ports: Ports,
    owned: bool,
    /// Set for a node of a [`super::cluster::GarageCluster`]: the cluster,
    /// not the node, owns the layout and the key.
    member: Option<GarageMember>,
    process: Mutex<Option<Child>>,
    watchdog: Mutex<Option<ChildStdin>>,
}

static MOTO: OnceLock<Result<S3Server, String>> = OnceLock::new();
static GARAGE: OnceLock<Result<S3Server, String>> = OnceLock::new();
static BUCKET_SEQ: AtomicU32 = AtomicU32::new(0);
static DIR_SEQ: AtomicU32 = AtomicU32::new(0);

impl S3Server {
    /// The moto server shared by every test of this process, started on
    /// first use.
    pub fn moto() -> &'static S3Server {
        // A failed start is remembered, so that every later test fails fast
        // with the same message instead of trying again.
        match MOTO.get_or_init(|| Self::start(Kind::Moto, false, None)) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }

    /// The Garage server shared by every test of this process, started on
    /// first use.
    pub fn garage() -> &'static S3Server {
        match GARAGE.get_or_init(|| Self::start(Kind::Garage, false, None)) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }

    /// A moto server of the test's own, stopped on drop. Its data lives in
    /// memory only: [`S3Server::restart`] comes back empty.
    pub fn start_moto_owned() -> S3Server {
        Self::start(Kind::Moto, true, None).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A Garage server of the test's own, stopped on drop; the one to use for
    /// [`S3Server::kill`] and [`S3Server::restart`], which keeps its data.
    pub fn start_garage_owned() -> S3Server {
        Self::start(Kind::Garage, true, None).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A Garage node of a cluster, stopped on drop: running and answering,
    /// but with no layout, key or bucket until the cluster sets them up.
    pub fn start_garage_member(member: GarageMember) -> Result<S3Server, String> {
        Self::start(Kind::Garage, true, Some(member))
    }

    fn start(kind: Kind, owned: bool, member: Option<GarageMember>) -> Result<S3Server, String> {
        let binary = match kind {
            Kind::Moto => find_binary(
                "ASSETPUB_TEST_MOTO_SERVER",
                "moto_server",
                &[".local/bin", ".pyenv/shims"],
            )
            .ok_or_else(|| format!("moto_server not found on PATH: {MOTO_INSTALL}"))?,
            Kind::Garage => find_binary("ASSETPUB_TEST_GARAGE", "garage", &[".cargo/bin"])
                .ok_or_else(|| {
                    format!("garage not found on PATH or in ~/.cargo/bin: {GARAGE_INSTALL}")
                })?,
        };
        let name = match kind {
            Kind::Moto => "moto",
            Kind::Garage => "garage",
        };
        let dir = std::env::temp_dir().join(format!(
            "assetpub-test-{name}-{}-{}-{}",
            std::process::id(),
            DIR_SEQ.fetch_add(1, Ordering::SeqCst),
            random_hex(3)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let watchdog = spawn_watchdog(&dir).map_err(|e| format!("start watchdog `sh`: {e}"))?;

        let (access_key, secret_key, region) = match (kind, &member) {
            (Kind::Moto, _) => ("testing".to_string(), "testing".to_string(), "us-east-1"),
            (Kind::Garage, Some(m)) => (m.access_key.clone(), m.secret_key.clone(), "garage"),
            (Kind::Garage, None) => (format!("GK{}", random_hex(12)), random_hex(32), "garage"),
        };
        let mut server = S3Server {
            kind,
            endpoint: String::new(),
            region: region.to_string(),
            access_key,
            secret_key,
            web_endpoint: None,
            dir,
            binary,
            config: None,
            ports: Ports {
                s3: 0,
                rpc: 0,
                web: 0,
            },
            owned,
            member,
            process: Mutex::new(None),
            watchdog: Mutex::new(Some(watchdog)),
        };

        // A port picked by binding :0 can be taken by someone else before the
        // server binds it; a fresh set of ports on that failure is enough.
        let mut last_err = String::new();
        for _ in 0..5 {
            server.ports = Ports {
                s3: free_port(),
                rpc: free_port(),
                web: free_port(),
            };
            server.endpoint = format!("http://127.0.0.1:{}", server.ports.s3);
            if kind == Kind::Garage {
                server.web_endpoint = Some(format!("http://127.0.0.1:{}", server.ports.web));
                server
                    .write_garage_config()
                    .map_err(|e| format!("write garage config: {e}"))?;
            }
            match server.launch_and_wait() {
                Ok(()) => {
                    if kind == Kind::Garage && server.member.is_none() {
                        server.garage_init()?;
                    }
                    return Ok(server);
                }
                Err(e) => {
                    let addr_in_use = e.contains("in use") || e.contains("os error 98");
                    last_err = e;
                    if !addr_in_use {
                        break;
                    }
                }
            }
        }
        Err(last_err)
    }

    fn write_garage_config(&mut self) -> std::io::Result<()> {
        let config = self.dir.join("garage.toml");
        let (secret, replication_factor) = match &self.member {
            Some(m) => (m.rpc_secret.clone(), m.replication_factor),
            None => (random_hex(32), 1),
        };
        let text = format!(
            r#"metadata_dir = "{dir}/meta"
data_dir = "{dir}/data"
db_engine = "sqlite"
replication_factor = {replication_factor}
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "{secret}"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:{s3}"
root_domain = ".s3.garage.localhost"

[s3_web]
bind_addr = "127.0.0.1:{web}"
root_domain = ".web.garage.localhost"
index = "index.html"
"#,
            dir = self.dir.display(),
            rpc = self.ports.rpc,
            s3 = self.ports.s3,
            web = self.ports.web,
        );
        std::fs::write(&config, text)?;
        self.config = Some(config);
        Ok(())
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    fn pid_path(&self) -> PathBuf {
        self.dir.join("server.pid")
    }

    /// The server's stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn launch_and_wait(&self) -> Result<(), String> {
        let started = Instant::now();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| format!("open {}: {e}", self.log_path().display()))?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = Command::new(&self.binary);
        match self.kind {
            Kind::Moto => {
                cmd.args(["-H", "127.0.0.1", "-p", &self.ports.s3.to_string()]);
            }
            Kind::Garage => {
                cmd.arg("-c")
                    .arg(self.config.as_ref().unwrap())
                    .arg("server")
                    .env("RUST_LOG", "garage=info,warn");
            }
        }
        cmd.stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .current_dir(&self.dir)
            .process_group(0);
        let child = cmd.spawn().map_err(|e| {
            format!(
                "run {}: {e}; {}",
                self.binary.display(),
                self.install_hint()
            )
        })?;
        std::fs::write(self.pid_path(), child.id().to_string())
            .map_err(|e| format!("write pid file: {e}"))?;
        *self.process.lock().unwrap() = Some(child);

        loop {
            if let Some(status) = self.try_reap() {
                return Err(format!(
                    "{} exited during startup ({status}); if it is not installed, {}\n--- server output ---\n{}",
                    self.binary.display(),
                    self.install_hint(),
                    self.log_tail()
                ));
            }
            if answers_http(&self.endpoint) {
                break;
            }
            if started.elapsed() > STARTUP_TIMEOUT {
                self.stop_process();
                return Err(format!(
                    "{} did not answer on {} within {:?}\n--- server output ---\n{}",
                    self.binary.display(),
                    self.endpoint,
                    STARTUP_TIMEOUT,
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Some(web) = &self.web_endpoint {
            while !answers_http(web) {
                if started.elapsed() > STARTUP_TIMEOUT {
                    self.stop_process();
                    return Err(format!(
                        "garage web endpoint {web} never answered\n--- server output ---\n{}",
                        self.log_tail()
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }

    fn install_hint(&self) -> &'static str {
        match self.kind {
            Kind::Moto => MOTO_INSTALL,
            Kind::Garage => GARAGE_INSTALL,
        }
    }

    /// Reaps the server if it has exited, so that its pid is never reused
    /// under the watchdog's nose.
    fn try_reap(&self) -> Option<std::process::ExitStatus> {
        let mut guard = self.process.lock().unwrap();
        let child = guard.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => {
                let _ = std::fs::remove_file(self.pid_path());
                *guard = None;
                Some(status)
            }
            _ => None,
        }
    }

    fn stop_process(&self) {
        let mut guard = self.process.lock().unwrap();
        if let Some(mut child) = guard.take() {
            // The pid file goes first: once reaped, the pid may belong to
            // anything.
            let _ = std::fs::remove_file(self.pid_path());
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn garage_init(&self) -> Result<(), String> {
        let node_id = self.garage_node_id()?;
        let node_id = node_id.split('@').next().unwrap_or("");
        // After a restart the layout is already there, in the metadata.
        if !self.garage_has_layout()? {
            self.try_garage_cli(&["layout", "assign", "-z", "dc1", "-c", "1G", node_id])?;
            self.try_garage_cli(&["layout", "apply", "--version", "1"])?;
        }
        self.garage_import_key()
    }

    /// The node's full id and RPC address, `<64 hex>@127.0.0.1:PORT`, once
    /// its RPC layer answers (it can come up a little after the S3 port).
    pub fn garage_node_id(&self) -> Result<String, String> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let out = loop {
            match self.try_garage_cli(&["node", "id", "-q"]) {
                Ok(out) => break out,
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        let id = out.trim();
        if id.len() < 64 || !id.contains('@') {
            return Err(format!("garage node id printed nothing usable: {out:?}"));
        }
        Ok(id.to_string())
    }

    /// Imports this server's access key, unless the cluster knows it already.
    pub fn garage_import_key(&self) -> Result<(), String> {
        let keys = self.try_garage_cli(&["key", "list"])?;
        if !keys.contains(&self.access_key) {
            self.try_garage_cli(&[
                "key",
                "import",
                "--yes",
                &self.access_key,
                &self.secret_key,
                "-n",
                GARAGE_KEY_NAME,
            ])?;
        }
        Ok(())
    }

    fn garage_has_layout(&self) -> Result<bool, String> {
        let status = self.try_garage_cli(&["status"])?;
        Ok(!status.contains("NO ROLE ASSIGNED"))
    }

    /// Runs the `garage` CLI against this server: stdout, or an error with
    /// the command and everything it printed.
    pub fn try_garage_cli(&self, args: &[&str]) -> Result<String, String> {
        let config = self
            .config
            .as_ref()
            .ok_or("the garage CLI only applies to a Garage server")?;
        // A CLI call waits as long as the node it asks does: `timeout` ends
        // it, even when this process dies first and cannot.
        let out = Command::new("timeout")
            .args(["-s", "KILL", &GARAGE_CLI_TIMEOUT.as_secs().to_string()])
            .arg(&self.binary)
            .arg("-c")
            .arg(config)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("run `timeout` (coreutils) for garage: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            let why = match out.status.code() {
                Some(137) => format!("no answer within {GARAGE_CLI_TIMEOUT:?}"),
                Some(127) => format!("cannot run it; {GARAGE_INSTALL}"),
                _ => out.status.to_string(),
            };
            Err(format!(
                "`garage -c {} {}` failed ({why}):\n{}{}",
                config.display(),
                args.join(" "),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// Runs the `garage` CLI against this server and returns its stdout.
    pub fn garage_cli(&self, args: &[&str]) -> String {
        self.try_garage_cli(args).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn create_bucket(&self, name: &str) {
        match self.kind {
            Kind::Moto => {
                let url = format!("{}/{name}", self.endpoint);
                let resp = http("PUT", &url, &[], b"")
                    .unwrap_or_else(|e| panic!("PUT {url}: {e}\n{}", self.log_tail()));
                assert_eq!(resp.status, 200, "PUT {url}: {}", resp.text());
            }
            Kind::Garage => {
                self.garage_cli(&["bucket", "create", name]);
                self.garage_cli(&[
                    "bucket",
                    "allow",
                    "--read",
                    "--write",
                    "--owner",
                    name,
                    "--key",
                    GARAGE_KEY_NAME,
                ]);
                self.garage_cli(&["bucket", "website", "--allow", name]);
            }
        }
    }

    /// Creates a bucket whose name starts with `prefix` (made valid) and is
    /// unique to this call.
    pub fn unique_bucket(&self, prefix: &str) -> String {
        let mut p: String = prefix
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        p.truncate(40);
        let p = p.trim_matches('-');
        let p = if p.is_empty() { "bucket" } else { p };
        let n = BUCKET_SEQ.fetch_add(1, Ordering::SeqCst);
        let name = format!("{p}-{}-{n}", random_hex(3));
        self.create_bucket(&name);
        name
    }

    /// The environment that points the AWS SDK at this server and nowhere
    /// else. Pair it with [`AWS_ENV_TO_REMOVE`], or use [`S3Server::apply_env`].
    pub fn env(&self) -> Vec<(String, String)> {
        self.env_with_endpoint(&self.endpoint)
    }

    /// As [`S3Server::env`], for a client that goes through a proxy.
    pub fn env_with_endpoint(&self, endpoint: &str) -> Vec<(String, String)> {
        let missing = self.dir.join("no-such-aws-file");
        let missing = missing.display().to_string();
        vec![
            ("AWS_ACCESS_KEY_ID".into(), self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY".into(), self.secret_key.clone()),
            ("AWS_REGION".into(), self.region.clone()),
            // Read by the AWS CLI and boto3 instead of AWS_REGION.
            ("AWS_DEFAULT_REGION".into(), self.region.clone()),
            ("AWS_ENDPOINT_URL".into(), endpoint.to_string()),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
            ("AWS_CONFIG_FILE".into(), missing.clone()),
            ("AWS_SHARED_CREDENTIALS_FILE".into(), missing),
        ]
    }

    /// Removes inherited AWS settings from `cmd` and applies [`S3Server::env`].
    pub fn apply_env<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        self.apply_env_with_endpoint(cmd, &self.endpoint)
    }

    pub fn apply_env_with_endpoint<'a>(
        &self,
        cmd: &'a mut Command,
        endpoint: &str,
    ) -> &'a mut Command {
        for var in AWS_ENV_TO_REMOVE {
            cmd.env_remove(var);
        }
        cmd.envs(self.env_with_endpoint(endpoint))
    }

    /// Path-style URL of an object.
    pub fn object_url(&self, bucket: &str, key: &str) -> String {
        format!("{}/{bucket}/{key}", self.endpoint)
    }

    /// GET through Garage's website endpoint (anonymous, index documents
    /// applied).
    pub fn web_get(&self, bucket: &str, path: &str) -> HttpResponse {
        let web = self
            .web_endpoint
            .as_ref()
            .expect("only Garage has a website endpoint");
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        let host = format!("{bucket}.web.garage.localhost");
        let url = format!("{web}{path}");
        http("GET", &url, &[("Host", &host)], b"").unwrap_or_else(|e| panic!("GET {url}: {e}"))
    }

    /// SIGKILLs the server, as a crash would. Owned servers only.
    pub fn kill(&self) {
        assert!(
            self.owned,
            "kill() on a shared server would break other tests; use start_*_owned()"
        );
        self.stop_process();
    }

    /// Starts the server again on the same ports and (for Garage) the same
    /// data, after [`S3Server::kill`]. Owned servers only. A cluster node
    /// comes back isolated: [`super::cluster::GarageCluster::restart`]
    /// reconnects it.
    pub fn restart(&self) {
        assert!(self.owned, "restart() is for servers from start_*_owned()");
        self.stop_process();
        self.launch_and_wait().unwrap_or_else(|e| panic!("{e}"));
        if self.kind == Kind::Garage && self.member.is_none() {
            self.garage_init().unwrap_or_else(|e| panic!("{e}"));
        }
    }

    /// Whether the server process is running.
    pub fn is_running(&self) -> bool {
        self.try_reap().is_none() && self.process.lock().unwrap().is_some()
    }

    /// Sends `SIGSTOP` (`freeze = true`) or `SIGCONT` to the server: a
    /// frozen server keeps its sockets open and answers nothing, as a hung
    /// machine does. Owned servers only.
    pub fn freeze(&self, freeze: bool) {
        assert!(
            self.owned,
            "freeze() on a shared server would break other tests"
        );
        let guard = self.process.lock().unwrap();
        let pid = guard.as_ref().expect("the server is running").id();
        let signal = if freeze { "-STOP" } else { "-CONT" };
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} {pid}: {status}");
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop_process();
        // Closing the pipe lets the watchdog go; the directory is removed
        // here so that it is gone when drop returns.
        drop(self.watchdog.lock().unwrap().take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `sh` that waits for EOF on its stdin, then kills the pid in the pid file
/// and removes the directory. It ignores SIGINT and SIGHUP and has its own
/// process group so that it outlives whatever stops the test process.
pub fn spawn_watchdog(dir: &Path) -> std::io::Result<ChildStdin> {
    let script = r#"trap '' INT HUP
read _ignored
p=$(cat "$1/server.pid" 2>/dev/null) && kill -9 "$p" 2>/dev/null
rm -rf "$1""#;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("assetpub-test-watchdog")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()?;
    Ok(child.stdin.take().expect("piped stdin"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// Whether something on `endpoint` speaks HTTP: a bound port alone is not
/// enough, as the server may accept before it can answer.
fn answers_http(endpoint: &str) -> bool {
    let (authority, _) = super::split_url(endpoint);
    let Ok(mut s) = TcpStream::connect(&authority) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let req = format!("GET / HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).is_ok() && line.starts_with("HTTP/1.")
}

fn find_binary(env_var: &str, name: &str, home_dirs: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env_var) {
        return Some(PathBuf::from(p));
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        for d in home_dirs {
            dirs.push(Path::new(&home).join(d));
        }
    }
    if name == "garage"
        && let Some(cargo_home) = std::env::var_os("CARGO_HOME")
    {
        dirs.push(Path::new(&cargo_home).join("bin"));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

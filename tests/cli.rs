//! Running the real binary on temporary trees.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// A temporary project: a build directory, a publish.toml, and the
/// `published/` target beside them.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    /// `site/` with a page, a stylesheet that references an image and a
    /// font, a script with its source map, and the stable files.
    pub fn new() -> Project {
        let p = Project::empty();
        p.write(
            "site/index.html",
            "<!doctype html><link rel=stylesheet href=css/app.css><img src=img/logo.png>",
        );
        p.write("site/about.html", "<!doctype html><p>about</p>");
        p.write(
            "site/css/app.css",
            "body { background: url(../img/bg.png); }\n@font-face { src: url('../fonts/f.woff2') format('woff2'); }\n",
        );
        p.write_bytes("site/img/bg.png", &pseudo_random(4000, 1));
        p.write_bytes("site/img/logo.png", &pseudo_random(2000, 2));
        p.write_bytes("site/fonts/f.woff2", &pseudo_random(3000, 3));
        p.write(
            "site/js/app.js",
            "console.log('hi');\n//# sourceMappingURL=app.js.map\n",
        );
        p.write(
            "site/js/app.js.map",
            r#"{"version":3,"file":"app.js","sources":["app.ts"],"mappings":""}"#,
        );
        p.write("site/robots.txt", "User-agent: *\n");
        p.write_bytes("site/favicon.ico", &pseudo_random(300, 4));
        p.config("[source]\ndirs = [\"site\"]\n");
        p
    }

    /// Moves every source file's mtime an hour back, so the stat cache
    /// trusts it (fresh files are re-hashed: the racy-mtime rule).
    pub fn age_sources(&self) {
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        for (rel, ..) in snapshot(&self.path("site")) {
            let f = std::fs::File::options()
                .write(true)
                .open(self.path("site").join(rel))
                .expect("open");
            f.set_modified(old).expect("set mtime");
        }
    }

    pub fn empty() -> Project {
        Project {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) {
        self.write_bytes(rel, text.as_bytes());
    }

    pub fn write_bytes(&self, rel: &str, bytes: &[u8]) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, bytes).expect("write");
    }

    pub fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.path(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    pub fn config(&self, text: &str) {
        self.write("publish.toml", text);
    }

    /// The binary, run in the project, with no stray settings from the
    /// environment.
    pub fn cmd(&self) -> Command {
        Command::from_std(self.std_cmd())
    }

    /// As [`Project::cmd`], as a plain `std::process::Command` (to spawn it).
    pub fn std_cmd(&self) -> std::process::Command {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin!("assetpub"));
        c.current_dir(self.dir.path());
        for (k, _) in std::env::vars() {
            // The CI running the tests must not leak its commit and run
            // into the deploys the tests make.
            if k.starts_with("ASSETPUB_")
                || k.starts_with("AWS_")
                || k.starts_with("GITHUB_")
                || k.starts_with("CI_")
            {
                c.env_remove(k);
            }
        }
        c.env("NO_COLOR", "1");
        c
    }

    /// Runs `assetpub ARGS --json` and returns the parsed document.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.cmd().args(args).arg("--json").output().expect("run");
        assert!(
            out.status.success(),
            "assetpub {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "assetpub {args:?} --json printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    pub fn manifest(&self) -> serde_json::Value {
        serde_json::from_slice(&self.read("published/manifest.json")).expect("manifest JSON")
    }
}

/// Deterministic incompressible bytes.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Every file under `dir`, relative, sorted, with its modification time.
pub fn snapshot(dir: &Path) -> Vec<(String, std::time::SystemTime, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let m = e.metadata().expect("metadata");
            if m.is_dir() {
                stack.push(e.path());
            } else {
                let rel = e
                    .path()
                    .strip_prefix(dir)
                    .expect("prefix")
                    .to_string_lossy()
                    .into_owned();
                out.push((rel, m.modified().expect("mtime"), m.len()));
            }
        }
    }
    out.sort();
    out
}

/// A plain HTTP/1.0 GET over loopback: status, lowercase headers, body.
pub fn http_get(
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, std::collections::BTreeMap<String, String>, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s =
        std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    let mut req = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("send");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let body = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body)
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

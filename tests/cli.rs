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
        serde_json::from_slice(&self.live("manifest.json")).expect("manifest JSON")
    }

    /// Where the directory target serves `key` from: its live release
    /// (pages and other stable keys, the manifest, `staticfiles.json`),
    /// else its root (the immutable objects).
    pub fn live_path(&self, key: &str) -> PathBuf {
        let release = self.path("published/.assetpub/current").join(key);
        if release.exists() {
            release
        } else {
            self.path("published").join(key)
        }
    }

    /// The bytes the directory target serves at `key` (see
    /// [`Project::live_path`]).
    pub fn live(&self, key: &str) -> Vec<u8> {
        std::fs::read(self.live_path(key)).unwrap_or_else(|e| panic!("read live {key}: {e}"))
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

/// Runs `assetpub ARGS` and returns the exit code, the one JSON document
/// stdout holds (the whole of stdout must parse as one), and stderr.
fn failing_json(p: &Project, args: &[&str]) -> (i32, serde_json::Value, String) {
    let out = p.cmd().args(args).output().expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "assetpub {args:?}: stdout is not one JSON document ({e}): {:?}\nstderr: {stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (out.status.code().expect("exit code"), doc, stderr)
}

/// The error document's fields, and the human lines on stderr saying the
/// same.
fn assert_error_document(doc: &serde_json::Value, stderr: &str, code: i32, kind: &str) {
    let error = &doc["error"];
    assert_eq!(error["exit_code"], code, "{doc}");
    assert_eq!(error["kind"], kind, "{doc}");
    let message = error["message"].as_str().expect("message");
    assert!(
        stderr.contains(&format!("error: {message}")),
        "{stderr}\n{doc}"
    );
    if let Some(hint) = error["hint"].as_str() {
        assert!(stderr.contains(&format!("hint: {hint}")), "{stderr}\n{doc}");
    }
    let keys: Vec<&str> = doc
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(keys, ["error"], "{doc}");
}

/// With `--json`, a failure of any kind prints one document on stdout
/// (`{"error": {...}}`), so that `assetpub publish --json | jq` in CI never
/// reads empty input; the `error:` and `hint:` lines still go to stderr.
#[test]
fn with_json_every_failure_prints_one_error_document() {
    let p = Project::new();
    // Exit 2: configuration.
    p.config("[source]\ndirs = [\"site\"]\n[target]\nconcurrency = 0\n");
    let (code, doc, err) = failing_json(&p, &["publish", "--json"]);
    assert_eq!(code, 2, "{err}");
    assert_error_document(&doc, &err, 2, "config");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("[target] concurrency"),
        "{doc}"
    );
    assert!(doc["error"].get("problems").is_none(), "{doc}");
    // Exit 2 before the config is read: no config file, with its hint.
    let (code, doc, err) = failing_json(&p, &["--config", "nope.toml", "--json", "plan"]);
    assert_eq!(code, 2, "{err}");
    assert_error_document(&doc, &err, 2, "config");
    assert!(
        doc["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("assetpub init")
    );

    // Exit 3: every problem on its own.
    p.write_bytes("site/img/huge.png", &vec![0u8; 5000]);
    p.config("[source]\ndirs = [\"site\"]\nmax_file_size = \"4KB\"\nallowed_extensions = [\"html\", \"css\", \"js\", \"map\", \"png\", \"woff2\", \"ico\"]\n");
    let (code, doc, err) = failing_json(&p, &["publish", "--json"]);
    assert_eq!(code, 3, "{err}");
    assert_error_document(&doc, &err, 3, "validation");
    let problems: Vec<&str> = doc["error"]["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(problems.len(), 2, "{doc}");
    assert!(problems[0].contains("huge.png") && problems[1].contains("robots.txt"));
    assert!(!p.path("published").exists());
    std::fs::remove_file(p.path("site/img/huge.png")).unwrap();

    // Exit 4: a conflict says which one, with its hint.
    p.config("[source]\ndirs = [\"site\"]\n");
    p.json(&["publish"]);
    p.write(
        "published/.assetpub/lock",
        r#"{"owner":"ci","host":"runner-7","pid":42,"command":"publish","created":"2026-01-01T00:00:00Z","expires":"2999-01-01T00:00:00Z"}"#,
    );
    p.write("site/about.html", "changed");
    let (code, doc, err) = failing_json(&p, &["publish", "--json"]);
    assert_eq!(code, 4, "{err}");
    assert_error_document(&doc, &err, 4, "conflict");
    assert_eq!(doc["error"]["conflict"], "lock_held", "{doc}");
    assert!(
        doc["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("--break-lock")
    );
    std::fs::remove_file(p.path("published/.assetpub/lock")).unwrap();

    // Exit 1: a run-time failure (the target directory is a file).
    p.config("[source]\ndirs = [\"site\"]\n[target]\nurl = \"file://./taken\"\n");
    p.write("taken", "not a directory");
    let (code, doc, err) = failing_json(&p, &["publish", "--json"]);
    assert_eq!(code, 1, "{err}");
    assert_error_document(&doc, &err, 1, "io");
    assert!(doc["error"]["message"].as_str().unwrap().contains("taken"));

    // Without --json, stdout stays empty on failure.
    let out = p.cmd().arg("publish").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "{:?}", out.stdout);
}

/// A command line clap refuses exits 2 with the same document when
/// `--json` is anywhere on it; `--help` is not an error, and without
/// `--json` clap's own message is all there is.
#[test]
fn usage_errors_with_json_anywhere_print_the_error_document() {
    let p = Project::new();
    for args in [
        &["--json", "publis"][..],
        &["publish", "--bogus", "--json"][..],
        &["--json"][..],
        &["prune", "--json", "--keep", "many"][..],
        &["rollback", "a", "b", "--json"][..],
    ] {
        let (code, doc, err) = failing_json(&p, args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert_eq!(doc["error"]["exit_code"], 2, "{args:?}: {doc}");
        assert_eq!(doc["error"]["kind"], "config", "{args:?}: {doc}");
        // stderr has clap's own message: the error, its tip or the usage.
        let message = doc["error"]["message"].as_str().unwrap();
        let hint = doc["error"]["hint"].as_str().expect("hint");
        assert!(
            err.contains(&format!("error: {message}")) && err.contains(hint),
            "{args:?}: {err}\n{doc}"
        );
    }
    let (_, doc, _) = failing_json(&p, &["--json", "publis"]);
    assert_eq!(doc["error"]["message"], "unrecognized subcommand 'publis'");
    assert_eq!(
        doc["error"]["hint"],
        "a similar subcommand exists: 'publish'"
    );
    let out = p.cmd().args(["publish", "--bogus"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unexpected argument '--bogus'"));
    let out = p.cmd().args(["--help", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Usage: assetpub"));
    assert!(!p.path("published").exists() && !p.path(".assetpub").exists());
}

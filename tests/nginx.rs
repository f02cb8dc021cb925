//! nginx serving a published directory with `assetpub nginx-config`.

use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cli::{Project, free_port, http_get};
use crate::support::servers::spawn_watchdog;

/// nginx in the foreground, a child of the test process; its watchdog kills
/// it if the test process dies without dropping it.
pub struct Nginx {
    child: Child,
    pid_file: PathBuf,
    watchdog: Option<ChildStdin>,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // The pid file goes first: once reaped, the pid may belong to
        // anything.
        let _ = std::fs::remove_file(&self.pid_file);
        let _ = self.child.kill();
        let _ = self.child.wait();
        drop(self.watchdog.take());
    }
}

fn nginx_binary() -> String {
    for p in ["/usr/sbin/nginx", "/usr/bin/nginx"] {
        if std::path::Path::new(p).exists() {
            return p.to_string();
        }
    }
    panic!(
        "nginx not found: install it with `apt-get install -y nginx` (or run scripts/install-test-deps)"
    );
}

/// nginx serving the project's published directory with the server block
/// `assetpub nginx-config` writes for it, and the address it listens on.
pub fn serve(p: &Project) -> (Nginx, String) {
    let port = free_port();
    let out = p
        .cmd()
        .args(["nginx-config", "--listen", &format!("127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let block = String::from_utf8(out.stdout).unwrap();
    (start(p, &block, port), format!("127.0.0.1:{port}"))
}

fn start(p: &Project, server_block: &str, port: u16) -> Nginx {
    let prefix = p.path("nginx");
    std::fs::create_dir_all(prefix.join("logs")).unwrap();
    std::fs::write(prefix.join("server.conf"), server_block).unwrap();
    let conf = format!(
        "daemon off;\nmaster_process off;\npid {dir}/nginx.pid;\nerror_log {dir}/logs/error.log warn;\nevents {{ worker_connections 64; }}\nhttp {{\n  access_log off;\n  client_body_temp_path {dir}/body;\n  proxy_temp_path {dir}/proxy;\n  fastcgi_temp_path {dir}/fastcgi;\n  uwsgi_temp_path {dir}/uwsgi;\n  scgi_temp_path {dir}/scgi;\n  include {dir}/server.conf;\n}}\n",
        dir = prefix.display()
    );
    std::fs::write(prefix.join("nginx.conf"), conf).unwrap();
    let child = Command::new(nginx_binary())
        .arg("-p")
        .arg(&prefix)
        .arg("-c")
        .arg(prefix.join("nginx.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start nginx");
    // `server.pid` is the file the watchdog reads; nginx's own pid file is
    // `nginx.pid`.
    let pid_file = prefix.join("server.pid");
    std::fs::write(&pid_file, child.id().to_string()).unwrap();
    let nginx = Nginx {
        child,
        pid_file,
        watchdog: Some(spawn_watchdog(&prefix).expect("start the watchdog `sh`")),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nginx did not start; see {}",
            prefix.join("logs/error.log").display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    nginx
}

#[test]
fn nginx_serves_the_published_site_with_the_right_headers() {
    let p = Project::new();
    // Enough text to be worth compressing.
    p.write(
        "site/css/app.css",
        &"body { background: url(../img/bg.png); color: #123456; }\n".repeat(40),
    );
    p.json(&["publish"]);
    let (_nginx, addr) = serve(&p);
    let m = p.manifest();

    let css = m["files"]["css/app.css"]["key"].as_str().unwrap();
    let (status, h, body) = http_get(&addr, &format!("/{css}"), &[]);
    assert_eq!(status, 200);
    assert_eq!(h["cache-control"], "public, max-age=31536000, immutable");
    assert_eq!(h["content-type"], "text/css; charset=utf-8");
    assert_eq!(body, p.live(css));

    let (status, h, body) = http_get(&addr, &format!("/{css}"), &[("Accept-Encoding", "gzip")]);
    assert_eq!(status, 200);
    assert_eq!(
        h.get("content-encoding").map(String::as_str),
        Some("gzip"),
        "gzip_static serves the sidecar"
    );
    assert_eq!(body, p.live(&format!("{css}.gz")));

    let (status, h, _) = http_get(&addr, "/", &[]);
    assert_eq!(status, 200);
    assert_eq!(h["cache-control"], "public, max-age=0, must-revalidate");
    assert_eq!(h["content-type"], "text/html; charset=utf-8");

    let (status, h, _) = http_get(&addr, "/robots.txt", &[]);
    assert_eq!(status, 200);
    assert_eq!(h["cache-control"], "public, max-age=0, must-revalidate");

    let font = m["files"]["fonts/f.woff2"]["key"].as_str().unwrap();
    let (_, h, _) = http_get(&addr, &format!("/{font}"), &[]);
    assert_eq!(h["content-type"], "font/woff2");

    let (_, h, _) = http_get(&addr, "/manifest.json", &[]);
    assert_eq!(h["cache-control"], "no-cache");

    let deploy = m["deploy"].as_str().unwrap();
    let (status, ..) = http_get(&addr, &format!("/.assetpub/deploys/{deploy}.json"), &[]);
    assert_eq!(status, 404, ".assetpub/ is not served");
}

#[test]
fn nginx_config_refuses_an_s3_target() {
    let p = Project::new();
    p.cmd()
        .args(["nginx-config", "--target", "s3://bucket/site"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("file://"));
}

/// On a directory target the headers a rule sets live in the manifest;
/// nginx, with the generated config, serves each key with them.
#[test]
fn nginx_serves_each_file_with_the_headers_its_rules_set() {
    let p = Project::new();
    p.write("site/docs/guide.pdf", "%PDF-1.4 not really");
    p.write("site/docs/notes.txt", "notes");
    p.config(
        r#"[source]
dirs = ["site"]

[[rules]]
match = "css/**"
cache_control = "public, max-age=600"

[[rules]]
match = "docs/*.pdf"
content_disposition = 'attachment; filename="guide.pdf"'
content_language = "en"

[[rules]]
match = "docs/**"
cache_control = "public, max-age=3600"
content_language = "de"

[[rules]]
match = "about.html"
cache_control = "public, max-age=60"
"#,
    );
    p.json(&["publish"]);
    let (_nginx, addr) = serve(&p);
    let m = p.manifest();
    let mut checked = 0;
    for (logical, entry) in m["files"].as_object().unwrap() {
        let key = entry["key"].as_str().unwrap();
        let (status, h, _) = http_get(&addr, &format!("/{key}"), &[]);
        assert_eq!(status, 200, "{key}");
        assert_eq!(
            h["cache-control"], entry["cache_control"],
            "{logical} at {key}"
        );
        for (field, header) in [
            ("content_disposition", "content-disposition"),
            ("content_language", "content-language"),
        ] {
            assert_eq!(
                h.get(header).map(String::as_str),
                entry[field].as_str(),
                "{header} of {logical} at {key}"
            );
        }
        // The object behind a stable key never changes.
        if let Some(object) = entry["object"].as_str() {
            let (status, h, _) = http_get(&addr, &format!("/{object}"), &[]);
            assert_eq!(status, 200, "{object}");
            assert_eq!(h["cache-control"], "public, max-age=31536000, immutable");
        }
        checked += 1;
    }
    assert_eq!(checked, 12);
    // The rules did apply: the manifest is not just the defaults.
    assert_eq!(
        m["files"]["css/app.css"]["cache_control"],
        "public, max-age=600"
    );
    assert_eq!(
        m["files"]["about.html"]["cache_control"],
        "public, max-age=60"
    );
    assert_eq!(m["files"]["docs/guide.pdf"]["content_language"], "en");
    assert_eq!(m["files"]["docs/notes.txt"]["content_language"], "de");
    assert_eq!(
        m["files"]["docs/guide.pdf"]["cache_control"],
        "public, max-age=3600"
    );
}

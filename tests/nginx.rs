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

pub fn start(p: &Project, server_block: &str, port: u16) -> Nginx {
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

/// Pages that each carry the deploy marker `gen`, in a `<meta>` the reader
/// looks for, and enough text to get `.gz` and `.br` sidecars.
fn write_marked_pages(p: &Project, pages: &[String], generation: u64) {
    for page in pages {
        p.write(
            &format!("site/{page}"),
            &format!(
                "<!doctype html><meta name=deploy content=\"gen-{generation}\"><title>{page}</title>\n{}",
                format!("<p>{page} of generation {generation}</p>\n").repeat(20)
            ),
        );
    }
}

/// The marker of a page served by nginx.
fn marker(page: &str, status: u16, body: &[u8]) -> u64 {
    assert_eq!(status, 200, "{page}");
    let text = String::from_utf8_lossy(body);
    let start = text
        .find("content=\"gen-")
        .unwrap_or_else(|| panic!("{page} has no deploy marker: {text}"))
        + "content=\"gen-".len();
    let end = start + text[start..].find('"').expect("marker end");
    text[start..end].parse().expect("marker number")
}

/// How many times the marker changes along one pass, in the order the
/// pages were read.
fn switch_points(pass: &[(String, u64)]) -> usize {
    pass.windows(2).filter(|w| w[0].1 != w[1].1).count()
}

/// The directory target switches all its pages at once: a reader that
/// fetches every page through nginx, in a new random order on each pass,
/// while publishes and rollbacks alternate 50 times, sees within one pass
/// the pages of one deploy, or of the old one then the new one: at most
/// one switch point, never the old deploy again after the new. After each
/// switch the next publish or rollback waits for one whole pass that began
/// after it, so no pass can span two switches.
#[test]
fn a_reader_through_nginx_never_sees_two_deploys_mixed_during_50_publishes_and_rollbacks() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    let p = Project::empty();
    p.config("[source]\ndirs = [\"site\"]\n");
    let mut pages: Vec<String> = vec!["index.html".into()];
    pages.extend((0..120).map(|i| format!("p/{i:03}.html")));
    pages.push("p/index.html".into());
    write_marked_pages(&p, &pages, 0);
    p.write("site/css/site.css", &"body { color: #333; }\n".repeat(20));
    let base = p.json(&["publish"])["deploy"].as_str().unwrap().to_string();
    write_marked_pages(&p, &pages, 1);
    p.json(&["publish"]);
    let (_nginx, addr) = serve(&p);

    let stop = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicU64::new(0));
    let finished = Arc::new(AtomicU64::new(0));
    let reader = {
        let (stop, started, finished) = (stop.clone(), started.clone(), finished.clone());
        let (addr, pages) = (addr.clone(), pages.clone());
        std::thread::spawn(move || {
            let mut rng = 0x9E37_79B9_7F4A_7C15u64
                ^ std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64;
            let mut passes: Vec<Vec<(String, u64)>> = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let mut order: Vec<&String> = pages.iter().collect();
                // Fisher-Yates with xorshift: a new order every pass.
                for i in (1..order.len()).rev() {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    order.swap(i, (rng % (i as u64 + 1)) as usize);
                }
                started.fetch_add(1, Ordering::SeqCst);
                let pass: Vec<(String, u64)> = order
                    .into_iter()
                    .map(|page| {
                        // `/p/` is served as `p/index.html`, through nginx's
                        // index, a second lookup in the live release.
                        let url = match page.strip_suffix("index.html") {
                            Some(dir) => format!("/{dir}"),
                            None => format!("/{page}"),
                        };
                        let (status, _, body) = http_get(&addr, &url, &[]);
                        (page.clone(), marker(page, status, &body))
                    })
                    .collect();
                passes.push(pass);
                finished.fetch_add(1, Ordering::SeqCst);
            }
            passes
        })
    };
    // One whole pass that began after now.
    let wait_for_a_fresh_pass = || {
        let after = started.load(Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(60);
        while finished.load(Ordering::SeqCst) <= after {
            assert!(Instant::now() < deadline, "the reader is stuck");
            assert!(!reader.is_finished(), "the reader failed");
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    wait_for_a_fresh_pass();
    let mut live = 1;
    let mut generations = vec![1];
    for round in 0..50u64 {
        if round % 2 == 0 {
            let out = p.json(&["rollback", &base]);
            assert_eq!(out["to"], base.as_str());
            live = 0;
        } else {
            live = round + 1;
            write_marked_pages(&p, &pages, live);
            p.json(&["publish"]);
        }
        generations.push(live);
        wait_for_a_fresh_pass();
    }
    stop.store(true, Ordering::SeqCst);
    let passes = reader.join().expect("reader");

    let mut straddled = 0;
    for (i, pass) in passes.iter().enumerate() {
        assert_eq!(pass.len(), pages.len());
        let points = switch_points(pass);
        assert!(
            points <= 1,
            "pass {i} of {} saw {points} switch points, pages of two deploys mixed: {pass:?}",
            passes.len()
        );
        for (_, g) in pass {
            assert!(generations.contains(g), "pass {i}: unknown deploy gen-{g}");
        }
        straddled += points;
    }
    // The last pass began after the last switch.
    let last = passes.last().unwrap();
    assert!(last.iter().all(|(_, g)| *g == live), "{last:?}");
    // The reader did race the switches: many passes saw one.
    assert!(
        straddled >= 10,
        "only {straddled} of {} passes saw a switch",
        passes.len()
    );
    eprintln!(
        "{} passes of {} pages, {straddled} of them across a switch",
        passes.len(),
        pages.len()
    );
}

/// Moves a directory target back to the layout of versions before
/// releases: its stable keys and manifest at the root, no release.
fn flatten(p: &Project) {
    let root = p.path("published");
    let live = std::fs::canonicalize(root.join(".assetpub/current")).unwrap();
    for (rel, ..) in crate::cli::snapshot(&live) {
        let to = root.join(&rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        // A copy, as those versions wrote them.
        std::fs::copy(live.join(&rel), &to).unwrap();
    }
    std::fs::remove_file(root.join(".assetpub/current")).unwrap();
    std::fs::remove_dir_all(root.join(".assetpub/releases")).unwrap();
}

/// A target published before releases (pages and manifest at its root) is
/// served by the new config as it is, and moved into a release by its next
/// publish, which says so; the pages it kept at its root are deleted, and a
/// rollback builds the release of the earlier deploy from its objects.
#[test]
fn a_target_published_before_releases_is_served_then_moved_by_its_next_publish() {
    let p = Project::new();
    let first = p.json(&["publish"])["deploy"].as_str().unwrap().to_string();
    flatten(&p);
    assert!(p.path("published/index.html").is_file());
    assert!(p.path("published/manifest.json").is_file());
    p.cmd().arg("verify").assert().success();
    let (_nginx, addr) = serve(&p);
    let v1 = p.read("site/index.html");
    let (status, _, body) = http_get(&addr, "/", &[]);
    assert_eq!((status, body), (200, v1.clone()));
    let (status, ..) = http_get(&addr, "/about.html", &[]);
    assert_eq!(status, 200);

    p.write("site/index.html", "<!doctype html><p>version two</p>");
    std::fs::remove_file(p.path("site/about.html")).unwrap();
    let out = p.cmd().args(["publish"]).output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("now serves its pages from releases")
            && stderr.contains("assetpub nginx-config"),
        "{stderr}"
    );
    for flat in [
        "index.html",
        "index.html.gz",
        "about.html",
        "robots.txt",
        "manifest.json",
    ] {
        assert!(
            !p.path(&format!("published/{flat}")).exists(),
            "{flat} is left at the root"
        );
    }
    let (status, _, body) = http_get(&addr, "/", &[]);
    assert_eq!(
        (status, body.as_slice()),
        (200, &b"<!doctype html><p>version two</p>"[..])
    );
    let (status, ..) = http_get(&addr, "/about.html", &[]);
    assert_eq!(status, 404, "a page the deploy does not have is gone");
    p.cmd().arg("verify").assert().success();

    p.json(&["rollback", &first]);
    let (status, _, body) = http_get(&addr, "/", &[]);
    assert_eq!((status, body), (200, v1));
    let (status, ..) = http_get(&addr, "/about.html", &[]);
    assert_eq!(status, 200);
    assert!(
        p.path(&format!("published/.assetpub/releases/{first}/about.html"))
            .is_file()
    );
    p.cmd().arg("verify").assert().success();
}

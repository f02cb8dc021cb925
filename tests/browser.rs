//! The published example site in a real browser. Headless Chromium (Debian's
//! `chromium`, driven through playwright-core by tests/browser/load-site.mjs)
//! loads `examples/site`, published with the repository's publish.toml, from
//! Garage's website endpoint and from nginx serving the `file://` target:
//! every request succeeds, every image, background and font is there, the
//! script and its source map load, and each response carries the headers the
//! manifest promises. After a rollback the same browser shows the earlier
//! page. With `[rewrite] integrity = true` the site loads as cleanly, and a
//! script object overwritten with other bytes of the same length is blocked
//! by Chromium's integrity check. A stylesheet brotli-compressed in pieces
//! is decoded whole. Screenshots go to `target/test-artifacts/`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

use serde_json::{Value, json};

use crate::cli::Project;
use crate::support::S3Server;
use crate::support::s3client::S3Client;

const INSTALL: &str = "run scripts/install-test-deps (it installs Debian's `chromium` with apt-get and runs `npm ci` in tests/browser)";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "public, max-age=0, must-revalidate";
/// The clock load-site.mjs gives pages: the site's script writes its year.
const PAGE_YEAR: &str = "2031";
const FIRST_H1: &str = "Ship the site, not the suspense";
const SECOND_H1: &str = "Second deploy: the page changed";
/// Longest a page may take to load and be checked.
const VISIT_TIMEOUT: Duration = Duration::from_secs(90);

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"));
    let dir = target.join("test-artifacts");
    std::fs::create_dir_all(&dir).expect("create target/test-artifacts");
    dir
}

/// Chromium, node and playwright-core, or a panic saying how to get them.
fn browser_deps() -> (PathBuf, PathBuf) {
    let chromium = std::env::var_os("ASSETPUB_TEST_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        chromium.is_file(),
        "Chromium not found at {}: {INSTALL}",
        chromium.display()
    );
    let version = Command::new("node").arg("--version").output();
    let major = version
        .as_ref()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .trim_start_matches('v')
                .split('.')
                .next()
                .and_then(|m| m.parse::<u32>().ok())
        });
    assert!(
        major.is_some_and(|m| m >= 20),
        "node 20 or newer is needed to drive Chromium (found {version:?}): install Node.js, then {INSTALL}"
    );
    let dir = repo().join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core/package.json")
            .is_file(),
        "playwright-core is not installed in {}: {INSTALL}",
        dir.display()
    );
    (chromium, dir.join("load-site.mjs"))
}

/// One Chromium with a fresh profile, for one test.
struct Browser {
    child: Child,
    stdin: ChildStdin,
    answers: Receiver<String>,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// `host_rules`: Chromium's `--host-resolver-rules`.
    fn start(host_rules: Option<&str>) -> Browser {
        let (chromium, script) = browser_deps();
        let profile = tempfile::tempdir().expect("profile dir");
        let mut cmd = Command::new("node");
        cmd.arg(&script)
            .arg(&chromium)
            .arg(profile.path())
            .args(host_rules)
            .current_dir(script.parent().unwrap())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        // Playwright never downloads a browser here, and takes no proxy.
        for var in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "http_proxy",
            "https_proxy",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1");
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("run node {}: {e}; {INSTALL}", script.display()));
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let (tx, answers) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Browser {
            child,
            stdin,
            answers,
            _profile: profile,
        }
    }

    fn visit(&mut self, url: &str, screenshot: Option<&Path>) -> Value {
        let cmd = json!({"visit": url, "screenshot": screenshot});
        writeln!(self.stdin, "{cmd}").expect("write to load-site.mjs");
        self.stdin.flush().expect("flush");
        let line = match self.answers.recv_timeout(VISIT_TIMEOUT) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                panic!("Chromium did not finish loading {url} within {VISIT_TIMEOUT:?}")
            }
            Err(RecvTimeoutError::Disconnected) => panic!(
                "load-site.mjs ended while loading {url} ({:?}); its errors are above",
                self.child.try_wait()
            ),
        };
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("load-site.mjs answered no JSON ({e}): {line}"));
        assert!(v.get("error").is_none(), "loading {url}: {}", v["error"]);
        v
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "{}", json!({"quit": true}));
        let _ = self.stdin.flush();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let dest = to.join(e.file_name());
        if e.file_type().expect("file type").is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).expect("copy");
        }
    }
}

/// A copy of `examples/site` with the repository's publish.toml, its
/// `[target] url` line replaced by `target`.
fn example_project(target: &str) -> Project {
    let p = Project::empty();
    copy_dir(&repo().join("examples/site"), &p.path("examples/site"));
    let config = std::fs::read_to_string(repo().join("publish.toml")).expect("publish.toml");
    const URL: &str = "url = \"file://./published\"";
    assert!(
        config.contains(URL),
        "the repository's publish.toml has no `{URL}`"
    );
    p.config(&config.replace(URL, target));
    p
}

/// The second build: another headline, and a stylesheet change, so that the
/// page names another stylesheet key too.
fn change_the_site(p: &Project) {
    let index = String::from_utf8(p.read("examples/site/index.html")).unwrap();
    assert!(index.contains(FIRST_H1));
    p.write(
        "examples/site/index.html",
        &index.replace(FIRST_H1, SECOND_H1),
    );
    let base = String::from_utf8(p.read("examples/site/css/base.css")).unwrap();
    p.write(
        "examples/site/css/base.css",
        &base.replace("--accent: #e63946;", "--accent: #1d7874;"),
    );
}

fn run_ok(cmd: &mut Command, what: &str) -> Value {
    let out = cmd.arg("--json").output().expect("run assetpub");
    assert!(
        out.status.success(),
        "{what} failed ({}): {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

/// What a response for a path must carry.
#[derive(Clone)]
struct Expected {
    content_type: String,
    cache_control: String,
    /// `Content-Encoding`: a directory target has `.gz` sidecars, which
    /// nginx serves to a browser (they accept gzip); S3 objects are stored
    /// as they are.
    content_encoding: Option<&'static str>,
}

/// By path under the site's root (`""` is the index page).
fn expected_headers(manifest: &Value) -> BTreeMap<String, Expected> {
    let sidecars = manifest["sidecars"] == true;
    let mut out = BTreeMap::new();
    for e in manifest["files"].as_object().expect("files").values() {
        let expected = Expected {
            content_type: e["content_type"].as_str().unwrap().to_string(),
            cache_control: e["cache_control"].as_str().unwrap().to_string(),
            content_encoding: (sidecars && e["encodings"]["gzip"].is_u64()).then_some("gzip"),
        };
        if let Some(object) = e["object"].as_str() {
            let immutable = Expected {
                cache_control: IMMUTABLE.to_string(),
                ..expected.clone()
            };
            out.insert(object.to_string(), immutable);
        }
        out.insert(e["key"].as_str().unwrap().to_string(), expected);
    }
    if let Some(index) = out.get("index.html").cloned() {
        out.insert(String::new(), index);
    }
    out
}

fn is_fingerprinted(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.split('.').any(|part| {
        part.len() == 12
            && part
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    })
}

/// The path of `url` under `base`, without query or fragment.
fn path_of<'u>(url: &'u str, base: &str) -> Option<&'u str> {
    let rest = url.strip_prefix(base)?;
    Some(rest.split(['?', '#']).next().unwrap_or(rest))
}

fn key_of<'m>(manifest: &'m Value, logical: &str) -> &'m str {
    manifest["files"][logical]["key"]
        .as_str()
        .unwrap_or_else(|| panic!("`{logical}` is not in the manifest"))
}

/// Everything a visit must show, whatever served it. Returns the number of
/// responses whose headers were checked.
fn check_page(report: &Value, base: &str, manifest: &Value, h1: &str) -> usize {
    let url = report["url"].as_str().unwrap();
    let facts = &report["facts"];
    let context = || serde_json::to_string_pretty(report).unwrap();
    assert_eq!(report["status"], 200, "{url}: {}", context());
    assert_eq!(
        report["failed"],
        json!([]),
        "{url}: requests failed: {}",
        context()
    );
    assert_eq!(report["consoleErrors"], json!([]), "{url}: {}", context());
    assert_eq!(report["pageErrors"], json!([]), "{url}: {}", context());
    assert_eq!(facts["h1"], h1, "{url}: the page shown");
    assert_eq!(facts["year"], PAGE_YEAR, "{url}: the site's script ran");

    let expected = expected_headers(manifest);
    let mut checked = 0;
    let mut loaded = BTreeMap::new();
    for r in report["responses"].as_array().unwrap() {
        let r_url = r["url"].as_str().unwrap();
        let status = r["status"].as_u64().unwrap();
        assert!(
            status < 400,
            "{url}: {r_url} answered {status}: {}",
            context()
        );
        let Some(path) = path_of(r_url, base) else {
            panic!("{url}: a request left the site: {r_url}");
        };
        loaded.insert(path.to_string(), status);
        let want = expected
            .get(path)
            .unwrap_or_else(|| panic!("{url}: {r_url} is not named by the manifest"));
        if status == 304 {
            continue;
        }
        let h = &r["headers"];
        assert_eq!(
            h["content-type"].as_str(),
            Some(want.content_type.as_str()),
            "{url}: Content-Type of {r_url}"
        );
        assert_eq!(
            h["cache-control"].as_str(),
            Some(want.cache_control.as_str()),
            "{url}: Cache-Control of {r_url}"
        );
        assert_eq!(
            h["content-encoding"].as_str(),
            want.content_encoding,
            "{url}: Content-Encoding of {r_url}"
        );
        if is_fingerprinted(path) {
            assert_eq!(want.cache_control, IMMUTABLE, "{url}: {r_url}");
        }
        if path.is_empty() || path.ends_with(".html") {
            assert_eq!(want.cache_control, REVALIDATE, "{url}: {r_url}");
        }
        checked += 1;
    }

    for img in facts["images"].as_array().unwrap() {
        assert!(
            img["complete"] == true && img["naturalWidth"].as_u64().unwrap_or(0) > 0,
            "{url}: image not shown: {img}"
        );
    }
    let backgrounds = facts["backgrounds"].as_array().unwrap();
    for bg in backgrounds {
        let bg = bg.as_str().unwrap();
        let path = path_of(bg, base).unwrap_or_else(|| panic!("{url}: background {bg}"));
        assert_eq!(
            loaded.get(path),
            Some(&200),
            "{url}: background {bg} was not loaded: {loaded:?}"
        );
    }
    assert!(
        facts["fontsStatus"] == "loaded" && facts["interRenders"] == true,
        "{url}: fonts: {}",
        facts["fonts"]
    );
    let fonts = facts["fonts"].as_array().unwrap();
    assert!(
        !fonts.is_empty() && fonts.iter().all(|f| f["status"] == "loaded"),
        "{url}: fonts: {fonts:?}"
    );
    let font = key_of(manifest, "fonts/inter.woff2");
    assert_eq!(loaded.get(font), Some(&200), "{url}: the font {font}");

    let sheets = facts["sheets"].as_array().unwrap();
    for logical in ["css/site.css", "css/base.css"] {
        let href = format!("{base}{}", key_of(manifest, logical));
        assert!(
            sheets
                .iter()
                .any(|s| s["href"] == href.as_str() && s["rules"].as_u64().unwrap_or(0) > 0),
            "{url}: stylesheet {href} not applied: {sheets:?}"
        );
    }
    let maps = facts["maps"].as_array().unwrap();
    let script = key_of(manifest, "js/app.js");
    let map = maps
        .iter()
        .find(|m| m["script"] == format!("{base}{script}").as_str())
        .unwrap_or_else(|| panic!("{url}: {script} not loaded: {maps:?}"));
    assert_eq!(
        map["map"],
        format!("{base}{}", key_of(manifest, "js/app.js.map")).as_str()
    );
    assert_eq!(map["status"], 200, "{map}");
    assert_eq!(map["version"], 3, "{map}");
    assert_eq!(
        map["file"],
        script.rsplit('/').next().unwrap(),
        "the map names its script"
    );

    for link in facts["links"]
        .as_array()
        .unwrap()
        .iter()
        .chain(facts["manifestIcons"].as_array().unwrap())
    {
        assert_eq!(link["status"], 200, "{url}: broken link {link}");
    }
    checked
}

/// The first deploy, every page; the second, then the rollback, in one
/// browser profile (so the browser's cache is in play, as a visitor's is).
fn browse(
    browser: &mut Browser,
    base: &str,
    name: &str,
    p: &Project,
    publish: &dyn Fn() -> Value,
    rollback: &dyn Fn() -> Value,
    manifest: &dyn Fn() -> Value,
) {
    let shots = artifacts();
    let first = publish();
    let m1 = manifest();
    assert_eq!(m1["deploy"], first["deploy"]);
    let mut checked = 0;
    let report = browser.visit(
        base,
        Some(&shots.join(format!("browser-{name}-1-first.png"))),
    );
    checked += check_page(&report, base, &m1, FIRST_H1);
    let facts = &report["facts"];
    for logical in ["img/hero.jpg", "img/logo.png", "img/icons.svg"] {
        let key = key_of(&m1, logical);
        assert!(
            facts["backgrounds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|b| path_of(b.as_str().unwrap(), base) == Some(key)),
            "index.html shows no background from {logical}: {}",
            facts["backgrounds"]
        );
    }
    let about = browser.visit(&format!("{base}about.html"), None);
    assert!(!about["facts"]["images"].as_array().unwrap().is_empty());
    checked += check_page(&about, base, &m1, "About");
    let post = browser.visit(&format!("{base}blog/first-post.html"), None);
    assert!(!post["facts"]["images"].as_array().unwrap().is_empty());
    checked += check_page(&post, base, &m1, "Why every asset gets a fingerprint");
    assert!(checked >= 15, "only {checked} responses checked");

    change_the_site(p);
    let second = publish();
    let m2 = manifest();
    assert_eq!(m2["deploy"], second["deploy"]);
    assert_ne!(
        key_of(&m2, "css/site.css"),
        key_of(&m1, "css/site.css"),
        "the second build names another stylesheet"
    );
    let report = browser.visit(
        base,
        Some(&shots.join(format!("browser-{name}-2-second.png"))),
    );
    check_page(&report, base, &m2, SECOND_H1);

    let rb = rollback();
    assert_eq!(rb["to"], first["deploy"], "{rb}");
    let m3 = manifest();
    assert_eq!(m3["deploy"], first["deploy"]);
    let report = browser.visit(
        base,
        Some(&shots.join(format!("browser-{name}-3-rolled-back.png"))),
    );
    check_page(&report, base, &m3, FIRST_H1);
    let stylesheet = format!("{base}{}", key_of(&m1, "css/site.css"));
    assert!(
        report["facts"]["sheets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["href"] == stylesheet.as_str()),
        "after the rollback the page uses the first stylesheet again"
    );
}

#[test]
fn chromium_loads_the_example_site_from_garage_website_endpoint() {
    let server = S3Server::garage();
    let bucket = server.unique_bucket("browser");
    let p = example_project(&format!("url = \"s3://{bucket}\"\npath_style = true"));
    let web_port = server
        .web_endpoint
        .as_deref()
        .and_then(|w| w.rsplit(':').next())
        .expect("Garage has a web endpoint");
    let base = format!("http://{bucket}.web.garage.localhost:{web_port}/");
    let s3 = S3Client::new(server, &bucket);
    let assetpub = |args: &[&str]| {
        let mut cmd = p.std_cmd();
        server.apply_env(&mut cmd);
        cmd.args(args);
        run_ok(&mut cmd, &format!("assetpub {args:?}"))
    };
    let mut browser = Browser::start(Some("MAP *.web.garage.localhost 127.0.0.1"));
    browse(
        &mut browser,
        &base,
        "garage",
        &p,
        &|| assetpub(&["publish"]),
        &|| assetpub(&["rollback"]),
        &|| serde_json::from_slice(&s3.get("manifest.json").expect("manifest.json")).unwrap(),
    );
}

#[test]
fn chromium_loads_the_example_site_from_nginx_serving_the_directory() {
    let p = example_project("url = \"file://./published\"");
    let assetpub = |args: &[&str]| run_ok(p.std_cmd().args(args), &format!("assetpub {args:?}"));
    // nginx serves whatever the directory holds; it starts after the first
    // publish so that its root exists.
    let first = assetpub(&["publish"]);
    let (_nginx, addr) = crate::nginx::serve(&p);
    let base = format!("http://{addr}/");
    let mut browser = Browser::start(None);
    let published = std::cell::Cell::new(Some(first));
    browse(
        &mut browser,
        &base,
        "nginx",
        &p,
        &|| published.take().unwrap_or_else(|| assetpub(&["publish"])),
        &|| assetpub(&["rollback"]),
        &|| p.manifest(),
    );
}

/// [`example_project`] with `[rewrite] integrity = true`.
fn example_project_with_integrity(target: &str) -> Project {
    let p = example_project(target);
    let config = String::from_utf8(p.read("publish.toml")).unwrap();
    const HTML: &str = "\nhtml = true\n";
    assert!(
        config.contains(HTML),
        "the repository's publish.toml has no `{HTML}`"
    );
    p.config(&config.replace(HTML, &format!("{HTML}integrity = true\n")));
    p
}

/// The script's key and integrity, checked on the page as served.
fn integrity_on_the_page(manifest: &Value, index: &[u8]) -> (String, String) {
    let index = String::from_utf8_lossy(index);
    let file = |logical: &str| &manifest["files"][logical];
    for (logical, tag) in [
        (
            "css/site.css",
            "<link rel=\"stylesheet\" href=\"{key}\" {attrs}>",
        ),
        ("js/app.js", "<script src=\"{key}\" defer {attrs}></script>"),
    ] {
        let e = file(logical);
        let attrs = format!(
            "integrity=\"{}\" crossorigin=\"anonymous\"",
            e["integrity"].as_str().unwrap()
        );
        let tag = tag
            .replace("{key}", e["key"].as_str().unwrap())
            .replace("{attrs}", &attrs);
        assert!(index.contains(&tag), "no `{tag}` in {index}");
    }
    let script = file("js/app.js");
    (
        script["key"].as_str().unwrap().to_string(),
        script["integrity"].as_str().unwrap().to_string(),
    )
}

/// `bytes` with one letter changed: as long, not the same.
fn tampered(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let at = out
        .iter()
        .position(|c| c.is_ascii_lowercase())
        .expect("a letter to change");
    out[at] = if out[at] == b'z' { b'y' } else { out[at] + 1 };
    out
}

/// The page as a fresh browser sees it once the script at `script` holds
/// other bytes than its integrity names: Chromium refuses to run it.
fn check_refused(report: &Value, base: &str, script: &str, integrity: &str, bytes: &[u8]) {
    let url = format!("{base}{script}");
    let context = || serde_json::to_string_pretty(report).unwrap();
    assert_eq!(report["status"], 200, "{}", context());
    let errors = report["consoleErrors"].as_array().unwrap();
    let served = sri_of(bytes);
    assert_ne!(served, integrity);
    assert!(
        errors.iter().any(|e| {
            let e = e.as_str().unwrap();
            e.contains("Failed to find a valid digest in the 'integrity' attribute")
                && e.contains(&url)
                // Chromium names the digest it computed without the prefix.
                && e.contains(&format!(
                    "computed SHA-384 integrity '{}'",
                    served.trim_start_matches("sha384-")
                ))
                && e.contains("has been blocked")
        }),
        "no integrity error for {url}: {}",
        context()
    );
    // The page's own year stays: the script that writes the clock's did
    // not run.
    assert_ne!(
        report["facts"]["year"],
        PAGE_YEAR,
        "the blocked script ran: {}",
        context()
    );
}

fn sri_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    format!(
        "sha384-{}",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha384::digest(bytes))
    )
}

#[test]
fn chromium_enforces_the_integrity_of_the_site_on_nginx() {
    let p = example_project_with_integrity("url = \"file://./published\"");
    run_ok(p.std_cmd().arg("publish"), "assetpub publish");
    let m = p.manifest();
    let (script, integrity) = integrity_on_the_page(&m, &p.live("index.html"));
    let (_nginx, addr) = crate::nginx::serve(&p);
    let base = format!("http://{addr}/");
    let shots = artifacts();

    let mut browser = Browser::start(None);
    let report = browser.visit(&base, Some(&shots.join("browser-sri-nginx-1.png")));
    check_page(&report, &base, &m, FIRST_H1);
    drop(browser);

    // The script's object (and the sidecars nginx may serve in its place)
    // now hold other bytes of the same length.
    let object = p.path("published").join(&script);
    let bytes = tampered(&std::fs::read(&object).unwrap());
    std::fs::write(&object, &bytes).unwrap();
    let gz = p.path("published").join(format!("{script}.gz"));
    if gz.exists() {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(&bytes).unwrap();
        std::fs::write(&gz, e.finish().unwrap()).unwrap();
    }
    let br = p.path("published").join(format!("{script}.br"));
    if br.exists() {
        let mut out = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut out, 4096, 9, 22);
            w.write_all(&bytes).unwrap();
        }
        std::fs::write(&br, out).unwrap();
    }
    let mut browser = Browser::start(None);
    let report = browser.visit(&base, Some(&shots.join("browser-sri-nginx-2.png")));
    check_refused(&report, &base, &script, &integrity, &bytes);
}

#[test]
fn chromium_enforces_the_integrity_of_the_site_on_garage_website_endpoint() {
    let server = S3Server::garage();
    let bucket = server.unique_bucket("sri");
    let p = example_project_with_integrity(&format!("url = \"s3://{bucket}\"\npath_style = true"));
    let web_port = server
        .web_endpoint
        .as_deref()
        .and_then(|w| w.rsplit(':').next())
        .expect("Garage has a web endpoint");
    let base = format!("http://{bucket}.web.garage.localhost:{web_port}/");
    let s3 = S3Client::new(server, &bucket);
    let mut cmd = p.std_cmd();
    server.apply_env(&mut cmd);
    run_ok(cmd.arg("publish"), "assetpub publish");
    let m: Value = serde_json::from_slice(&s3.get("manifest.json").expect("manifest")).unwrap();
    let index = s3.get("index.html").expect("index.html");
    let (script, integrity) = integrity_on_the_page(&m, &index);
    let shots = artifacts();
    let rules = Some("MAP *.web.garage.localhost 127.0.0.1");

    let mut browser = Browser::start(rules);
    let report = browser.visit(&base, Some(&shots.join("browser-sri-garage-1.png")));
    check_page(&report, &base, &m, FIRST_H1);
    drop(browser);

    let bytes = tampered(&s3.get(&script).expect("the script's object"));
    s3.put(
        &script,
        &bytes,
        m["files"]["js/app.js"]["content_type"].as_str().unwrap(),
    );
    let mut browser = Browser::start(rules);
    let report = browser.visit(&base, Some(&shots.join("browser-sri-garage-2.png")));
    check_refused(&report, &base, &script, &integrity, &bytes);
}

/// A stylesheet over 1 MiB is brotli-compressed in 1 MiB pieces joined into
/// one stream. Stored that way (`encoding = "br"`, `Content-Encoding: br`)
/// on Garage, Chromium decodes all of it: every rule is there, and the last
/// one, in the last piece, puts the logo behind the page.
#[test]
fn chromium_decodes_a_stylesheet_brotli_compressed_in_pieces() {
    let server = S3Server::garage();
    let bucket = server.unique_bucket("pieces");
    let p = Project::empty();
    let mut css = String::new();
    let mut rules = 0;
    while css.len() < (5 << 20) / 2 {
        css.push_str(&format!(
            ".r{rules}{{margin:{}px;color:#{:06x}}}",
            rules % 37,
            (rules * 7919) % 0xff_ffff
        ));
        rules += 1;
    }
    css.push_str("body{background:url(../img/logo.png) no-repeat}");
    rules += 1;
    p.write("site/css/big.css", &css);
    p.write_bytes("site/img/logo.png", &crate::cli::pseudo_random(3000, 7));
    p.write(
        "site/index.html",
        "<!doctype html><html><head><link rel=\"stylesheet\" href=\"css/big.css\"></head>\
         <body><h1>pieces</h1></body></html>\n",
    );
    p.config(&format!(
        "[source]\ndirs = [\"site\"]\n[rewrite]\nhtml = true\n[target]\nurl = \"s3://{bucket}\"\npath_style = true\nencoding = \"br\"\n"
    ));
    let mut cmd = p.std_cmd();
    server.apply_env(&mut cmd);
    cmd.arg("publish");
    run_ok(&mut cmd, "assetpub publish");
    let s3 = S3Client::new(server, &bucket);
    let manifest: Value =
        serde_json::from_slice(&s3.get("manifest.json").expect("manifest.json")).unwrap();
    let entry = &manifest["files"]["css/big.css"];
    let br = entry["encodings"]["br"].as_u64().expect("a .br was made");
    assert!(entry["size"].as_u64().unwrap() > 2 << 20, "{entry}");
    let key = entry["key"].as_str().unwrap();
    assert_eq!(s3.head(key).expect("the stylesheet object").size, br);

    let web_port = server
        .web_endpoint
        .as_deref()
        .and_then(|w| w.rsplit(':').next())
        .expect("Garage has a web endpoint");
    let base = format!("http://{bucket}.web.garage.localhost:{web_port}/");
    let mut browser = Browser::start(Some("MAP *.web.garage.localhost 127.0.0.1"));
    let report = browser.visit(&base, None);
    let context = || serde_json::to_string_pretty(&report).unwrap();
    assert_eq!(report["failed"], json!([]), "{}", context());
    let sheet = format!("{base}{key}");
    let sheets = report["facts"]["sheets"].as_array().unwrap();
    let loaded = sheets
        .iter()
        .find(|s| s["href"] == sheet.as_str())
        .unwrap_or_else(|| panic!("{sheet} not loaded: {}", context()));
    assert_eq!(loaded["rules"], rules, "every rule decoded");
    let logo = key_of(&manifest, "img/logo.png");
    assert!(
        report["facts"]["backgrounds"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| path_of(b.as_str().unwrap(), &base) == Some(logo)),
        "the last rule's background: {}",
        report["facts"]["backgrounds"]
    );
    let encoding = report["responses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["url"] == sheet.as_str())
        .map(|r| r["headers"]["content-encoding"].clone());
    assert_eq!(encoding, Some(json!("br")), "{}", context());
}

#[test]
fn chromium_loads_a_preview_from_garage_website_endpoint_and_the_live_site_stays() {
    let server = S3Server::garage();
    let bucket = server.unique_bucket("browser-preview");
    let web_port = server
        .web_endpoint
        .as_deref()
        .and_then(|w| w.rsplit(':').next())
        .expect("Garage has a web endpoint");
    let base = format!("http://{bucket}.web.garage.localhost:{web_port}/");
    let p = example_project(&format!(
        "url = \"s3://{bucket}\"\npath_style = true\n\n[preview]\nbase_url = \"{base}_previews/{{name}}/\""
    ));
    // A preview is served under a path here: its pages must name their
    // assets by relative URLs (a root-absolute one names the live site's).
    for (file, from, to) in [
        ("blog/first-post.html", "\"/", "\"../"),
        ("site.webmanifest", "\"/", "\""),
        ("css/site.css", "url(/", "url(../"),
    ] {
        let path = format!("examples/site/{file}");
        let text = String::from_utf8(p.read(&path)).unwrap();
        assert!(text.contains(from), "{file}");
        p.write(&path, &text.replace(from, to));
    }
    let s3 = S3Client::new(server, &bucket);
    let assetpub = |args: &[&str]| {
        let mut cmd = p.std_cmd();
        server.apply_env(&mut cmd);
        cmd.args(args);
        run_ok(&mut cmd, &format!("assetpub {args:?}"))
    };
    let shots = artifacts();
    assetpub(&["publish"]);
    let live_manifest = s3.get("manifest.json").expect("manifest.json");
    let m1: Value = serde_json::from_slice(&live_manifest).unwrap();
    let live_index = s3.get("index.html").expect("index.html");

    change_the_site(&p);
    let out = assetpub(&["publish", "--preview", "pr-9"]);
    let url = out["preview"]["url"].as_str().unwrap().to_string();
    assert_eq!(url, format!("{base}_previews/pr-9/"));
    let pm: Value = serde_json::from_slice(
        &s3.get("_previews/pr-9/manifest.json")
            .expect("the preview's manifest"),
    )
    .unwrap();
    let mut browser = Browser::start(Some("MAP *.web.garage.localhost 127.0.0.1"));
    let report = browser.visit(
        &url,
        Some(&shots.join("browser-preview-garage-1-preview.png")),
    );
    check_page(&report, &url, &pm, SECOND_H1);
    let post = browser.visit(&format!("{url}blog/first-post.html"), None);
    check_page(&post, &url, &pm, "Why every asset gets a fingerprint");

    // The live site still serves the first build, byte for byte.
    assert_eq!(s3.get("manifest.json").unwrap(), live_manifest);
    assert_eq!(s3.get("index.html").unwrap(), live_index);
    let report = browser.visit(
        &base,
        Some(&shots.join("browser-preview-garage-2-live.png")),
    );
    check_page(&report, &base, &m1, FIRST_H1);
}

/// Garage's website endpoint answers a redirect object (written with
/// `x-amz-website-redirect-location`) with a 301: Chromium follows it to
/// the page, which loads whole.
#[test]
fn chromium_follows_a_redirect_object_on_garage_website_endpoint() {
    let server = S3Server::garage();
    let bucket = server.unique_bucket("browser-redirect");
    let p = example_project(&format!("url = \"s3://{bucket}\"\npath_style = true"));
    p.write(
        "examples/site/_redirects",
        "/old-about /about.html\n/2019/about /about.html 302\n",
    );
    let web_port = server
        .web_endpoint
        .as_deref()
        .and_then(|w| w.rsplit(':').next())
        .expect("Garage has a web endpoint");
    let base = format!("http://{bucket}.web.garage.localhost:{web_port}/");
    let mut cmd = p.std_cmd();
    server.apply_env(&mut cmd);
    cmd.args(["publish"]);
    run_ok(&mut cmd, "assetpub publish");
    let mut browser = Browser::start(Some("MAP *.web.garage.localhost 127.0.0.1"));
    for from in ["old-about", "2019/about"] {
        let report = browser.visit(&format!("{base}{from}"), None);
        assert_eq!(
            report["finalUrl"],
            format!("{base}about.html"),
            "{from}: {report:#}"
        );
        assert_eq!(report["status"], 200, "{from}: {report:#}");
        let redirect = report["responses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["url"] == format!("{base}{from}"))
            .unwrap_or_else(|| panic!("{from}: no response for the redirect: {report:#}"));
        // The 302 of the rule is served as a 301, as plan warns.
        assert_eq!(redirect["status"], 301, "{from}: {report:#}");
        assert!(
            report["failed"].as_array().unwrap().is_empty(),
            "{report:#}"
        );
    }
}

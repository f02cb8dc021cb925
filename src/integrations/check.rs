//! The post-switch check: the live site fetched over HTTP(S), as visitors
//! get it. Each page is fetched, then every asset it names (and the assets
//! those name: a stylesheet's fonts and images, a script's source map), as
//! the published manifest resolves them. Each answer must have the expected
//! status, and the `Content-Type` and `Cache-Control` the manifest promises
//! for its key.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::remote::manifest::Manifest;
use crate::rewrite::Syntax;
use crate::settings::IMMUTABLE;

/// URLs in flight at once: enough to be quick, few enough not to look like
/// an attack to the site's own CDN or firewall.
pub const CONCURRENCY: usize = 8;
/// The most of a page or stylesheet that is read for the assets it names.
const MAX_SCANNED: usize = 16 << 20;

/// One URL that did not answer as the manifest promises.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Failure {
    pub url: String,
    /// What was wrong, e.g. "answered 404 Not Found, expected 200".
    pub reason: String,
}

/// What a check found.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Pages fetched (the paths).
    pub pages: usize,
    /// URLs fetched: the pages and the assets they name.
    pub urls: usize,
    /// By URL.
    pub failures: Vec<Failure>,
}

/// What the manifest promises for a key.
#[derive(Debug, Clone)]
struct Promise {
    content_type: String,
    cache_control: String,
}

/// The headers every key of `m` is served with: a stable key's own, and
/// for the fingerprinted object behind it, the same type as immutable.
fn promises(m: &Manifest) -> HashMap<String, Promise> {
    let mut out = HashMap::new();
    for e in m.files.values() {
        if let Some(object) = &e.object {
            out.insert(
                object.clone(),
                Promise {
                    content_type: e.content_type.clone(),
                    cache_control: IMMUTABLE.to_string(),
                },
            );
        }
        out.insert(
            e.key.clone(),
            Promise {
                content_type: e.content_type.clone(),
                cache_control: e.cache_control.clone(),
            },
        );
    }
    out
}

/// The key a path under the base URL names: `/` and `blog/` name the
/// index page of their directory, as nginx and website endpoints serve it.
pub fn key_of_path(path: &str) -> Option<String> {
    let path = path.split('?').next().unwrap_or(path);
    let path = path.trim_start_matches('/');
    let path = if path.is_empty() || path.ends_with('/') {
        format!("{path}index.html")
    } else {
        path.to_string()
    };
    crate::rewrite::target_of("", &path)
}

/// One URL to fetch.
#[derive(Debug, Clone)]
struct Job {
    url: String,
    key: Option<String>,
    promise: Option<Promise>,
    /// Read the body for the assets it names, in this syntax.
    scan: Option<Syntax>,
}

/// What fetching one URL found.
struct Fetched {
    url: String,
    problems: Vec<String>,
    /// The keys the body names.
    names: Vec<String>,
}

/// Fetches `paths` (under `base`, which ends in `/`) and every asset they
/// name, at most [`CONCURRENCY`] at a time, each within `timeout`.
pub async fn run(
    base: &str,
    paths: &[String],
    manifest: &Manifest,
    timeout: Duration,
    expect_status: u16,
) -> Result<Outcome> {
    let client = client()?;
    let promises = promises(manifest);
    // Absolute references (`/css/a.css`) are from the host's root; the
    // site's root is the base URL's path.
    let root = base
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i + 1..]))
        .unwrap_or("")
        .to_string();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut level: Vec<Job> = Vec::new();
    for p in paths {
        let url = format!("{base}{}", p.trim_start_matches('/'));
        if !seen.insert(url.clone()) {
            continue;
        }
        let key = key_of_path(p);
        let promise = key.as_ref().and_then(|k| promises.get(k)).cloned();
        let scan = key
            .as_deref()
            .filter(|_| promise.is_some())
            .map(Syntax::for_path);
        level.push(Job {
            url,
            key,
            promise,
            scan,
        });
    }
    let mut outcome = Outcome {
        pages: level.len(),
        ..Outcome::default()
    };
    let mut failures = BTreeMap::new();
    while !level.is_empty() {
        outcome.urls += level.len();
        let mut jobs = crate::concurrency::limited(CONCURRENCY, level, |job: Job| {
            let client = client.clone();
            async move { Ok::<_, Error>(fetch(&client, job, timeout, expect_status).await) }
        });
        let mut next = Vec::new();
        while let Some(joined) = jobs.next().await {
            let fetched =
                joined.map_err(|e| Error::Runtime(format!("a check request failed: {e}")))??;
            if !fetched.problems.is_empty() {
                failures.insert(fetched.url.clone(), fetched.problems.join("; "));
            }
            for name in fetched.names {
                let key = match name.strip_prefix('/') {
                    // An absolute path: under the site's root, or not the
                    // site's.
                    Some(abs) => match abs.strip_prefix(root.as_str()) {
                        Some(k) => k.to_string(),
                        None => continue,
                    },
                    None => name,
                };
                // A link to another page is not an asset of this one.
                let syntax = Syntax::for_path(&key);
                let Some(promise) = promises.get(&key) else {
                    continue;
                };
                if syntax == Syntax::Html {
                    continue;
                }
                let url = format!("{base}{}", crate::util::percent_encode_path(&key));
                if !seen.insert(url.clone()) {
                    continue;
                }
                next.push(Job {
                    url,
                    key: Some(key),
                    promise: Some(promise.clone()),
                    scan: matches!(syntax, Syntax::Css | Syntax::Js | Syntax::WebManifest)
                        .then_some(syntax),
                });
            }
        }
        level = next;
    }
    outcome.failures = failures
        .into_iter()
        .map(|(url, reason)| Failure { url, reason })
        .collect();
    Ok(outcome)
}

type HttpClient =
    Client<hyper_rustls::HttpsConnector<HttpConnector<LocalhostResolver>>, Empty<Bytes>>;

/// HTTP/1.1 over TCP, or TLS with the platform's root certificates.
fn client() -> Result<HttpClient> {
    let mut http = HttpConnector::new_with_resolver(LocalhostResolver);
    http.enforce_http(false);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
        .map_err(|e| {
            Error::Runtime(format!(
                "cannot load the system's root certificates for the check: {e}"
            ))
        })?
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new()).build(https))
}

/// The system's resolver, except for `localhost` and names under it,
/// which are the loopback addresses (RFC 6761), as browsers resolve them
/// without asking: `http://site.localhost:8080/` reaches a local server by
/// its virtual host.
#[derive(Debug, Clone, Copy)]
struct LocalhostResolver;

impl tower_service::Service<Name> for LocalhostResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let host = name.as_str().trim_end_matches('.').to_ascii_lowercase();
        Box::pin(async move {
            if host == "localhost" || host.ends_with(".localhost") {
                return Ok(vec![
                    SocketAddr::from(([127, 0, 0, 1], 0)),
                    SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 0)),
                ]
                .into_iter());
            }
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            Ok(addrs.into_iter())
        })
    }
}

async fn fetch(client: &HttpClient, job: Job, timeout: Duration, expect: u16) -> Fetched {
    let url = job.url.clone();
    match tokio::time::timeout(timeout, fetch_within(client, &job, expect)).await {
        Ok(Ok((problems, names))) => Fetched {
            url,
            problems,
            names,
        },
        Ok(Err(why)) => Fetched {
            url,
            problems: vec![why],
            names: Vec::new(),
        },
        Err(_) => Fetched {
            url,
            problems: vec![format!("no answer within {}", human_duration(timeout))],
            names: Vec::new(),
        },
    }
}

/// The problems with the answer for `job`, and the keys its body names;
/// Err for no answer at all.
async fn fetch_within(
    client: &HttpClient,
    job: &Job,
    expect: u16,
) -> std::result::Result<(Vec<String>, Vec<String>), String> {
    let request = http::Request::get(job.url.as_str())
        .header(
            http::header::USER_AGENT,
            concat!(
                "assetpub/",
                env!("CARGO_PKG_VERSION"),
                " (post-switch check)"
            ),
        )
        .header(http::header::ACCEPT, "*/*")
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("not a URL that can be requested: {e}"))?;
    let response = client
        .request(request)
        .await
        .map_err(|e| format!("no answer: {}", chain(&e)))?;
    let status = response.status();
    let mut problems = Vec::new();
    if status.as_u16() != expect {
        let location = response
            .headers()
            .get(http::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(|l| format!(" (Location: {l})"))
            .unwrap_or_default();
        problems.push(format!("answered {status}{location}, expected {expect}"));
    } else if let Some(promise) = &job.promise {
        let headers = response.headers();
        for (name, want, same) in [
            (
                "Content-Type",
                &promise.content_type,
                same_content_type as fn(&str, &str) -> bool,
            ),
            ("Cache-Control", &promise.cache_control, same_cache_control),
        ] {
            match headers
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()))
            {
                Some(got) if same(&got, want) => {}
                Some(got) => {
                    problems.push(format!("{name} is `{got}`, the manifest says `{want}`"))
                }
                None => problems.push(format!("no {name}, the manifest says `{want}`")),
            }
        }
    }
    let encoding = response
        .headers()
        .get(http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    let scan = job.scan.filter(|_| problems.is_empty());
    let mut body = response.into_body();
    let mut kept = Vec::new();
    // The whole body is read: an answer that breaks off is no answer.
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("the body broke off: {}", chain(&e)))?;
        if let (Some(_), Ok(data)) = (scan, frame.into_data())
            && kept.len() < MAX_SCANNED
        {
            kept.extend_from_slice(&data);
        }
    }
    let names = match (scan, &job.key) {
        (Some(syntax), Some(key)) => names_in(syntax, key, kept, encoding.as_deref()),
        _ => Vec::new(),
    };
    Ok((problems, names))
}

/// The keys (relative to the site's root) and absolute paths (with their
/// `/`) a body names.
fn names_in(syntax: Syntax, key: &str, body: Vec<u8>, encoding: Option<&str>) -> Vec<String> {
    let bytes = match decoded(body, encoding) {
        Some(b) => b,
        None => return Vec::new(),
    };
    let Some(text) = crate::rewrite::text_of(syntax, bytes) else {
        return Vec::new();
    };
    crate::rewrite::find_references(syntax, key, &text, true)
        .into_iter()
        .map(|r| {
            if r.url.starts_with('/') {
                format!("/{}", r.target)
            } else {
                r.target
            }
        })
        .collect()
}

/// The body without its `Content-Encoding`.
fn decoded(body: Vec<u8>, encoding: Option<&str>) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    match encoding {
        None | Some("identity") => return Some(body),
        Some("gzip") => flate2::read::GzDecoder::new(&body[..])
            .take(MAX_SCANNED as u64)
            .read_to_end(&mut out)
            .ok()?,
        Some("br") => brotli::Decompressor::new(&body[..], 4096)
            .take(MAX_SCANNED as u64)
            .read_to_end(&mut out)
            .ok()?,
        Some(_) => return None,
    };
    Some(out)
}

/// `text/html; charset=utf-8` and `text/html;charset=UTF-8` are the same.
fn same_content_type(got: &str, want: &str) -> bool {
    let norm = |s: &str| -> Vec<String> {
        s.split(';')
            .map(|p| p.trim().to_ascii_lowercase().replace(' ', ""))
            .filter(|p| !p.is_empty())
            .collect()
    };
    norm(got) == norm(want)
}

/// The same directives, in any order, case and spacing.
fn same_cache_control(got: &str, want: &str) -> bool {
    let norm = |s: &str| -> BTreeSet<String> {
        s.split(',')
            .map(|d| d.trim().to_ascii_lowercase().replace(' ', ""))
            .filter(|d| !d.is_empty())
            .collect()
    };
    norm(got) == norm(want)
}

/// An error and its sources, as one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_compare_as_http_reads_them() {
        assert!(same_content_type(
            "text/html;charset=UTF-8",
            "text/html; charset=utf-8"
        ));
        assert!(!same_content_type("text/plain", "text/css; charset=utf-8"));
        assert!(!same_content_type("text/css", "text/css; charset=utf-8"));
        assert!(same_cache_control(
            "immutable, public,max-age=31536000",
            IMMUTABLE
        ));
        assert!(!same_cache_control("public, max-age=3600", IMMUTABLE));
    }

    #[test]
    fn paths_name_keys_and_directories_their_index() {
        assert_eq!(key_of_path("/").as_deref(), Some("index.html"));
        assert_eq!(key_of_path("").as_deref(), Some("index.html"));
        assert_eq!(key_of_path("blog/").as_deref(), Some("blog/index.html"));
        assert_eq!(key_of_path("/a%20b.html?x=1").as_deref(), Some("a b.html"));
    }

    #[test]
    fn a_page_names_its_assets_by_key_and_absolute_ones_by_path() {
        let html = br#"<link rel="stylesheet" href="../css/a.1.css"><img src="/img/b.png"><a href="https://x.org/">x</a>"#;
        assert_eq!(
            names_in(Syntax::Html, "blog/p.html", html.to_vec(), None),
            vec!["css/a.1.css".to_string(), "/img/b.png".to_string()]
        );
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, b"a { background: url(i.png) }").unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(
            names_in(Syntax::Css, "css/a.css", gz, Some("gzip")),
            vec!["css/i.png".to_string()]
        );
    }
}

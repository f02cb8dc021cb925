//! Every way publish.toml, a flag or an environment variable can be wrong:
//! each exits 2 before anything is written, names the setting, and speaks
//! of TOML values, never of the Rust types they are read into.

use predicates::prelude::PredicateBooleanExt;

use crate::cli::Project;

/// Words that only a Rust type's name would bring into a message.
const INTERNAL: &[&str] = &["variant", "enum", "struct", "Raw", "untagged", "serde"];

/// A config error case: the publish.toml text after `[source] dirs`
/// (unless it replaces the whole file), extra arguments and environment,
/// and what the message must name.
struct Case {
    toml: &'static str,
    whole_file: bool,
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    names: &'static [&'static str],
}

const fn case(toml: &'static str, names: &'static [&'static str]) -> Case {
    Case {
        toml,
        whole_file: false,
        args: &[],
        env: &[],
        names,
    }
}

const fn file(toml: &'static str, names: &'static [&'static str]) -> Case {
    Case {
        toml,
        whole_file: true,
        args: &[],
        env: &[],
        names,
    }
}

const fn flags(args: &'static [&'static str], names: &'static [&'static str]) -> Case {
    Case {
        toml: "",
        whole_file: false,
        args,
        env: &[],
        names,
    }
}

const fn env(env: &'static [(&'static str, &'static str)], names: &'static [&'static str]) -> Case {
    Case {
        toml: "",
        whole_file: false,
        args: &[],
        env,
        names,
    }
}

const CASES: &[Case] = &[
    // [source]
    file("[source]\ndirs = \"site\"\n", &["[source] dirs"]),
    file("[source]\ndirs = [\"site\", 3]\n", &["[source] dirs"]),
    file("[source]\ndirs = []\n", &["[source] dirs"]),
    file("[source]\ndirs = [\"\"]\n", &["[source] dirs"]),
    file("[source]\n", &["[source] dirs"]),
    file("[target]\nurl = \"file://./out\"\n", &["[source]"]),
    file("source = 5\n", &["[source]"]),
    file("source = [\"site\"]\n", &["[source]"]),
    file("[[source]]\ndirs = [\"site\"]\n", &["[source]"]),
    case("include = \"**\"\n", &["[source] include"]),
    case("include = [\"[\"]\n", &["[source] include"]),
    case("exclude = [1]\n", &["[source] exclude"]),
    case("exclude = [\"a/[b\"]\n", &["[source] exclude"]),
    case("max_file_size = -5\n", &["[source] max_file_size"]),
    case("max_file_size = \"lots\"\n", &["[source] max_file_size"]),
    case("max_file_size = \"-5 MiB\"\n", &["[source] max_file_size"]),
    case("max_file_size = 0\n", &["[source] max_file_size"]),
    case("max_file_size = \"0 KiB\"\n", &["[source] max_file_size"]),
    case("max_file_size = 1.5\n", &["[source] max_file_size"]),
    case("max_file_size = true\n", &["[source] max_file_size"]),
    case(
        "allowed_extensions = \"css\"\n",
        &["[source] allowed_extensions"],
    ),
    case(
        "allowed_extensions = []\n",
        &["[source] allowed_extensions"],
    ),
    case(
        "allowed_extensions = [\"\"]\n",
        &["[source] allowed_extensions"],
    ),
    case("max_size = 3\n", &["[source]", "max_size"]),
    // [target]
    case("[target]\nurl = 5\n", &["[target] url"]),
    case(
        "[target]\nurl = \"ftp://x\"\n",
        &["[target] url", "ftp://x"],
    ),
    case("[target]\nurl = \"s3://B\"\n", &["[target] url", "`B`"]),
    case("[target]\nurl = \"file://\"\n", &["[target] url"]),
    case(
        "[target]\nurl = \"s3://bucket/a/../b\"\n",
        &["[target] url"],
    ),
    case("[target]\nregion = 1\n", &["[target] region"]),
    case(
        "[target]\nurl = \"s3://bucket\"\nendpoint = \"not a url\"\n",
        &["[target] endpoint", "not a url"],
    ),
    case(
        "[target]\nurl = \"s3://bucket\"\nendpoint = \"127.0.0.1:3900\"\n",
        &["[target] endpoint"],
    ),
    case(
        "[target]\nurl = \"s3://bucket\"\nendpoint = \"http://:3900\"\n",
        &["[target] endpoint"],
    ),
    case(
        "[target]\nurl = \"s3://bucket\"\nendpoint = \"http://minio:port\"\n",
        &["[target] endpoint"],
    ),
    case("[target]\nendpoint = 5\n", &["[target] endpoint"]),
    case("[target]\npath_style = \"yes\"\n", &["[target] path_style"]),
    case("[target]\nprofile = []\n", &["[target] profile"]),
    case("[target]\nconcurrency = 0\n", &["[target] concurrency"]),
    case("[target]\nconcurrency = -1\n", &["[target] concurrency"]),
    case("[target]\nconcurrency = \"8\"\n", &["[target] concurrency"]),
    case("[target]\nconcurrency = 5000\n", &["[target] concurrency"]),
    case(
        "[target]\nencoding = \"zip\"\n",
        &["[target] encoding", "zip"],
    ),
    case("[target]\nencoding = true\n", &["[target] encoding"]),
    case("[target]\nsidecars = 1\n", &["[target] sidecars"]),
    case(
        "[target]\npublic_read = \"no\"\n",
        &["[target] public_read"],
    ),
    case("[target]\nlock_ttl = \"0s\"\n", &["[target] lock_ttl"]),
    case("[target]\nlock_ttl = \"2s\"\n", &["[target] lock_ttl"]),
    case("[target]\nlock_ttl = \"-5s\"\n", &["[target] lock_ttl"]),
    case("[target]\nlock_ttl = 900\n", &["[target] lock_ttl"]),
    case("[target]\nlock_ttl = \"soon\"\n", &["[target] lock_ttl"]),
    case("[target]\nlock_ttl = 1979-05-27\n", &["[target] lock_ttl"]),
    case(
        "[target]\nlock_ttl = \"99999999999999999999w\"\n",
        &["[target] lock_ttl"],
    ),
    case(
        "[target]\nrequest_timeout = \"0s\"\n",
        &["[target] request_timeout"],
    ),
    case(
        "[target]\nrequest_timeout = 30\n",
        &["[target] request_timeout"],
    ),
    case(
        "[target]\nrequest_timeout = \"999999999999w\"\n",
        &["[target] request_timeout"],
    ),
    case("[target]\nurll = \"file://x\"\n", &["[target]", "urll"]),
    case("target = \"file://x\"\n", &["[source]", "target"]),
    file("target = 5\n[source]\ndirs = [\"site\"]\n", &["[target]"]),
    // [[rules]]
    case("[rules]\nmatch = \"x\"\n", &["[rules]", "[[rules]]"]),
    case(
        "[[rules]]\ncache_control = \"no-store\"\n",
        &["[[rules]]", "match"],
    ),
    case("[[rules]]\nmatch = \"[\"\n", &["[[rules]]", "match"]),
    case("[[rules]]\nmatch = 5\n", &["[[rules]] #1 match"]),
    case(
        "[[rules]]\nmatch = \"x\"\n[[rules]]\nmatch = \"y\"\nfingerprint = \"yes\"\n",
        &["[[rules]]` #2", "fingerprint"],
    ),
    case(
        "[[rules]]\nmatch = \"x\"\nfingerprint = 3\n",
        &["[[rules]] #1 fingerprint"],
    ),
    case(
        "[[rules]]\nmatch = \"x\"\ncache_control = 5\n",
        &["[[rules]] #1 cache_control"],
    ),
    case(
        "[[rules]]\nmatch = \"x\"\ncompress = \"yes\"\n",
        &["[[rules]] #1 compress"],
    ),
    case(
        "[[rules]]\nmatch = \"x\"\ncontent_type = [\"text/css\"]\n",
        &["[[rules]] #1 content_type"],
    ),
    case(
        "[[rules]]\nmatch = \"x\"\nmetadata = 1\n",
        &["[[rules]] #1 metadata"],
    ),
    case(
        "[[rules]]\nmatch = \"x\"\nmetadata = { team = 1 }\n",
        &["[[rules]] #1 metadata.team"],
    ),
    case(
        "[[rules]]\nmatch = \"x\"\nmetadata = { \"bad name\" = \"x\" }\n",
        &["[[rules]]", "bad name"],
    ),
    case("[[rules]]\nmatches = \"x\"\n", &["[[rules]] #1", "matches"]),
    file(
        "rules = [1]\n[source]\ndirs = [\"site\"]\n",
        &["[[rules]] #1"],
    ),
    // [manifest]
    case("[manifest]\nkey = \"../x\"\n", &["[manifest] key"]),
    case("[manifest]\nkey = 5\n", &["[manifest] key"]),
    case("[manifest]\ndjango = \"yes\"\n", &["[manifest] django"]),
    case("[manifest]\nlocal = \"s.json\"\n", &["[manifest] local"]),
    case(
        "[manifest]\nkey = \"staticfiles.json\"\ndjango = true\n",
        &["[manifest] key"],
    ),
    // [prune]
    case("[prune]\nkeep = -1\n", &["[prune] keep"]),
    case("[prune]\nkeep = \"ten\"\n", &["[prune] keep"]),
    case("[prune]\nmin_age = \"soon\"\n", &["[prune] min_age"]),
    case("[prune]\nmin_age = 7\n", &["[prune] min_age"]),
    // [rewrite]
    case("[rewrite]\nstrict = \"yes\"\n", &["[rewrite] strict"]),
    case("[rewrite]\nenabled = 1\n", &["[rewrite] enabled"]),
    case("[rewrite]\ncss = true\n", &["[rewrite]", "css"]),
    // [cdn]
    case("[cdn]\ndistribution_id = \"E1\"\n", &["[cdn] provider"]),
    case(
        "[cdn]\nprovider = \"fastly\"\n",
        &["[cdn] provider", "fastly"],
    ),
    case("[cdn]\nprovider = \"cloudfront\"\n", &["distribution_id"]),
    case(
        "[cdn]\nprovider = \"cloudfront\"\ndistribution_id = \"E/1\"\n",
        &["[cdn] distribution_id"],
    ),
    case(
        "[cdn]\nprovider = \"cloudfront\"\ndistribution_id = \"E1\"\nendpoint = \"localhost:5000\"\n",
        &["[cdn] endpoint"],
    ),
    case(
        "[cdn]\nprovider = \"command\"\ncommand = [\"x\"]\nmax_paths = 0\n",
        &["[cdn] max_paths"],
    ),
    case(
        "[cdn]\nprovider = \"command\"\ncommand = [\"x\"]\nmax_paths = -1\n",
        &["[cdn] max_paths"],
    ),
    case(
        "[cdn]\nprovider = \"command\"\ncommand = \"purge\"\n",
        &["[cdn] command"],
    ),
    case(
        "[cdn]\nprovider = \"command\"\ncommand = []\n",
        &["command"],
    ),
    case(
        "[cdn]\nprovider = \"command\"\ncommand = [\"x\"]\npath_prefix = \"a/../b\"\n",
        &["[cdn] path_prefix"],
    ),
    file("cdn = 5\n[source]\ndirs = [\"site\"]\n", &["[cdn]"]),
    // [env.NAME]
    file("env = 4\n[source]\ndirs = [\"site\"]\n", &["[env]"]),
    case("[env]\nstaging = 5\n", &["[env.staging]"]),
    case("[env.staging]\nsource = 1\n", &["[env.staging]", "source"]),
    case("[env.staging]\ntarget = []\n", &["[env.staging.target]"]),
    case(
        "[env.staging.target]\nlock_ttl = \"1s\"\n",
        &["[env.staging.target] lock_ttl"],
    ),
    case(
        "[env.staging.target]\nlock_ttl = 5\n",
        &["[env.staging.target] lock_ttl"],
    ),
    case(
        "[env.staging.target]\nendpoint = \"nope\"\n",
        &["[env.staging.target] endpoint"],
    ),
    case(
        "[cdn]\nprovider = \"none\"\n[env.staging.cdn]\nendpoint = \"nope\"\n",
        &["[env.staging.cdn] endpoint"],
    ),
    case(
        "[env.staging.target]\nurl = \"ftp://x\"\n",
        &["[env.staging.target] url"],
    ),
    case(
        "[env.staging.target]\nconcurrency = -3\n",
        &["[env.staging.target] concurrency"],
    ),
    case(
        "[env.staging.target]\nrequest_timeout = \"0s\"\n",
        &["[env.staging.target] request_timeout"],
    ),
    case(
        "[env.staging.prune]\nmin_age = \"soon\"\n",
        &["[env.staging.prune] min_age"],
    ),
    case(
        "[env.staging.manifest]\nkey = \"/abs\"\n",
        &["[env.staging.manifest] key"],
    ),
    case(
        "[env.staging.target]\nbukket = 1\n",
        &["[env.staging.target]", "bukket"],
    ),
    // Flags and environment variables over the file.
    flags(&["--target", "ftp://x"], &["--target", "ftp://x"]),
    flags(&["--target", "s3://B/site"], &["--target", "`B`"]),
    env(&[("ASSETPUB_TARGET", "ftp://x")], &["ASSETPUB_TARGET"]),
    flags(&["--env", "nope"], &["--env", "nope"]),
    env(&[("ASSETPUB_ENV", "nope")], &["ASSETPUB_ENV", "nope"]),
    flags(&["--config", "missing.toml"], &["missing.toml"]),
    env(&[("ASSETPUB_CONFIG", "missing.toml")], &["missing.toml"]),
    // Not TOML: the line and column, and the key when it is the culprit.
    file("[source]\ndirs = [\"site\"\n", &["publish.toml:2:"]),
    file(
        "[source]\ndirs = [\"site\"]\ndirs = [\"x\"]\n",
        &["publish.toml:3:1", "dirs"],
    ),
    file(
        "foo = 1\n[source]\ndirs = [\"site\"]\n",
        &["publish.toml:1:1", "foo"],
    ),
];

#[test]
fn every_config_error_exits_2_names_the_setting_and_no_rust_type() {
    let p = Project::new();
    let mut failures = Vec::new();
    for c in CASES {
        let text = if c.whole_file {
            c.toml.to_string()
        } else {
            format!("[source]\ndirs = [\"site\"]\n{}", c.toml)
        };
        p.config(&text);
        let mut cmd = p.std_cmd();
        cmd.args(c.args).arg("plan").arg("--json");
        for (k, v) in c.env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run assetpub");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let what = format!("{:?} {:?} {:?}", c.toml, c.args, c.env);
        if out.status.code() != Some(2) {
            failures.push(format!("{what}: exit {:?}: {stderr}", out.status.code()));
            continue;
        }
        // One document on stdout, the same message as on stderr.
        let doc: serde_json::Value = match serde_json::from_slice(&out.stdout) {
            Ok(d) => d,
            Err(e) => {
                failures.push(format!("{what}: no JSON on stdout ({e}): {stderr}"));
                continue;
            }
        };
        let message = doc["error"]["message"].as_str().unwrap_or_default();
        if doc["error"]["exit_code"] != 2
            || doc["error"]["kind"] != "config"
            || !stderr.contains(&format!("error: {message}\n"))
        {
            failures.push(format!("{what}: document {doc} vs stderr {stderr}"));
        }
        for name in c.names {
            if !message.contains(name) {
                failures.push(format!("{what}: does not name `{name}`: {message}"));
            }
        }
        for word in INTERNAL {
            let found = if *word == "Raw" {
                message.contains(word)
            } else {
                message.to_ascii_lowercase().contains(word)
            };
            if found {
                failures.push(format!("{what}: says `{word}`: {message}"));
            }
        }
        if message.contains('\n') {
            failures.push(format!("{what}: more than one line: {message}"));
        }
    }
    assert!(!p.path("published").exists(), "nothing published");
    assert!(!p.path(".assetpub").exists(), "no state DB");
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

/// `--min-age` on the command line is checked like `[prune] min_age`.
#[test]
fn a_bad_min_age_flag_names_the_flag() {
    let p = Project::new();
    p.cmd()
        .args(["prune", "--min-age", "soon"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--min-age"));
    assert!(!p.path("published").exists());
}

/// Zero or less, where that makes no sense, is refused with the setting's
/// name, before anything is written; 0 stays allowed where it means
/// something (`[prune] min_age = "0s"`: no age protection).
#[test]
fn zero_durations_and_sizes_are_refused_where_they_make_no_sense() {
    let p = Project::new();
    for (body, setting) in [
        (
            "[target]\nlock_ttl = \"0s\"\n",
            "`[target] lock_ttl = \"0s\"`",
        ),
        (
            "[target]\nlock_ttl = \"2s\"\n",
            "`[target] lock_ttl = \"2s\"`",
        ),
        (
            "[env.ci.target]\nlock_ttl = \"0m\"\n",
            "`[env.ci.target] lock_ttl = \"0m\"`",
        ),
        (
            "[target]\nrequest_timeout = \"0s\"\n",
            "`[target] request_timeout = \"0s\"`",
        ),
        ("max_file_size = 0\n", "`[source] max_file_size = 0`"),
        (
            "max_file_size = \"0 MiB\"\n",
            "`[source] max_file_size = \"0 MiB\"`",
        ),
    ] {
        p.config(&format!("[source]\ndirs = [\"site\"]\n{body}"));
        p.cmd()
            .arg("publish")
            .assert()
            .code(2)
            .stderr(predicates::str::contains(setting));
        assert!(!p.path("published").exists(), "{body}: nothing published");
        assert!(!p.path(".assetpub").exists(), "{body}: no state DB");
    }
    // The smallest lock TTL that is renewed in time, and no age protection
    // for prune, are fine.
    p.config(
        "[source]\ndirs = [\"site\"]\n[target]\nlock_ttl = \"3s\"\n[prune]\nmin_age = \"0s\"\n",
    );
    p.cmd().arg("publish").assert().success();
}

/// An endpoint that is not an http(s) URL with a host is a configuration
/// error naming the setting (it used to be "cannot reach not a url", exit
/// 1), found before the state DB or the store is touched.
#[test]
fn an_endpoint_that_is_not_a_url_is_a_config_error_naming_the_setting() {
    let p = Project::new();
    for (body, setting) in [
        (
            "[target]\nurl = \"s3://my-bucket/site\"\nendpoint = \"not a url\"\n",
            "`[target] endpoint = \"not a url\"`",
        ),
        (
            "[env.staging.target]\nurl = \"s3://my-bucket/site\"\nendpoint = \"localhost:3900\"\n",
            "`[env.staging.target] endpoint = \"localhost:3900\"`",
        ),
        (
            "[target]\nurl = \"s3://my-bucket/site\"\n[cdn]\nprovider = \"cloudfront\"\ndistribution_id = \"E1\"\nendpoint = \"http//cloudfront\"\n",
            "`[cdn] endpoint = \"http//cloudfront\"`",
        ),
        (
            "[target]\nurl = \"s3://my-bucket/site\"\n[env.prod.cdn]\nprovider = \"cloudfront\"\ndistribution_id = \"E1\"\nendpoint = \"ftp://x\"\n",
            "`[env.prod.cdn] endpoint = \"ftp://x\"`",
        ),
    ] {
        p.config(&format!("[source]\ndirs = [\"site\"]\n{body}"));
        for args in [&["publish"][..], &["--env", "staging", "publish"][..]] {
            if !body.contains("staging") && args.len() > 1 {
                continue;
            }
            p.cmd()
                .args(args)
                .env("AWS_ACCESS_KEY_ID", "x")
                .env("AWS_SECRET_ACCESS_KEY", "y")
                .env("AWS_REGION", "us-east-1")
                .assert()
                .code(2)
                .stderr(predicates::str::contains(setting))
                .stderr(predicates::str::contains("cannot reach").not());
        }
        assert!(!p.path(".assetpub").exists(), "{body}: no state DB");
    }
    // Credentials in the URL are refused without being printed.
    p.config("[source]\ndirs = [\"site\"]\n[target]\nurl = \"s3://my-bucket\"\nendpoint = \"http://key:s3cret@127.0.0.1:9\"\n");
    let out = p.cmd().arg("plan").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("[target] endpoint") && !err.contains("s3cret"),
        "{err}"
    );
}

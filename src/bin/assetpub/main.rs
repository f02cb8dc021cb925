//! The `assetpub` binary: parse flags, run the command, print, exit with the
//! code of the design contract. Everything else lives in the library.

mod progress;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

use assetpub::cli::Cli;
use assetpub::report::Reporter;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let reporter: Arc<dyn Reporter> = Arc::new(progress::TermReporter::new(
        cli.quiet,
        cli.verbose,
        std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    ));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            let e = assetpub::Error::Runtime(format!("cannot start the async runtime: {e}"));
            return report_error(&e, cli.json);
        }
    };
    let result = runtime.block_on(assetpub::commands::run(&cli, reporter.clone()));
    drop(reporter);
    match result {
        Ok(out) => {
            let text = if cli.json {
                let mut s =
                    serde_json::to_string_pretty(&out.json).expect("JSON output serializes");
                s.push('\n');
                s
            } else {
                out.human
            };
            print_stdout(&text);
            match out.error {
                // The JSON document already printed is the report, which
                // says what failed; the error goes to stderr only.
                Some(e) => report_error(&e, false),
                None => ExitCode::from(out.exit_code as u8),
            }
        }
        Err(e) => report_error(&e, cli.json),
    }
}

/// The `error:` and `hint:` lines on stderr and, with `--json`, the same as
/// one JSON document on stdout, so that a script reading stdout always gets
/// a document.
fn report_error(e: &assetpub::Error, json: bool) -> ExitCode {
    eprintln!("error: {e}");
    if let Some(hint) = e.hint() {
        eprintln!("hint: {hint}");
    }
    if json {
        print_error_json(e);
    }
    ExitCode::from(e.exit_code() as u8)
}

/// `{"error": {"kind": ..., "message": ..., "hint": ..., "exit_code": N}}`,
/// the fields in that order.
fn print_error_json(e: &assetpub::Error) {
    #[derive(serde::Serialize)]
    struct Document {
        error: assetpub::error::ErrorDetails,
    }
    let doc = Document { error: e.details() };
    let mut s = serde_json::to_string_pretty(&doc).expect("JSON output serializes");
    s.push('\n');
    print_stdout(&s);
}

/// A command line clap refused. `--help` and `--version` are not errors;
/// the rest exit 2 with clap's message on stderr and, when `--json` is
/// anywhere on the command line, the error document on stdout.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) || !json_requested() {
        e.exit();
    }
    let _ = e.print();
    let text = e.render().to_string();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let message = lines
        .next()
        .map(|l| l.strip_prefix("error: ").unwrap_or(l).to_string())
        .unwrap_or_else(|| "invalid command line".to_string());
    let rest: Vec<&str> = lines.collect();
    let tips: Vec<&str> = rest
        .iter()
        .filter_map(|l| l.strip_prefix("tip: "))
        .collect();
    // clap's tips, else its usage line, else its last line ("For more
    // information, try '--help'.").
    let hint = if tips.is_empty() {
        rest.iter()
            .find(|l| l.starts_with("Usage: "))
            .or(rest.last())
            .map(|l| l.to_string())
            .unwrap_or_else(|| "run `assetpub --help`".to_string())
    } else {
        tips.join("; ")
    };
    let e = assetpub::Error::Config(message).with_hint(hint);
    print_error_json(&e);
    ExitCode::from(e.exit_code() as u8)
}

/// `--json` among the arguments, before any `--`.
fn json_requested() -> bool {
    std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json" || a.to_str().is_some_and(|a| a.starts_with("--json=")))
}

/// A closed pipe (`assetpub plan | head`) is not an error.
fn print_stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => {
            eprintln!("error: cannot write to stdout: {e}");
            std::process::exit(1);
        }
    }
}

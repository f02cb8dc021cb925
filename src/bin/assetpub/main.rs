//! The `assetpub` binary: parse flags, run the command, print, exit with the
//! code of the design contract. Everything else lives in the library.

mod progress;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

use assetpub::cli::{Cli, Command};
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
    let (result, interrupted) = runtime.block_on(supervise(&cli, reporter.clone()));
    drop(reporter);
    if interrupted.is_some() {
        // Work left on the blocking pool (hashing, compressing) is not
        // waited for.
        runtime.shutdown_background();
    }
    let result = match (result, interrupted) {
        (Some(result), None) => result,
        // The switch had begun, so the run was let finish: its report (or
        // error) first, then the line that says so.
        (Some(result), Some(i)) if !i.dropped => {
            finish(result, &cli);
            eprintln!(
                "error: {} after the switch to the new deploy had begun, so the run went on to the end (see above)",
                i.what()
            );
            return ExitCode::from(i.exit_code() as u8);
        }
        // Stopped before any switch: the command was dropped.
        (_, Some(i)) => return report_error(&i.error(&cli.command), cli.json),
        (None, None) => unreachable!("a command is dropped only when interrupted"),
    };
    finish(result, &cli)
}

/// Prints what the command produced and returns its exit code.
fn finish(result: assetpub::Result<assetpub::commands::Output>, cli: &Cli) -> ExitCode {
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
            for e in &out.earlier_errors {
                report_error(e, false);
            }
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

/// The signal that interrupted a run.
#[derive(Clone, Copy)]
enum Signal {
    Int,
    Term,
}

impl Signal {
    fn name(self) -> &'static str {
        match self {
            Signal::Int => "SIGINT",
            Signal::Term => "SIGTERM",
        }
    }

    fn number(self) -> i32 {
        match self {
            Signal::Int => 2,
            Signal::Term => 15,
        }
    }
}

struct Interrupted {
    signal: Signal,
    /// Whether the command was dropped (not let finish).
    dropped: bool,
    /// What became of the deploy lock, when the command was dropped.
    lock: Option<String>,
}

impl Interrupted {
    fn what(&self) -> String {
        format!("interrupted by {}", self.signal.name())
    }

    fn exit_code(&self) -> i32 {
        128 + self.signal.number()
    }

    /// The one line for a run stopped before any switch began.
    fn error(&self, command: &Command) -> assetpub::Error {
        let lock = self.lock.as_deref().unwrap_or("");
        let message = match command {
            Command::Publish { dry_run: false, .. } => format!(
                "{}: nothing went live, the site still serves the deploy it served before{lock}; run `assetpub publish` again to resume (what was uploaded is not sent again)",
                self.what()
            ),
            Command::Rollback { .. } => format!(
                "{}: the rollback did not happen, the site still serves the deploy it served before{lock}; run `assetpub rollback` again",
                self.what()
            ),
            Command::Prune { dry_run: false, .. } => format!(
                "{}: prune stopped part way, the live deploy untouched{lock}; run `assetpub prune` again to finish",
                self.what()
            ),
            _ => format!("{}: stopped before it finished{lock}", self.what()),
        };
        assetpub::Error::Interrupted {
            signal: self.signal.number(),
            message,
        }
    }
}

/// Runs the command and watches for SIGINT and SIGTERM. On the first one,
/// no run begins to switch the site any more; a run that has not begun is
/// dropped where it stands (no new request starts), and the deploy locks it
/// held are released; a run that has begun its switch is let finish, since
/// the site already serves what it began. A second signal exits at once.
/// Returns the command's result (None when it was dropped), and the
/// interrupt if there was one.
async fn supervise(
    cli: &Cli,
    reporter: Arc<dyn Reporter>,
) -> (
    Option<assetpub::Result<assetpub::commands::Output>>,
    Option<Interrupted>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut work = Box::pin(assetpub::commands::run(cli, reporter));
    let Ok((mut int, mut term)) =
        signal(SignalKind::interrupt()).and_then(|int| Ok((int, signal(SignalKind::terminate())?)))
    else {
        return (Some(work.await), None);
    };
    // The watcher runs on the runtime's workers: it sees a second signal
    // even while the command keeps this thread busy.
    let (first_tx, first_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let first = tokio::select! {
            _ = int.recv() => Signal::Int,
            _ = term.recv() => Signal::Term,
        };
        let switch_begun = assetpub::commands::interrupt();
        let _ = first_tx.send((first, switch_begun));
        let again = tokio::select! {
            _ = int.recv() => Signal::Int,
            _ = term.recv() => Signal::Term,
        };
        eprintln!(
            "error: interrupted again by {}: stopped at once; a deploy lock still held is taken over once it expires (`lock_ttl`), or at once by a run on this host",
            again.name()
        );
        std::process::exit(128 + again.number());
    });
    let (signal, switch_begun) = tokio::select! {
        r = &mut work => return (Some(r), None),
        first = first_rx => match first {
            Ok(first) => first,
            Err(_) => return (Some(work.await), None),
        },
    };
    if switch_begun {
        return (
            Some(work.await),
            Some(Interrupted {
                signal,
                dropped: false,
                lock: None,
            }),
        );
    }
    // Dropped where it stands: every request it had in flight with it.
    drop(work);
    let lock = match tokio::time::timeout(
        Duration::from_secs(30),
        assetpub::commands::release_held(),
    )
    .await
    {
        Ok(Ok(0)) => None,
        Ok(Ok(_)) => Some(", and the deploy lock was released".to_string()),
        Ok(Err(e)) => Some(format!(
            ", and the deploy lock could not be released ({e}): it is taken over once it expires (`lock_ttl`)"
        )),
        Err(_) => Some(
            ", and the deploy lock could not be released in 30s: it is taken over once it expires (`lock_ttl`)".to_string(),
        ),
    };
    (
        None,
        Some(Interrupted {
            signal,
            dropped: true,
            lock,
        }),
    )
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

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
    let cli = Cli::parse();
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
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
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
                Some(e) => report_error(&e),
                None => ExitCode::from(out.exit_code as u8),
            }
        }
        Err(e) => report_error(&e),
    }
}

fn report_error(e: &assetpub::Error) -> ExitCode {
    eprintln!("error: {e}");
    if let Some(hint) = e.hint() {
        eprintln!("hint: {hint}");
    }
    ExitCode::from(e.exit_code() as u8)
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

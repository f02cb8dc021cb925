//! Progress for people: indicatif bars on a terminal, a plain line every few
//! seconds otherwise, nothing under `-q`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use assetpub::report::{Phase, Reporter};

const PLAIN_EVERY: Duration = Duration::from_secs(5);

pub struct TermReporter {
    quiet: bool,
    verbose: u8,
    terminal: bool,
    bar: Mutex<Option<ProgressBar>>,
    plain: Mutex<Plain>,
    items: AtomicU64,
    bytes: AtomicU64,
}

struct Plain {
    phase: Option<Phase>,
    total_items: u64,
    total_bytes: u64,
    started: Instant,
    last: Instant,
}

impl TermReporter {
    pub fn new(quiet: bool, verbose: u8, terminal: bool) -> TermReporter {
        TermReporter {
            quiet,
            verbose,
            terminal,
            bar: Mutex::new(None),
            plain: Mutex::new(Plain {
                phase: None,
                total_items: 0,
                total_bytes: 0,
                started: Instant::now(),
                last: Instant::now(),
            }),
            items: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        }
    }

    fn plain_tick(&self, force: bool) {
        let Ok(mut p) = self.plain.lock() else { return };
        let Some(phase) = p.phase else { return };
        if !force && p.last.elapsed() < PLAIN_EVERY {
            return;
        }
        p.last = Instant::now();
        let items = self.items.load(Ordering::Relaxed);
        let bytes = self.bytes.load(Ordering::Relaxed);
        let secs = p.started.elapsed().as_secs_f64().max(0.001);
        eprintln!(
            "{}: {items}/{} files, {}/{} ({}/s)",
            phase.label(),
            p.total_items,
            assetpub::util::human_bytes(bytes),
            assetpub::util::human_bytes(p.total_bytes),
            assetpub::util::human_bytes((bytes as f64 / secs) as u64)
        );
    }
}

impl Reporter for TermReporter {
    fn terminal_width(&self) -> Option<usize> {
        console::Term::stdout()
            .size_checked()
            .map(|(_, width)| usize::from(width))
    }

    fn warn(&self, message: &str) {
        let line = format!("warning: {message}");
        match self.bar.lock().ok().and_then(|b| b.clone()) {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    fn note(&self, message: &str) {
        if self.quiet {
            return;
        }
        let line = format!("note: {message}");
        match self.bar.lock().ok().and_then(|b| b.clone()) {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    fn info(&self, message: &str) {
        if self.verbose > 0 && !self.quiet {
            eprintln!("note: {message}");
        }
    }

    fn phase_start(&self, phase: Phase, items: u64, bytes: u64) {
        self.items.store(0, Ordering::Relaxed);
        self.bytes.store(0, Ordering::Relaxed);
        if self.quiet {
            return;
        }
        if self.terminal {
            let bar = ProgressBar::with_draw_target(Some(bytes), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>11} [{bar:30}] {bytes}/{total_bytes} {msg} {binary_bytes_per_sec} eta {eta}",
                )
                .expect("valid progress template")
                .progress_chars("=> "),
            );
            bar.set_prefix(phase.label());
            bar.set_message(format!("0/{items} files"));
            bar.enable_steady_tick(Duration::from_millis(200));
            if let Ok(mut b) = self.bar.lock() {
                *b = Some(bar);
            }
        } else if let Ok(mut p) = self.plain.lock() {
            let now = Instant::now();
            *p = Plain {
                phase: Some(phase),
                total_items: items,
                total_bytes: bytes,
                started: now,
                last: now,
            };
        }
    }

    fn item_done(&self, phase: Phase, bytes: u64) {
        let items = self.items.fetch_add(1, Ordering::Relaxed) + 1;
        // Uploads count their bytes as they go (bytes_progress).
        if phase != Phase::Upload {
            self.bytes.fetch_add(bytes, Ordering::Relaxed);
        }
        if self.quiet {
            return;
        }
        if let Some(bar) = self.bar.lock().ok().and_then(|b| b.clone()) {
            if phase != Phase::Upload {
                bar.inc(bytes);
            }
            let total = bar.message();
            let total = total.split('/').nth(1).unwrap_or("").to_string();
            bar.set_message(format!("{items}/{total}"));
        } else {
            self.plain_tick(false);
        }
    }

    fn bytes_progress(&self, _phase: Phase, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        if self.quiet {
            return;
        }
        if let Some(bar) = self.bar.lock().ok().and_then(|b| b.clone()) {
            bar.inc(bytes);
        }
    }

    fn phase_end(&self, _phase: Phase) {
        if self.quiet {
            return;
        }
        if let Some(bar) = self.bar.lock().ok().and_then(|mut b| b.take()) {
            bar.finish_and_clear();
        } else if self.verbose > 0 {
            self.plain_tick(true);
        }
        if let Ok(mut p) = self.plain.lock() {
            p.phase = None;
        }
    }
}

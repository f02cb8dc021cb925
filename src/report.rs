//! How the library tells a person what is happening. The binary implements
//! `Reporter` with progress bars; tests and `--json` runs use quieter ones.

/// A stage of the pipeline that reports progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Hash,
    Compress,
    Upload,
}

impl Phase {
    pub fn label(self) -> &'static str {
        match self {
            Phase::Hash => "hashing",
            Phase::Compress => "compressing",
            Phase::Upload => "uploading",
        }
    }
}

pub trait Reporter: Send + Sync {
    /// Something the user should know that does not stop the run.
    fn warn(&self, message: &str);
    /// Something the user should know that is not a problem (shown unless
    /// quiet).
    fn note(&self, _message: &str) {}
    /// A step worth a line in verbose mode.
    fn info(&self, _message: &str) {}
    fn phase_start(&self, _phase: Phase, _items: u64, _bytes: u64) {}
    fn item_done(&self, _phase: Phase, _bytes: u64) {}
    fn bytes_progress(&self, _phase: Phase, _bytes: u64) {}
    fn phase_end(&self, _phase: Phase) {}
    /// The width of the terminal stdout is, if it is one: long lines of
    /// human output are cut to it.
    fn terminal_width(&self) -> Option<usize> {
        None
    }
}

/// Warnings to stderr, nothing else.
pub struct PlainReporter;

impl Reporter for PlainReporter {
    fn warn(&self, message: &str) {
        eprintln!("warning: {message}");
    }
}

/// Collects warnings, for tests.
#[derive(Default)]
pub struct CollectingReporter {
    pub warnings: std::sync::Mutex<Vec<String>>,
}

impl Reporter for CollectingReporter {
    fn warn(&self, message: &str) {
        if let Ok(mut w) = self.warnings.lock() {
            w.push(message.to_string());
        }
    }
}

/// Passes everything on to another reporter and keeps the warnings, for
/// work whose result is cached and whose warnings are said again when it is
/// reused.
pub struct Recording<'a> {
    inner: &'a dyn Reporter,
    pub warnings: std::sync::Mutex<Vec<String>>,
}

impl<'a> Recording<'a> {
    pub fn new(inner: &'a dyn Reporter) -> Recording<'a> {
        Recording {
            inner,
            warnings: std::sync::Mutex::new(Vec::new()),
        }
    }

    pub fn into_warnings(self) -> Vec<String> {
        self.warnings.into_inner().unwrap_or_default()
    }
}

impl Reporter for Recording<'_> {
    fn warn(&self, message: &str) {
        if let Ok(mut w) = self.warnings.lock() {
            w.push(message.to_string());
        }
        self.inner.warn(message);
    }
    fn note(&self, message: &str) {
        self.inner.note(message);
    }
    fn info(&self, message: &str) {
        self.inner.info(message);
    }
    fn phase_start(&self, phase: Phase, items: u64, bytes: u64) {
        self.inner.phase_start(phase, items, bytes);
    }
    fn item_done(&self, phase: Phase, bytes: u64) {
        self.inner.item_done(phase, bytes);
    }
    fn bytes_progress(&self, phase: Phase, bytes: u64) {
        self.inner.bytes_progress(phase, bytes);
    }
    fn phase_end(&self, phase: Phase) {
        self.inner.phase_end(phase);
    }
}

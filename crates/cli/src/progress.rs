//! The progress bar on stderr: files, bytes, findings and rate.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Progress drawn with indicatif when stderr is a terminal; counting only otherwise.
pub struct Bar {
    drawn: Option<ProgressBar>,
    files: AtomicU64,
    findings: AtomicU64,
}

impl Bar {
    pub fn new(visible: bool) -> Self {
        let bar = visible.then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(8));
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {elapsed} {msg} {binary_bytes} ({binary_bytes_per_sec})",
                )
                .expect("the progress template is a fixed, valid string"),
            );
            bar.enable_steady_tick(Duration::from_millis(125));
            bar
        });
        Self { drawn: bar, files: AtomicU64::new(0), findings: AtomicU64::new(0) }
    }

    /// Runs `f` with the bar hidden, so lines printed to the terminal are not garbled.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.drawn {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.drawn {
            bar.finish_and_clear();
        }
    }

    fn update(&self) {
        if let Some(bar) = &self.drawn {
            bar.set_message(format!(
                "{} files, {} findings,",
                self.files.load(Ordering::Relaxed),
                self.findings.load(Ordering::Relaxed)
            ));
        }
    }
}

impl custody_scan::Progress for Bar {
    fn bytes(&self, bytes: u64) {
        if let Some(bar) = &self.drawn {
            bar.inc(bytes);
        }
    }

    fn file_done(&self, findings: u64) {
        self.files.fetch_add(1, Ordering::Relaxed);
        self.findings.fetch_add(findings, Ordering::Relaxed);
        self.update();
    }

    fn file_skipped(&self) {
        self.files.fetch_add(1, Ordering::Relaxed);
        self.update();
    }
}

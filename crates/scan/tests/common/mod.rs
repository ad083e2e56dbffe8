//! Shared by the scan tests: a sink that keeps everything.

use std::io;

use custody_scan::{Finding, Sink, Skip};

/// Keeps every finding and every skip.
pub struct Collect(pub Vec<Finding>, pub Vec<Skip>);

impl Sink for Collect {
    fn finding(&mut self, f: &Finding) -> io::Result<()> {
        self.0.push(f.clone());
        Ok(())
    }
    fn skipped(&mut self, s: &Skip) -> io::Result<()> {
        self.1.push(s.clone());
        Ok(())
    }
}

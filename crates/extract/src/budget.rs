//! Defensive limits and the budget one file spends against them.

use std::cell::Cell;
use std::io::{self, Read};
use std::time::{Duration, Instant};

use crate::Skipped;

/// Limits on what one file may cost. The defaults read every ordinary business file and
/// refuse bombs quickly.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Containers inside containers (a zip in a zip is depth 2).
    pub max_depth: u32,
    /// Members in one file, all levels together.
    pub max_members: u64,
    /// Bytes one member may unpack to (and one document may have, to be read whole).
    pub max_unpacked: u64,
    /// Bytes one file may unpack to, all members together (64 × `max_unpacked` by default).
    pub max_total: u64,
    /// Unpacked bytes per byte of the file, past [`Limits::RATIO_FLOOR`] unpacked.
    pub max_ratio: u64,
    /// Time one file may take.
    pub max_time: Duration,
    /// Where the parsers known to misbehave (PDF, legacy Excel) run.
    pub isolation: crate::Isolation,
}

impl Limits {
    /// A stable text of every limit, for keys such as the scan cache's. Where parsers run
    /// is named, not the program (a moved binary finds the same).
    pub fn fingerprint(&self) -> String {
        let isolation = match self.isolation {
            crate::Isolation::Thread => "thread",
            crate::Isolation::Child { .. } => "child",
        };
        format!(
            "depth={};members={};unpacked={};total={};ratio={};ms={};isolation={isolation}",
            self.max_depth,
            self.max_members,
            self.max_unpacked,
            self.max_total,
            self.max_ratio,
            self.max_time.as_millis()
        )
    }

    /// Below this many unpacked bytes the ratio is not checked (tiny archives of
    /// repetitive text compress extremely well and are harmless).
    pub const RATIO_FLOOR: u64 = 16 * 1024 * 1024;
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: 5,
            max_members: 100_000,
            max_unpacked: 64 * 1024 * 1024,
            max_total: 64 * 64 * 1024 * 1024,
            max_ratio: 200,
            max_time: Duration::from_mins(2),
            isolation: crate::Isolation::Thread,
        }
    }
}

/// What one file has spent.
pub(crate) struct Budget {
    pub limits: Limits,
    file_size: u64,
    deadline: Instant,
    unpacked: Cell<u64>,
    members: Cell<u64>,
    /// A limit for the whole file was reached: everything stops.
    fatal: Cell<Option<Skipped>>,
    /// The member being read reached its own limit.
    member_trip: Cell<Option<Skipped>>,
}

impl Budget {
    pub fn new(limits: &Limits, file_size: u64) -> Self {
        Self {
            limits: limits.clone(),
            file_size: file_size.max(1),
            deadline: Instant::now() + limits.max_time,
            unpacked: Cell::new(0),
            members: Cell::new(0),
            fatal: Cell::new(None),
            member_trip: Cell::new(None),
        }
    }

    pub fn fatal(&self) -> Option<Skipped> {
        let f = self.fatal.take();
        self.fatal.set(f.clone());
        f
    }

    /// Ends the file for `why` (the first reason stands).
    pub fn trip(&self, why: Skipped) -> Skipped {
        if self.fatal().is_none() {
            self.fatal.set(Some(why.clone()));
        }
        why
    }

    pub fn take_member_trip(&self) -> Option<Skipped> {
        self.member_trip.take()
    }

    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    pub fn check_time(&self) -> Result<(), Skipped> {
        if let Some(f) = self.fatal() {
            return Err(f);
        }
        if Instant::now() > self.deadline {
            return Err(self.trip(self.timed_out()));
        }
        Ok(())
    }

    pub fn timed_out(&self) -> Skipped {
        Skipped::TimedOut { seconds: self.limits.max_time.as_secs() }
    }

    /// Counts a member; past the limit the whole file stops.
    pub fn count_member(&self) -> Result<(), Skipped> {
        let n = self.members.get() + 1;
        self.members.set(n);
        if n > self.limits.max_members {
            return Err(self.trip(Skipped::TooManyMembers { limit: self.limits.max_members }));
        }
        self.check_time()
    }

    /// Whether an archive declaring `declared` unpacked bytes in `compressed` bytes of
    /// this file is a bomb by its own directory (refused before inflating anything).
    pub fn declared_bomb(&self, declared: u64) -> bool {
        declared > Limits::RATIO_FLOOR && declared / self.file_size > self.limits.max_ratio
    }

    /// Records `n` more unpacked bytes; errors past a file-wide limit.
    fn spend(&self, n: u64) -> Result<(), Skipped> {
        let total = self.unpacked.get() + n;
        self.unpacked.set(total);
        if total > self.limits.max_total {
            return Err(self.trip(Skipped::TooLarge { limit: self.limits.max_total }));
        }
        if total > Limits::RATIO_FLOOR && total / self.file_size > self.limits.max_ratio {
            return Err(self.trip(Skipped::Bomb));
        }
        if Instant::now() > self.deadline {
            return Err(self.trip(self.timed_out()));
        }
        Ok(())
    }
}

/// A reader that spends the budget: at most `max` bytes from this member, and the
/// file-wide limits on every read.
pub(crate) struct Limited<'b, R> {
    inner: R,
    budget: &'b Budget,
    read: u64,
    max: u64,
    /// The member's compressed size, when its container says: its own ratio is checked.
    compressed: Option<u64>,
}

impl<'b, R: Read> Limited<'b, R> {
    pub fn new(inner: R, budget: &'b Budget, max: u64, compressed: Option<u64>) -> Self {
        Self { inner, budget, read: 0, max, compressed }
    }
}

impl<R: Read> Read for Limited<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.max {
            self.budget.member_trip.set(Some(Skipped::TooLarge { limit: self.max }));
            return Err(io::Error::other("member limit"));
        }
        if let Some(c) = self.compressed
            && self.read > Limits::RATIO_FLOOR
            && self.read / c.max(1) > self.budget.limits.max_ratio
        {
            self.budget.member_trip.set(Some(Skipped::Bomb));
            return Err(io::Error::other("member ratio"));
        }
        self.budget.spend(n as u64).map_err(|_| io::Error::other("file limit"))?;
        Ok(n)
    }
}

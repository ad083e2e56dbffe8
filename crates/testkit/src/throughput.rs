//! The throughput profile: a large, sparse corpus for scanner speed tests.
//!
//! Most bytes are ordinary log lines, sales exports, event streams and staff notes; roughly one
//! planted value per few kilobytes. The byte budget is split by category (big logs ~40%,
//! medium logs ~10%, CSV ~20%, NDJSON ~10%, notes ~15%, mail ~5%), and file sizes are drawn
//! log-uniformly inside each category's range, so there are a few 50–100 MiB logs and many
//! small files. Every file has its own random stream, derived from the seed and its index.

use std::io;

use crate::accuracy::{self, cents};
use crate::doc::{Doc, Ledger};
use crate::prose;
use crate::rng::Rng;
use crate::values::{self, Person};
use crate::words;

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;

/// Generates about `size_mb` MiB into `l`.
pub(crate) fn generate(l: &mut Ledger, seed: u64, size_mb: u64) -> io::Result<()> {
    let budget = size_mb.max(1) * MIB;
    let mut plan = Rng::fork(seed, u64::MAX);
    let mut stream = 0u64;

    // A few big logs, 50–100 MiB each when the budget allows.
    let big_total = budget * 40 / 100;
    let n_big = ((big_total + 37 * MIB) / (75 * MIB)).max(1);
    for i in 0..n_big {
        let size = big_total / n_big * plan.range(85, 115) / 100;
        stream += 1;
        let mut r = Rng::fork(seed, stream);
        let path = format!("logs/app-2024-{:02}.log", i % 12 + 1);
        let path = if i >= 12 {
            format!("logs/archive/app-{}-{:02}.log", 2023 - i / 12, i % 12 + 1)
        } else {
            path
        };
        log_file(l, &mut r, &path, size)?;
    }

    let mut fill = |l: &mut Ledger,
                    share: u64,
                    min: u64,
                    max: u64,
                    make: &mut dyn FnMut(&mut Ledger, &mut Rng, u64, u64) -> io::Result<()>|
     -> io::Result<()> {
        let mut left = budget * share / 100;
        let mut index = 0u64;
        let steps = u64::from((max / min).ilog2());
        while left > 0 {
            let size = (min << plan.below(steps + 1)) * plan.range(75, 125) / 100;
            let size = size.clamp(4 * KIB, max).min(left.max(4 * KIB));
            stream += 1;
            let mut r = Rng::fork(seed, stream);
            make(l, &mut r, index, size)?;
            index += 1;
            left = left.saturating_sub(size);
        }
        Ok(())
    };

    fill(l, 10, MIB, 10 * MIB, &mut |l, r, i, size| {
        let name = ["worker", "payments", "mailer", "web", "cron"][(i % 5) as usize];
        log_file(l, r, &format!("logs/{name}/{name}-{:04}.log", i + 1), size)
    })?;
    fill(l, 20, 256 * KIB, 16 * MIB, &mut |l, r, i, size| {
        if i % 10 == 3 {
            // Customer exports are dense (several values per row), so they stay small.
            let size = size.min(128 * KIB);
            customers_file(l, r, &format!("exports/customers/customers-{:04}.csv", i + 1), size)
        } else {
            sales_file(l, r, &format!("exports/sales/sales-lines-{:04}.csv", i + 1), size)
        }
    })?;
    fill(l, 10, 64 * KIB, 4 * MIB, &mut |l, r, i, size| {
        events_file(l, r, &format!("data/events/events-{:05}.ndjson", i + 1), size)
    })?;
    fill(l, 15, 4 * KIB, 256 * KIB, &mut |l, r, i, size| {
        let md = i % 3 == 0;
        let path = format!(
            "notes/{}/{}-{:05}.{}",
            2019 + i % 6,
            ["shift", "calls", "todo", "misc"][(i % 4) as usize],
            i + 1,
            if md { "md" } else { "txt" }
        );
        notes_file(l, r, &path, md, size)
    })?;
    fill(l, 5, 4 * KIB, 64 * KIB, &mut |l, r, i, size| {
        mail_file(l, r, &format!("mail/{:03}/{:06}.eml", i / 500, i + 1), size)
    })?;
    Ok(())
}

/// A log timestamp that advances line by line, formatted without allocation.
struct Clock {
    secs: u64,
    ms: u64,
    day: u64,
    date: [u8; 11],
}

impl Clock {
    fn new(r: &mut Rng) -> Clock {
        Clock {
            secs: values::epoch_secs(r),
            ms: r.below(1000),
            day: u64::MAX,
            date: *b"1970-01-01T",
        }
    }

    fn push(&mut self, d: &mut Doc, r: &mut Rng) {
        self.ms += r.below(700);
        if self.ms >= 1000 {
            self.secs += self.ms / 1000;
            self.ms %= 1000;
        }
        let day = self.secs / 86_400;
        if day != self.day {
            self.day = day;
            let (y, m, dd) = values::civil_from_days(day);
            let mut s = String::with_capacity(11);
            values::Date { y: y as u32, m, d: dd }.push(false, &mut s);
            s.push('T');
            self.date.copy_from_slice(s.as_bytes());
        }
        let t = self.secs % 86_400;
        d.bytes(&self.date);
        two(d, t / 3600);
        d.b(b':');
        two(d, t / 60 % 60);
        d.b(b':');
        two(d, t % 60);
        d.b(b'.');
        d.b(b'0' + (self.ms / 100) as u8);
        two(d, self.ms % 100);
        d.b(b'Z');
    }
}

fn two(d: &mut Doc, n: u64) {
    d.b(b'0' + (n / 10) as u8);
    d.b(b'0' + (n % 10) as u8);
}

/// A hex id with a letter every fifth nibble, so it never holds a long decimal run that could
/// read as a card or phone number.
fn hex_id(d: &mut Doc, r: &mut Rng, nibbles: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let v = r.next_u64();
    for i in 0..nibbles.min(16) {
        let n = ((v >> (i * 4)) & 15) as u8;
        d.b(if i % 5 == 0 { b'a' + n % 6 } else { HEX[usize::from(n)] });
    }
}

const PATHS: &[&str] = &[
    "/",
    "/products",
    "/cart",
    "/checkout",
    "/account",
    "/search",
    "/collections/spring",
    "/collections/kitchen",
    "/about",
    "/static/app.css",
    "/static/app.js",
];

fn ordinary_log_line(d: &mut Doc, r: &mut Rng) {
    match r.below(8) {
        0..=2 => {
            d.t(" INFO  web req=");
            hex_id(d, r, 16);
            d.t(r.pick(&[" GET ", " GET ", " POST "]));
            d.t(r.pick(PATHS));
            d.t(" status=");
            d.t(r.pick(&["200", "200", "200", "304", "302", "404"]));
            d.t(" dur_ms=");
            d.u(r.range(1, 900));
        }
        3 => {
            d.t(" INFO  inventory sync sku=");
            d.t(r.pick(words::SKU_STEMS));
            d.b(b'-');
            d.u(r.range(1000, 9999));
            d.t(" qty=");
            d.u(r.below(300));
        }
        4 => {
            d.t(" DEBUG db query table=");
            d.t(r.pick(&["orders", "products", "sessions", "carts"]));
            d.t(" rows=");
            d.u(r.below(50));
            d.t(" took_ms=");
            d.u(r.range(1, 120));
        }
        5 => {
            d.t(" INFO  cache hit_ratio=0.");
            d.u(r.range(50, 99));
            d.t(" keys=");
            d.u(r.range(1000, 90_000));
        }
        6 => {
            d.t(" INFO  session started sid=");
            hex_id(d, r, 16);
            d.t(" cart_items=");
            d.u(r.below(8));
        }
        _ => {
            d.t(" WARN  slow request path=");
            d.t(r.pick(PATHS));
            d.t(" dur_ms=");
            d.u(r.range(1000, 9000));
        }
    }
    d.b(b'\n');
}

fn log_file(l: &mut Ledger, r: &mut Rng, path: &str, size: u64) -> io::Result<()> {
    let mut d = l.open(path)?;
    let mut clock = Clock::new(r);
    while d.offset() < size {
        clock.push(&mut d, r);
        if r.one_in(25) {
            accuracy::log_body(&mut d, r);
        } else {
            ordinary_log_line(&mut d, r);
        }
        d.maybe_flush()?;
    }
    d.close()
}

fn sales_file(l: &mut Ledger, r: &mut Rng, path: &str, size: u64) -> io::Result<()> {
    let mut d = l.open(path)?;
    d.t("line_id,created_at,sku,product,qty,unit_price,line_total,customer_email\n");
    let mut clock = Clock::new(r);
    let mut id = r.range(100_000, 900_000);
    while d.offset() < size {
        id += 1;
        d.u(id);
        d.b(b',');
        clock.push(&mut d, r);
        d.b(b',');
        d.t(r.pick(words::SKU_STEMS));
        d.b(b'-');
        d.u(r.range(1000, 9999));
        d.b(b',');
        let (name, c) = r.pick(words::PRODUCTS);
        d.t(name);
        d.b(b',');
        let q = r.range(1, 6);
        d.u(q);
        d.b(b',');
        cents(&mut d, u64::from(c));
        d.b(b',');
        cents(&mut d, q * u64::from(c));
        d.b(b',');
        if r.one_in(50) {
            let p = Person::random(r);
            d.email(r, p);
        }
        d.b(b'\n');
        d.maybe_flush()?;
    }
    d.close()
}

fn customers_file(l: &mut Ledger, r: &mut Rng, path: &str, size: u64) -> io::Result<()> {
    let layout = accuracy::customer_layout(r, b',');
    let mut d = l.open(path)?;
    accuracy::header(&mut d, &layout);
    let mut id = r.range(1000, 9000);
    while d.offset() < size {
        id += 1;
        accuracy::row(&mut d, r, &layout, id);
        d.maybe_flush()?;
    }
    d.close()
}

fn events_file(l: &mut Ledger, r: &mut Rng, path: &str, size: u64) -> io::Result<()> {
    let mut d = l.open(path)?;
    let mut ts = values::epoch_secs(r);
    while d.offset() < size {
        ts += r.below(30);
        d.t("{\"ts\":");
        d.u(ts);
        if r.one_in(50) {
            let p = Person::random(r);
            match r.below(3) {
                0 => {
                    d.t(",\"event\":\"newsletter.signup\",\"email\":\"");
                    d.email(r, p);
                    d.t("\"}\n");
                }
                1 => {
                    d.t(",\"event\":\"customer.updated\",\"name\":\"");
                    d.name(p);
                    d.t("\",\"phone\":\"");
                    d.phone(r, true);
                    d.t("\"}\n");
                }
                _ => {
                    d.t(",\"event\":\"order.created\",\"order_id\":\"");
                    d.n_luhn_id(r);
                    d.t("\",\"email\":\"");
                    d.email(r, p);
                    d.t("\"}\n");
                }
            }
        } else {
            d.t(",\"event\":\"");
            d.t(r.pick(&["page.view", "page.view", "cart.add", "search", "cart.remove"]));
            d.t("\",\"path\":\"");
            d.t(r.pick(PATHS));
            d.t("\",\"session\":\"");
            hex_id(&mut d, r, 16);
            d.t("\",\"ms\":");
            d.u(r.range(1, 3000));
            d.t("}\n");
        }
        d.maybe_flush()?;
    }
    d.close()
}

fn notes_file(l: &mut Ledger, r: &mut Rng, path: &str, md: bool, size: u64) -> io::Result<()> {
    let mut d = l.open(path)?;
    if md {
        d.t("# Shop notes\n\n");
    }
    while d.offset() < size {
        if md {
            d.t("- ");
        }
        let n = r.range(2, 6);
        prose::paragraph(&mut d, r, n, 2, 2);
        d.maybe_flush()?;
    }
    d.close()
}

fn mail_file(l: &mut Ledger, r: &mut Rng, path: &str, size: u64) -> io::Result<()> {
    let p = Person::random(r);
    let mut d = l.open(path)?;
    d.t("From: ");
    d.t(p.first);
    d.b(b' ');
    d.t(p.last);
    d.t(" <");
    d.email(r, p);
    d.t(">\nTo: Brightleaf Goods <");
    d.shop_email(r);
    d.t(">\nSubject: ");
    d.t(r.pick(words::SUBJECTS));
    d.t("\nDate: ");
    accuracy::mail_date(&mut d, r);
    d.t("\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\nHi ");
    d.t(r.pick(words::STAFF));
    d.t(",\n\n");
    let mut quote = false;
    while d.offset() < size {
        if quote {
            d.t("> ");
        }
        let n = r.range(1, 4);
        prose::paragraph(&mut d, r, n, 2, 2);
        if r.one_in(6) {
            quote = !quote;
            d.t(if quote { "\nOn a previous day, someone wrote:\n" } else { "\n" });
        }
    }
    d.t("\nThanks,\n");
    prose::signature(&mut d, r, p);
    d.close()
}

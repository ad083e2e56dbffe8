//! The accuracy profile: a dense, realistic corpus of a fictional shop (Brightleaf Goods) in a
//! few hundred small files, with hundreds of planted values per measured kind and more hard
//! negatives than positives.

use std::io;

use crate::doc::{Doc, Ledger};
use crate::prose::{self, csv_card_format, supplier_email};
use crate::rng::Rng;
use crate::values::{self, Person, SecretKind};
use crate::words;

/// Generates the whole accuracy corpus into `l`.
pub(crate) fn generate(l: &mut Ledger, seed: u64) -> io::Result<()> {
    let mut rng = Rng::new(seed);
    let r = &mut rng;
    customers(l, r)?;
    orders(l, r)?;
    payroll(l, r)?;
    suppliers(l, r)?;
    notes(l, r)?;
    mail(l, r)?;
    logs(l, r)?;
    invoices(l, r)?;
    config(l, r)?;
    backup(l, r)?;
    hard_negatives(l, r)?;
    audit_log(l, r)
}

/// Tops the corpus up with an audit log of negative-only lines until there are at least 5%
/// more hard negatives than planted values, whatever the seed.
fn audit_log(l: &mut Ledger, r: &mut Rng) -> io::Result<()> {
    let positives: u64 = l.positives.iter().sum();
    let wanted = positives + positives / 20;
    let mut d = l.open("logs/audit.log")?;
    // Each line records exactly two negatives.
    let mut have: u64 = d.negatives_so_far();
    while have < wanted {
        d.n_timestamp(r, 1);
        match r.below(6) {
            0 => {
                d.t(" user=anna action=export request=");
                d.n_uuid(r);
            }
            1 => {
                d.t(" user=marcus action=login session=");
                d.n_hash(r);
            }
            2 => {
                d.t(" system action=batch id=");
                d.n_nine(r);
            }
            3 => {
                d.t(" system action=refund order_id=");
                d.n_luhn_id(r);
            }
            4 => {
                d.t(" system action=upgrade to=");
                d.n_version(r);
            }
            _ => {
                d.t(" user=priya action=adjust amount=");
                d.n_money(r, 5_000);
            }
        }
        d.b(b'\n');
        have += 2;
    }
    d.close()
}

// ---------------------------------------------------------------------------------------------
// CSV exports.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Col {
    Id,
    Name,
    Email,
    Phone,
    Address,
    City,
    State,
    Zip,
    Dob,
    Card,
    Ssn,
    Iban,
    Country,
    Notes,
}

pub(crate) struct Layout {
    cols: Vec<Col>,
    sep: u8,
    name_header: &'static str,
    dob_header: &'static str,
}

pub(crate) fn header(d: &mut Doc, layout: &Layout) {
    for (i, c) in layout.cols.iter().enumerate() {
        if i > 0 {
            d.b(layout.sep);
        }
        d.t(match c {
            Col::Id => "id",
            Col::Name => layout.name_header,
            Col::Email => "email",
            Col::Phone => "phone",
            Col::Address => "address",
            Col::City => "city",
            Col::State => "state",
            Col::Zip => "zip",
            Col::Dob => layout.dob_header,
            Col::Card => "card_number",
            Col::Ssn => "ssn",
            Col::Iban => "iban",
            Col::Country => "country",
            Col::Notes => "notes",
        });
    }
    d.b(b'\n');
}

const EU_CITIES: &[(&str, &str)] = &[
    ("Berlin", "DE"),
    ("Hamburg", "DE"),
    ("Paris", "FR"),
    ("Lyon", "FR"),
    ("Amsterdam", "NL"),
    ("Utrecht", "NL"),
    ("Madrid", "ES"),
    ("Milano", "IT"),
    ("Bruxelles", "BE"),
    ("Wien", "AT"),
    ("Zürich", "CH"),
    ("London", "GB"),
    ("Dublin", "IE"),
];

fn quoted(d: &mut Doc, on: bool, f: impl FnOnce(&mut Doc)) {
    if on {
        d.b(b'"');
    }
    f(d);
    if on {
        d.b(b'"');
    }
}

pub(crate) fn row(d: &mut Doc, r: &mut Rng, layout: &Layout, id: u64) {
    let p = Person::random(r);
    let (city, state, zip) = values::city(r);
    let eu = r.pick(EU_CITIES);
    let comma = layout.sep == b',';
    for (i, c) in layout.cols.iter().enumerate() {
        if i > 0 {
            d.b(layout.sep);
        }
        match c {
            Col::Id => d.u(id),
            Col::Name => {
                let q = comma && r.percent(10);
                quoted(d, q, |d| d.name(p));
            }
            Col::Email => {
                if !r.percent(6) {
                    d.email(r, p);
                }
            }
            Col::Phone => {
                if !r.percent(10) {
                    d.phone(r, true);
                }
            }
            Col::Address => {
                let unit = r.percent(20);
                quoted(d, comma && unit, |d| d.street(r, unit));
            }
            Col::City => {
                if layout.cols.contains(&Col::Iban) {
                    d.t(eu.0);
                } else {
                    d.t(city);
                }
            }
            Col::State => d.t(state),
            Col::Zip => d.n_zip_of(zip),
            Col::Dob => {
                if !r.percent(15) {
                    let us = r.percent(40);
                    d.dob(r, us);
                }
            }
            Col::Card => {
                if !r.percent(25) {
                    let f = csv_card_format(r);
                    d.card_fmt(r, f);
                }
            }
            Col::Ssn => {
                if !r.percent(20) {
                    d.ssn(r, true);
                }
            }
            Col::Iban => {
                if !r.percent(10) {
                    d.iban(r, Some(eu.1));
                }
            }
            Col::Country => d.t(eu.1),
            Col::Notes => {
                if r.percent(12) {
                    d.t("last order #");
                    d.n_luhn_id(r);
                } else if r.percent(5) {
                    d.t("ships to warehouse zip ");
                    d.n_zip(r);
                } else {
                    let n = r.pick(words::CSV_NOTES);
                    quoted(d, n.contains(',') && comma, |d| d.t(n));
                }
            }
        }
    }
    d.b(b'\n');
}

pub(crate) fn customer_layout(r: &mut Rng, sep: u8) -> Layout {
    let mut middle = vec![Col::Email];
    if r.percent(85) {
        middle.push(Col::Phone);
    }
    let address = r.percent(60);
    if address {
        middle.push(Col::Address);
    }
    if r.percent(50) {
        middle.push(Col::Dob);
    }
    if r.percent(60) {
        middle.push(Col::Card);
    }
    if r.percent(45) {
        middle.push(Col::Ssn);
    }
    if r.percent(30) {
        // Shuffle the middle columns: exports from different tools order them differently.
        for i in (1..middle.len()).rev() {
            let j = r.index(i + 1);
            middle.swap(i, j);
        }
    }
    let mut cols = vec![Col::Id, Col::Name];
    for c in middle {
        cols.push(c);
        if c == Col::Address {
            cols.extend([Col::City, Col::State, Col::Zip]);
        }
    }
    if r.percent(70) {
        cols.push(Col::Notes);
    }
    Layout {
        cols,
        sep,
        name_header: if r.percent(60) { "name" } else { "full_name" },
        dob_header: if r.percent(60) { "dob" } else { "date_of_birth" },
    }
}

fn csv_file(l: &mut Ledger, r: &mut Rng, path: &str, layout: &Layout, rows: u64) -> io::Result<()> {
    let mut d = l.open(path)?;
    header(&mut d, layout);
    let base = r.range(1000, 9000);
    for i in 0..rows {
        row(&mut d, r, layout, base + i);
    }
    d.close()
}

fn customers(l: &mut Ledger, r: &mut Rng) -> io::Result<()> {
    for year in 2019..=2024 {
        let layout = customer_layout(r, b',');
        let rows = r.range(30, 70);
        csv_file(l, r, &format!("customers/export_{year}.csv"), &layout, rows)?;
    }
    for name in ["loyalty_members", "wholesale_accounts", "customers_q3_2023"] {
        let layout = customer_layout(r, b',');
        let rows = r.range(25, 60);
        csv_file(l, r, &format!("customers/{name}.csv"), &layout, rows)?;
    }
    let layout = Layout {
        cols: vec![Col::Id, Col::Name, Col::Email],
        sep: b',',
        name_header: "name",
        dob_header: "dob",
    };
    let rows = r.range(40, 80);
    csv_file(l, r, "customers/newsletter_signups.csv", &layout, rows)?;
    let layout = customer_layout(r, b';');
    let rows = r.range(30, 60);
    csv_file(l, r, "customers/kunden_export.csv", &layout, rows)?;
    let layout = customer_layout(r, b'\t');
    let rows = r.range(30, 60);
    csv_file(l, r, "customers/crm_export.tsv", &layout, rows)?;
    let layout = Layout {
        cols: vec![Col::Id, Col::Name, Col::Email, Col::Phone, Col::Iban, Col::City, Col::Country],
        sep: b';',
        name_header: "name",
        dob_header: "dob",
    };
    for part in 1..=3 {
        let rows = r.range(40, 70);
        csv_file(l, r, &format!("customers/customers_eu_{part}.csv"), &layout, rows)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Orders.

fn order_id(d: &mut Doc, r: &mut Rng) {
    if r.percent(75) {
        d.n_luhn_id(r);
    } else {
        d.t("BL-");
        d.u(r.range(100_000, 999_999));
    }
}

fn tracking(d: &mut Doc, r: &mut Rng) {
    if r.percent(60) {
        d.n_luhn_id(r);
    } else {
        d.t("1Z");
        d.with(|s| {
            for _ in 0..16 {
                s.push(char::from(r.pick(b"ABCDEFGHJKLMNPRSTUVWXYZ0123456789")));
            }
        });
    }
}

fn items(d: &mut Doc, r: &mut Rng) -> u64 {
    let mut total = 0u64;
    for i in 0..r.range(1, 3) {
        if i > 0 {
            d.t(" + ");
        }
        let (name, cents) = r.pick(words::PRODUCTS);
        let q = r.range(1, 4);
        d.u(q);
        d.t("x ");
        d.t(name);
        total += q * u64::from(cents);
    }
    total
}

pub(crate) fn cents(d: &mut Doc, c: u64) {
    d.u(c / 100);
    d.b(b'.');
    d.u0(c % 100, 2);
}

fn orders(l: &mut Ledger, r: &mut Rng) -> io::Result<()> {
    for name in ["orders_2022", "orders_2023", "orders_2024_q1", "orders_2024_q2", "web_orders"] {
        let mut d = l.open(&format!("orders/{name}.csv"))?;
        d.t("order_id,created_at,name,email,items,total,status,tracking_number\n");
        for _ in 0..r.range(50, 80) {
            let p = Person::random(r);
            order_id(&mut d, r);
            d.b(b',');
            let style = u8::from(r.percent(50));
            d.n_timestamp(r, style);
            d.b(b',');
            d.name(p);
            d.b(b',');
            d.email(r, p);
            d.b(b',');
            let total = items(&mut d, r);
            d.b(b',');
            d.n_cents(total);
            d.b(b',');
            d.t(r.pick(&["paid", "shipped", "shipped", "delivered", "refunded"]));
            d.b(b',');
            tracking(&mut d, r);
            d.b(b'\n');
        }
        d.close()?;
    }
    for n in 1..=5 {
        let mut d = l.open(&format!("orders/shopify_export_{n}.json"))?;
        d.t("[\n");
        let count = r.range(8, 20);
        for i in 0..count {
            let p = Person::random(r);
            d.t("  {\n    \"order_id\": \"");
            order_id(&mut d, r);
            d.t("\",\n    \"created_at\": \"");
            d.n_timestamp(r, 0);
            d.t("\",\n    \"customer\": {\n      \"name\": \"");
            d.name(p);
            d.t("\",\n      \"email\": \"");
            d.email(r, p);
            d.t("\",\n      \"phone\": \"");
            d.phone(r, true);
            d.t("\",\n      \"address\": \"");
            d.street(r, false);
            let (city, state, zip) = values::city(r);
            d.t("\",\n      \"city\": \"");
            d.t(city);
            d.t("\",\n      \"state\": \"");
            d.t(state);
            d.t("\",\n      \"zip\": \"");
            d.u0(u64::from(zip), 5);
            d.t("\"\n    },\n    \"items\": \"");
            let total = items(&mut d, r);
            d.t("\",\n    \"total\": ");
            d.n_cents(total);
            d.t(",\n    \"tracking_number\": \"");
            tracking(&mut d, r);
            d.t("\"\n  }");
            if i + 1 < count {
                d.b(b',');
            }
            d.b(b'\n');
        }
        d.t("]\n");
        d.close()?;
    }
    for n in 1..=4 {
        let mut d = l.open(&format!("orders/events_{n}.ndjson"))?;
        for _ in 0..r.range(30, 60) {
            let p = Person::random(r);
            d.t("{\"ts\":");
            d.n_timestamp(r, 2);
            match r.below(4) {
                0 => {
                    d.t(",\"event\":\"order.created\",\"order_id\":\"");
                    order_id(&mut d, r);
                    d.t("\",\"email\":\"");
                    d.email(r, p);
                    d.t("\",\"total\":");
                    cents(&mut d, r.range(500, 40_000));
                    d.t("}\n");
                }
                1 => {
                    d.t(",\"event\":\"payment.failed\",\"card_last4\":\"");
                    d.u0(r.below(10_000), 4);
                    d.t("\",\"email\":\"");
                    d.email(r, p);
                    d.t("\"}\n");
                }
                2 => {
                    d.t(",\"event\":\"customer.updated\",\"name\":\"");
                    d.name(p);
                    d.t("\",\"phone\":\"");
                    d.phone(r, true);
                    d.t("\"}\n");
                }
                _ => {
                    d.t(",\"event\":\"shipment.created\",\"tracking_number\":\"");
                    d.n_luhn_id(r);
                    d.t("\",\"request_id\":\"");
                    d.n_uuid(r);
                    d.t("\"}\n");
                }
            }
        }
        d.close()?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Payroll and suppliers.

fn payroll(l: &mut Ledger, r: &mut Rng) -> io::Result<()> {
    for (name, rows) in [
        ("direct_deposit_2022", r.range(40, 60)),
        ("direct_deposit_2023", r.range(40, 60)),
        ("direct_deposit_2024", r.range(40, 60)),
        ("contractors_1099", r.range(20, 40)),
    ] {
        let dob_header = if r.percent(50) { "dob" } else { "date_of_birth" };
        let mut d = l.open(&format!("payroll/{name}.csv"))?;
        d.t("employee_id,full_name,ssn,");
        d.t(dob_header);
        d.t(",routing_number,account_last4,email\n");
        for _ in 0..rows {
            let p = Person::random(r);
            d.t("E");
            d.u(r.range(100, 999));
            d.b(b',');
            d.name(p);
            d.b(b',');
            d.ssn(r, true);
            d.b(b',');
            let us = r.percent(50);
            d.dob(r, us);
            d.b(b',');
            d.aba(r);
            d.b(b',');
            d.u0(r.below(10_000), 4);
            d.b(b',');
            d.email(r, p);
            d.b(b'\n');
        }
        d.close()?;
    }
    let mut d = l.open("payroll/onboarding_notes.txt")?;
    d.t("Onboarding notes - keep in the locked drawer, not on the shared drive!\n\n");
    for _ in 0..r.range(15, 25) {
        let f = if r.percent(50) { prose::Focus::Ssn } else { prose::Focus::Routing };
        prose::positive(&mut d, r, f);
        d.b(b' ');
        if r.percent(40) {
            prose::negative(&mut d, r);
        } else {
            prose::filler(&mut d, r);
        }
        d.b(b'\n');
    }
    d.close()
}

fn suppliers(l: &mut Ledger, r: &mut Rng) -> io::Result<()> {
    let mut d = l.open("suppliers/suppliers_eu.csv")?;
    d.t("supplier,country,iban,bic,email,phone\n");
    for &(company, country) in words::SUPPLIERS_EU {
        let q = company.contains(',');
        quoted(&mut d, q, |d| d.t(company));
        d.b(b',');
        d.t(country);
        d.b(b',');
        d.iban(r, Some(country));
        d.b(b',');
        d.t(prose_bic(country));
        d.b(b',');
        supplier_email(&mut d, r, company, country);
        d.b(b',');
        d.phone(r, false);
        d.b(b'\n');
    }
    d.close()?;
    for year in [2023u64, 2024] {
        let mut d = l.open(&format!("suppliers/sepa_payments_{year}.csv"))?;
        d.t("date,supplier,amount_eur,iban,reference\n");
        for i in 0..r.range(70, 100) {
            let (company, country) = r.pick(words::SUPPLIERS_EU);
            d.n_date(r);
            d.b(b',');
            d.t(company);
            d.b(b',');
            cents(&mut d, r.range(5_000, 900_000));
            d.b(b',');
            if r.percent(8) {
                d.n_bad_iban(r);
            } else {
                d.iban(r, Some(country));
            }
            d.t(",PO-");
            d.u(year);
            d.b(b'-');
            d.u0(i + 1, 4);
            d.b(b'\n');
        }
        d.close()?;
    }
    let mut d = l.open("suppliers/vendors_us.csv")?;
    d.t("vendor,routing_number,account_last4,email,phone\n");
    for &v in words::VENDORS_US {
        d.t(v);
        d.b(b',');
        d.aba(r);
        d.b(b',');
        d.u0(r.below(10_000), 4);
        d.b(b',');
        supplier_email(&mut d, r, v, "US");
        d.b(b',');
        d.phone(r, true);
        d.b(b'\n');
    }
    d.close()?;
    let mut d = l.open("suppliers/ach_payments_2024.csv")?;
    d.t("date,vendor,amount,routing_number,account_last4,batch\n");
    for _ in 0..r.range(40, 70) {
        d.n_date(r);
        d.b(b',');
        d.t(r.pick(words::VENDORS_US));
        d.b(b',');
        cents(&mut d, r.range(2_000, 500_000));
        d.b(b',');
        if r.percent(8) {
            d.n_bad_aba(r);
        } else {
            d.aba(r);
        }
        d.b(b',');
        d.u0(r.below(10_000), 4);
        d.b(b',');
        d.n_nine(r);
        d.b(b'\n');
    }
    d.close()
}

pub(crate) fn prose_bic(country: &str) -> &'static str {
    words::BICS.iter().find(|(c, _)| *c == country).map_or("DEUTDEFF", |&(_, b)| b)
}

// ---------------------------------------------------------------------------------------------
// Notes, mail, logs, invoices, config.

fn notes(l: &mut Ledger, r: &mut Rng) -> io::Result<()> {
    for i in 0..r.range(40, 50) {
        let date = prose::recent(r);
        let md = r.percent(40);
        let mut name = String::new();
        date.push(false, &mut name);
        let path = if md {
            format!("notes/{name}-week-{:02}.md", i % 52 + 1)
        } else {
            format!(
                "notes/{}-{name}.txt",
                r.pick(&["shift", "calls", "todo", "misc", "front-desk"])
            )
        };
        let mut d = l.open(&path)?;
        if md {
            d.t("# Shop notes - ");
            d.with(|s| date.push(false, s));
            d.t("\n\n");
        }
        for _ in 0..r.range(6, 16) {
            if md && r.percent(30) {
                d.t("## ");
                d.t(r.pick(&["Calls", "Payments", "Staff", "Suppliers", "To do", "Returns"]));
                d.t("\n\n");
            }
            if md {
                d.t("- ");
            }
            let n = r.range(1, 4);
            prose::paragraph(&mut d, r, n, 40, 45);
            if md && r.percent(30) {
                d.b(b'\n');
            }
        }
        d.close()?;
    }
    Ok(())
}

const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// An RFC 5322 date header value.
pub(crate) fn mail_date(d: &mut Doc, r: &mut Rng) {
    let secs = values::epoch_secs(r);
    let days = secs / 86_400;
    let (y, m, day) = values::civil_from_days(days);
    let t = secs % 86_400;
    d.t(WEEKDAYS[(days % 7) as usize]);
    d.t(", ");
    d.u0(u64::from(day), 2);
    d.b(b' ');
    d.t(MONTHS[m as usize - 1]);
    d.b(b' ');
    d.u(y);
    d.b(b' ');
    d.u0(t / 3600, 2);
    d.b(b':');
    d.u0(t / 60 % 60, 2);
    d.b(b':');
    d.u0(t % 60, 2);
    d.t(r.pick(&[" -0500", " -0800", " +0000", " +0100"]));
}

fn mail(l: &mut Ledger, r: &mut Rng) -> io::Result<()> {
    for i in 0..r.range(40, 50) {
        let p = Person::random(r);
        let mut d = l.open(&format!("mail/{:04}.eml", i + 1))?;
        let outgoing = r.percent(30);
        let supplier = !outgoing && r.percent(20);
        let staff = r.pick(words::STAFF);
        let (company, country) = r.pick(words::SUPPLIERS_EU);
        if outgoing {
            d.t("From: ");
            d.t(staff);
            d.t(" at Brightleaf <");
            d.shop_email(r);
            d.t(">\nTo: ");
            d.t(p.first);
            d.b(b' ');
            d.t(p.last);
            d.t(" <");
            d.email(r, p);
            d.t(">\n");
        } else if supplier {
            d.t("From: ");
            d.t(company);
            d.t(" <");
            supplier_email(&mut d, r, company, country);
            d.t(">\nTo: ");
            d.shop_email(r);
            d.t("\n");
        } else {
            d.t("From: ");
            d.t(p.first);
            d.b(b' ');
            d.t(p.last);
            d.t(" <");
            d.email(r, p);
            d.t(">\nTo: Brightleaf Goods <");
            d.shop_email(r);
            d.t(">\n");
        }
        d.t("Subject: ");
        d.t(r.pick(words::SUBJECTS));
        d.t("\nDate: ");
        mail_date(&mut d, r);
        d.t("\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n");
        d.t(if outgoing { "Dear " } else { "Hi " });
        d.t(if outgoing { p.first } else { staff });
        d.t(",\n\n");
        if supplier {
            d.t("Please find our bank details for the open invoices below.\n\nIBAN: ");
            d.iban(r, Some(country));
            d.t("\nBIC: ");
            d.t(prose_bic(country));
            d.t("\n\n");
        }
        for _ in 0..r.range(1, 4) {
            let n = r.range(1, 3);
            prose::paragraph(&mut d, r, n, 55, 30);
            d.b(b'\n');
        }
        if r.percent(25) {
            d.t("> On an earlier date you wrote:\n> ");
            prose::paragraph(&mut d, r, 1, 50, 30);
            d.b(b'\n');
        }
        d.t(r.pick(&["Thanks,\n", "Best regards,\n", "Cheers,\n", "Kind regards,\n"]));
        if outgoing {
            d.t(staff);
            d.t("\nBrightleaf Goods\n");
        } else {
            prose::signature(&mut d, r, p);
        }
        d.close()?;
    }
    Ok(())
}

fn log_line(d: &mut Doc, r: &mut Rng) {
    d.n_timestamp(r, 0);
    log_body(d, r);
}

/// Writes the rest of a log line after its timestamp (including the newline): request logs,
/// ids and hashes, and now and then a leaked email, card, SSN or routing number.
pub(crate) fn log_body(d: &mut Doc, r: &mut Rng) {
    let p = Person::random(r);
    match r.below(15) {
        0..=3 => {
            d.t(" INFO  web request_id=");
            d.n_uuid(r);
            d.t(" method=GET path=/products/");
            d.t(r.pick(words::SKU_STEMS));
            d.b(b'-');
            d.u0(r.below(1000), 4);
            d.t(" status=200 duration_ms=");
            d.u(r.range(2, 900));
        }
        4 => {
            d.t(" INFO  checkout order_id=");
            d.n_luhn_id(r);
            d.t(" total=");
            cents(d, r.range(500, 50_000));
            d.t(" status=paid");
        }
        5 => {
            d.t(" WARN  payments declined card=");
            let f = csv_card_format(r);
            d.card_fmt(r, f);
            d.t(" reason=insufficient_funds");
        }
        6 => {
            d.t(" DEBUG web GET /account/update?email=");
            d.email(r, p);
            d.t("&phone=");
            d.phone(r, true);
        }
        7 => {
            d.t(" ERROR mailer bounce for ");
            d.email(r, p);
            d.t(": 550 mailbox unavailable");
        }
        8 => {
            d.t(" INFO  worker job_id=");
            d.n_nine(r);
            d.t(" finished in ");
            d.u(r.range(10, 5000));
            d.t("ms");
        }
        9 => {
            d.t(" INFO  cron last_run=");
            d.n_timestamp(r, 2);
            d.t(" next_run_ms=");
            d.n_timestamp(r, 3);
        }
        10 => {
            d.t(" INFO  deploy version=");
            d.n_version(r);
            d.t(" commit=");
            d.n_hash(r);
        }
        11 => {
            d.t(" INFO  shipping tracking_number=");
            d.n_luhn_id(r);
            d.t(" carrier=UPS");
        }
        12 => {
            d.t(" DEBUG payroll export row ssn=");
            d.ssn(r, true);
            d.t(" status=queued");
        }
        13 => {
            d.t(" DEBUG payroll ach RTN ");
            d.aba(r);
            d.t(" status=queued");
        }
        _ => {
            d.t(" WARN  checkout retry cc=");
            d.card_fmt(r, values::CardFormat::Plain);
            d.t(" attempt=");
            d.u(r.range(2, 4));
        }
    }
    d.b(b'\n');
}

fn logs(l: &mut Ledger, r: &mut Rng) -> io::Result<()> {
    for name in [
        "app.log",
        "app.log.1",
        "app.log.2",
        "payments.log",
        "worker.log",
        "web-2024-03.log",
        "web-2024-04.log",
        "mailer.log",
        "debug.log",
        "checkout.log",
    ] {
        let mut d = l.open(&format!("logs/{name}"))?;
        for _ in 0..r.range(100, 180) {
            log_line(&mut d, r);
        }
        d.close()?;
    }
    Ok(())
}

fn invoices(l: &mut Ledger, r: &mut Rng) -> io::Result<()> {
    for i in 0..r.range(30, 40) {
        let p = Person::random(r);
        let mut d = l.open(&format!("invoices/INV-2024-{:04}.txt", i + 1))?;
        d.t("BRIGHTLEAF GOODS - INVOICE\n\nInvoice #: ");
        d.n_luhn_id(r);
        d.t("\nInvoice date: ");
        d.n_date(r);
        d.t("\n\nBill to:\n  ");
        d.t(p.first);
        d.b(b' ');
        d.t(p.last);
        d.t("\n  ");
        d.full_address(r);
        d.t("\n  ");
        d.email(r, p);
        d.t("\n  Phone: ");
        d.phone(r, true);
        d.t("\n\nQty  Item                         Unit      Total\n");
        let mut total = 0u64;
        for _ in 0..r.range(1, 5) {
            let (name, c) = r.pick(words::PRODUCTS);
            let q = r.range(1, 6);
            d.t("  ");
            d.u(q);
            d.t("  ");
            d.t(name);
            d.t(" (SKU ");
            d.n_luhn_id(r);
            d.t(")  ");
            cents(&mut d, u64::from(c));
            d.t("  ");
            cents(&mut d, q * u64::from(c));
            d.b(b'\n');
            total += q * u64::from(c);
        }
        d.t("\nSubtotal: $");
        cents(&mut d, total);
        d.t("\nTax (8.25%): $");
        cents(&mut d, total * 825 / 10_000);
        d.t("\nTotal due: $");
        d.n_cents(total + total * 825 / 10_000);
        d.t("\n\n");
        match r.below(4) {
            0 => {
                d.t("Paid with card: ");
                d.card(r);
                d.b(b'\n');
            }
            1 => {
                d.t("Please pay by bank transfer to IBAN ");
                d.iban(r, None);
                d.b(b'\n');
            }
            2 => {
                d.t("ACH: routing number ");
                d.aba(r);
                d.t(", account ****");
                d.u0(r.below(10_000), 4);
                d.b(b'\n');
            }
            _ => {
                d.t("Paid with card ending ");
                d.u0(r.below(10_000), 4);
                d.t(". Thank you!\n");
            }
        }
        d.t("Questions? Email ");
        d.shop_email(r);
        d.t(" or call ");
        d.phone(r, false);
        d.t(".\n");
        d.close()?;
    }
    Ok(())
}

fn url_password(d: &mut Doc, r: &mut Rng, scheme: &str, user: &str, host: &str, tail: &str) {
    d.t(scheme);
    d.t("://");
    d.t(user);
    d.b(b':');
    d.secret(r, SecretKind::UrlPassword);
    d.b(b'@');
    d.t(host);
    d.t(tail);
}

fn config(l: &mut Ledger, r: &mut Rng) -> io::Result<()> {
    for name in [".env", ".env.production", ".env.staging"] {
        let mut d = l.open(&format!("config/{name}"))?;
        d.t("APP_ENV=production\nAPP_NAME=brightleaf-shop\nPORT=8080\nDATABASE_URL=");
        url_password(&mut d, r, "postgres", "app", "db", ":5432/shop");
        d.t("\nREDIS_URL=");
        url_password(&mut d, r, "redis", "default", "localhost", ":6379/0");
        d.t("\nSTRIPE_SECRET_KEY=");
        d.secret(r, SecretKind::Stripe);
        d.t("\nAWS_ACCESS_KEY_ID=");
        d.secret(r, SecretKind::AwsKeyId);
        d.t("\nAWS_REGION=us-east-1\nGITHUB_TOKEN=");
        d.secret(r, SecretKind::Github);
        d.t("\nSLACK_BOT_TOKEN=");
        d.secret(r, SecretKind::Slack);
        d.t("\nSUPPORT_EMAIL=");
        d.shop_email(r);
        d.t("\nSESSION_TIMEOUT=3600\nBUILD=");
        d.n_version(r);
        d.t("\n");
        d.close()?;
    }
    let mut d = l.open("config/settings.ini")?;
    d.t("[app]\nname = Brightleaf Goods\ntimezone = America/Chicago\n\n[database]\nurl = ");
    url_password(&mut d, r, "mysql", "shop", "mysql", ":3306/shop");
    d.t("\npool_size = 10\n\n[payments]\nprovider = stripe\nsecret_key = ");
    d.secret(r, SecretKind::Stripe);
    d.t("\n\n[notifications]\nadmin_email = ");
    d.shop_email(r);
    d.t("\nslack_token = ");
    d.secret(r, SecretKind::Slack);
    d.t("\n\n[backup]\naws_access_key_id = ");
    d.secret(r, SecretKind::AwsKeyId);
    d.t("\nbucket = brightleaf-backups\n");
    d.close()?;
    let mut d = l.open("config/config.yaml")?;
    d.t("app:\n  name: brightleaf-shop\n  version: ");
    d.n_version(r);
    d.t("\ndatabase:\n  url: ");
    url_password(&mut d, r, "postgres", "app", "db", ":5432/shop");
    d.t("\nmail:\n  from: ");
    d.shop_email(r);
    d.t("\n  smtp_url: ");
    url_password(&mut d, r, "smtp", "mailer", "localhost", ":587");
    d.t("\ngithub:\n  token: ");
    d.secret(r, SecretKind::Github);
    d.t("\ntls:\n  key: |\n");
    d.pem(r, "    ");
    d.close()?;
    let mut d = l.open("config/deploy_key.pem")?;
    d.pem(r, "");
    d.close()?;
    let mut d = l.open("scripts/backup.sh")?;
    d.t("#!/bin/sh\n# nightly backup, runs from cron\nset -e\npg_dump ");
    url_password(&mut d, r, "postgres", "backup", "localhost", ":5432/shop");
    d.t(" > /var/backups/shop.sql\nAWS_ACCESS_KEY_ID=");
    d.secret(r, SecretKind::AwsKeyId);
    d.t(" aws s3 cp /var/backups/shop.sql s3://brightleaf-backups/\n");
    d.close()
}

fn backup(l: &mut Ledger, r: &mut Rng) -> io::Result<()> {
    let layout = customer_layout(r, b',');
    let rows = r.range(40, 70);
    csv_file(l, r, ".backup/old_customers.csv", &layout, rows)?;
    let mut d = l.open(".backup/shop_dump.sql")?;
    d.t("-- Brightleaf Goods database dump\n");
    d.t("CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT, phone TEXT, card_number TEXT);\n");
    for id in 1..=r.range(30, 60) {
        let p = Person::random(r);
        d.t("INSERT INTO customers VALUES (");
        d.u(id);
        d.t(", '");
        d.email(r, p);
        d.t("', '");
        d.phone(r, false);
        d.t("', '");
        let f = csv_card_format(r);
        d.card_fmt(r, f);
        d.t("');\n");
    }
    d.close()
}

/// Files that are mostly traps: analytics floats, CSS, ISBNs, rejected payments, placeholders.
fn hard_negatives(l: &mut Ledger, r: &mut Rng) -> io::Result<()> {
    let mut d = l.open("web/theme.css")?;
    d.t("/* Brightleaf theme overrides - exported from the design tool */\n");
    for i in 0..r.range(40, 60) {
        if i % 8 == 0 {
            d.n_email_like_media();
            d.t(" (max-width: ");
            d.u(r.range(400, 1200));
            d.t("px) {\n  .grid { gap: 1rem; }\n}\n");
        }
        d.t(".c");
        d.u(i);
        d.t(" { margin-top: ");
        d.n_decimal(r, Some(2));
        d.t("; opacity: 0.");
        d.u(r.range(10, 99));
        d.t("; }\n");
    }
    d.close()?;
    for q in 1..=4 {
        let mut d = l.open(&format!("analytics/conversion_2024_q{q}.csv"))?;
        d.t("date,sessions,conversion_rate,revenue,bounce_rate\n");
        for _ in 0..r.range(50, 70) {
            d.n_date(r);
            d.b(b',');
            d.u(r.range(100, 9000));
            d.b(b',');
            d.n_decimal(r, Some(0));
            d.b(b',');
            d.n_cents(r.range(10_000, 900_000));
            d.b(b',');
            d.n_percent(r);
            d.b(b'\n');
        }
        d.close()?;
    }
    let mut d = l.open("web/README.md")?;
    d.t("# Shop website\n\nBuilt with a small static generator. Setup:\n\n");
    for _ in 0..r.range(25, 40) {
        match r.below(3) {
            0 => {
                d.t("- npm install ");
                d.n_email_like(r);
                d.b(b'\n');
            }
            1 => {
                d.t("- follow ");
                d.n_email_like(r);
                d.t(" for launch news\n");
            }
            _ => {
                d.t("- pinned release ");
                d.n_version(r);
                d.t(", hash ");
                d.n_hash(r);
                d.b(b'\n');
            }
        }
    }
    d.close()?;
    let mut d = l.open("analytics/model_scores.txt")?;
    d.t("Basket model export (raw floats)\n");
    for _ in 0..r.range(30, 45) {
        d.t("score=");
        d.n_decimal(r, None);
        d.t(" weight=");
        d.n_decimal(r, Some(4));
        d.b(b'\n');
    }
    d.close()?;
    let mut d = l.open("catalog/books.csv")?;
    d.t("sku,isbn,title,price,stock_qty\n");
    for _ in 0..r.range(90, 120) {
        d.n_luhn_id(r);
        d.b(b',');
        d.n_isbn(r);
        d.b(b',');
        d.t(r.pick(&[
            "The Slow Kitchen",
            "Pottery for Beginners",
            "Natural Dyes",
            "The Herb Garden",
            "Bread Every Day",
            "Knitting Through Winter",
        ]));
        d.b(b',');
        d.n_cents(r.range(900, 4500));
        d.b(b',');
        d.u(r.below(40));
        d.b(b'\n');
    }
    d.close()?;
    let mut d = l.open("data/stores.json")?;
    d.t("[\n");
    let n = r.range(15, 25);
    for i in 0..n {
        d.t("  {\"store\": \"Pop-up ");
        d.u(i + 1);
        d.t("\", \"lat\": ");
        d.n_decimal(r, Some(3));
        d.t(", \"lng\": -");
        d.n_decimal(r, Some(3));
        d.t(if i + 1 < n { "},\n" } else { "}\n" });
    }
    d.t("]\n");
    d.close()?;
    let mut d = l.open("payments/failed_payments.csv")?;
    d.t("attempted_at,card_number,reason,amount\n");
    for _ in 0..r.range(35, 50) {
        d.n_timestamp(r, 1);
        d.b(b',');
        d.n_luhn_fail(r);
        d.t(",invalid_number,");
        d.n_cents(r.range(500, 50_000));
        d.b(b'\n');
    }
    d.close()?;
    let mut d = l.open("payments/terminal_errors.log")?;
    for _ in 0..r.range(50, 70) {
        d.n_timestamp(r, 1);
        d.t(" POS-2 manual entry rejected, checksum failed: ");
        d.n_luhn_fail(r);
        d.b(b'\n');
    }
    d.close()?;
    let mut d = l.open("payroll/rejected_ach.csv")?;
    d.t("date,employee_id,routing_number,reason\n");
    for _ in 0..r.range(40, 60) {
        d.n_date(r);
        d.t(",E");
        d.u(r.range(100, 999));
        d.b(b',');
        d.n_bad_aba(r);
        d.t(",checksum mismatch\n");
    }
    d.close()?;
    let mut d = l.open("suppliers/rejected_sepa.csv")?;
    d.t("date,supplier,iban,reason\n");
    for _ in 0..r.range(40, 60) {
        d.n_date(r);
        d.b(b',');
        d.t(r.pick(words::SUPPLIERS_EU).0);
        d.b(b',');
        d.n_bad_iban(r);
        d.t(",invalid check digits\n");
    }
    d.close()?;
    let mut d = l.open("payroll/import_test.csv")?;
    d.t("employee_id,full_name,ssn,note\n");
    for _ in 0..r.range(50, 70) {
        let p = Person::random(r);
        d.t("T");
        d.u(r.range(100, 999));
        d.b(b',');
        d.name(p);
        d.b(b',');
        d.n_invalid_ssn(r);
        d.t(",placeholder - replace before go-live\n");
    }
    d.close()?;
    for m in 1..=6 {
        let mut d = l.open(&format!("reports/monthly_summary_2024_{m:02}.txt"))?;
        d.t("Monthly summary\nGenerated ");
        d.n_timestamp(r, 0);
        d.t("\n\nRevenue: ");
        d.n_money(r, 90_000);
        d.t(" (");
        d.n_percent(r);
        d.t(" vs last month)\nOrders: ");
        d.u(r.range(100, 900));
        d.t("\nAverage basket: ");
        d.n_money(r, 200);
        d.t("\nTop seller: SKU ");
        d.n_luhn_id(r);
        d.t("\nRefund rate: ");
        d.n_percent(r);
        d.t("\nStock value: ");
        d.n_money(r, 2_000_000);
        d.t("\nSettlement batch ");
        d.n_nine(r);
        d.t(" cleared ");
        d.n_date(r);
        d.t("\nWarehouse ZIP+4: ");
        d.n_zip(r);
        d.t("\n\n");
        for _ in 0..r.range(4, 8) {
            prose::negative(&mut d, r);
            d.b(b'\n');
        }
        d.close()?;
    }
    Ok(())
}

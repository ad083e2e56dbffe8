//! Sentences the shop's staff and customers write, each planting zero or more values.
//!
//! Shared by the accuracy profile (dense) and the throughput profile (sparse). Every template
//! keeps the context rules the truth depends on: bare SSNs, routing numbers and bare phone
//! numbers get their context phrase immediately before them; card numbers never have an
//! order/invoice/tracking/SKU keyword within 20 bytes before them.

use crate::doc::Doc;
use crate::plant::pick_pan;
use crate::rng::Rng;
use crate::values::{self, CardFormat, Date, Person, SecretKind, SsnFormat};
use crate::words;

fn title_last(d: &mut Doc, r: &mut Rng, p: Person) {
    d.t(r.pick(words::TITLES));
    d.b(b' ');
    d.t(p.last);
}

fn full(d: &mut Doc, p: Person) {
    d.t(p.first);
    d.b(b' ');
    d.t(p.last);
}

fn expiry(d: &mut Doc, r: &mut Rng) {
    d.u0(r.range(1, 12), 2);
    d.b(b'/');
    d.u0(r.range(25, 31), 2);
}

/// The measured kinds a positive sentence can focus on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Focus {
    Card,
    Ssn,
    Iban,
    Routing,
    Email,
    Phone,
    Other,
}

impl Focus {
    pub(crate) fn random(r: &mut Rng) -> Focus {
        match r.below(20) {
            0..=3 => Focus::Card,
            4..=6 => Focus::Ssn,
            7..=9 => Focus::Iban,
            10..=12 => Focus::Routing,
            13 | 14 => Focus::Email,
            15..=17 => Focus::Phone,
            _ => Focus::Other,
        }
    }
}

/// Writes one sentence (no trailing space or newline) planting a value of `focus`.
pub(crate) fn positive(d: &mut Doc, r: &mut Rng, focus: Focus) {
    let p = Person::random(r);
    match focus {
        Focus::Card => card_sentence(d, r, p),
        Focus::Ssn => ssn_sentence(d, r, p),
        Focus::Iban => iban_sentence(d, r, p),
        Focus::Routing => routing_sentence(d, r, p),
        Focus::Email => email_sentence(d, r, p),
        Focus::Phone => phone_sentence(d, r, p),
        Focus::Other => other_sentence(d, r, p),
    }
}

fn card_sentence(d: &mut Doc, r: &mut Rng, p: Person) {
    match r.below(10) {
        0 => {
            title_last(d, r, p);
            d.t(" called back: please charge ");
            d.card(r);
            d.t(" for the remaining balance.");
        }
        1 => {
            let (pan, test) = pick_pan(r);
            d.t(p.first);
            d.t(" read out a new ");
            d.t(pan.brand.name());
            d.t(" over the phone: ");
            d.plant_pan(pan, test, CardFormat::random(r));
            d.t(", exp ");
            expiry(d, r);
            d.b(b'.');
        }
        2 => {
            d.t("Card on file for ");
            full(d, p);
            d.t(" is ");
            d.card(r);
            d.t(" - move it into the payment system and delete this line.");
        }
        3 => {
            d.t("cc ");
            d.card(r);
        }
        4 => {
            d.card(r);
        }
        5 => {
            let (pan, test) = pick_pan(r);
            d.t("Payment: ");
            d.t(pan.brand.name());
            d.b(b' ');
            d.plant_pan(pan, test, CardFormat::random(r));
            d.t(", approved by phone.");
        }
        6 => {
            d.t("Please charge ");
            d.card(r);
            d.t(" for the order, ");
            d.t(p.first);
            d.t(" will pick it up Friday.");
        }
        7 => {
            d.t(p.first);
            d.t(" wants the card ending ");
            d.u0(r.below(10_000), 4);
            d.t(" replaced with ");
            d.card(r);
            d.b(b'.');
        }
        8 => {
            d.t("Backup card: ");
            d.card(r);
            d.t(" (expires ");
            expiry(d, r);
            d.t(").");
        }
        _ => {
            d.t("Called ");
            title_last(d, r, p);
            d.t(" back on ");
            d.phone(r, false);
            d.t(", she wants the card ending ");
            d.u0(r.below(10_000), 4);
            d.t(" charged.");
        }
    }
}

fn ssn_sentence(d: &mut Doc, r: &mut Rng, p: Person) {
    match r.below(8) {
        0 => {
            d.t("New hire paperwork for ");
            full(d, p);
            d.t(": SSN ");
            d.ssn(r, true);
            d.t(", DOB: ");
            let us = r.percent(50);
            d.dob(r, us);
            d.b(b'.');
        }
        1 => {
            d.t("SSN: ");
            d.ssn(r, true);
        }
        2 => {
            d.t(p.first);
            d.t("'s social security number: ");
            // The phrase starts more than 20 bytes before the value, so no bare form here.
            d.ssn(r, false);
        }
        3 => {
            d.t("ssn=");
            d.ssn_fmt(r, SsnFormat::Bare);
        }
        4 => {
            d.t("W-9 came back signed, ");
            d.ssn_fmt(r, SsnFormat::Dashes);
            d.t(", filed in the cabinet.");
        }
        5 => {
            d.t("Tax ID (SSN) ");
            d.ssn(r, true);
            d.t(" for ");
            full(d, p);
            d.b(b'.');
        }
        6 => {
            d.t(p.first);
            d.t("'s SSN is ");
            d.ssn(r, true);
            d.t(", do not email it.");
        }
        _ => {
            d.t("Employee ");
            full(d, p);
            d.t(" - SSN ");
            d.ssn_fmt(r, SsnFormat::Spaces);
        }
    }
}

fn bic_for(country: &str) -> &'static str {
    words::BICS.iter().find(|(c, _)| *c == country).map_or("DEUTDEFF", |&(_, b)| b)
}

fn iban_sentence(d: &mut Doc, r: &mut Rng, p: Person) {
    match r.below(6) {
        0 => {
            d.t("Refund to IBAN ");
            d.iban(r, None);
            d.b(b'.');
        }
        1 => {
            let (company, country) = r.pick(words::SUPPLIERS_EU);
            d.t(company);
            d.t(" bank details: IBAN ");
            d.iban(r, Some(country));
            d.t(", BIC ");
            d.t(bic_for(country));
            d.b(b'.');
        }
        2 => {
            d.t("Please update the supplier account to ");
            d.iban(r, None);
            d.t(" from next month.");
        }
        3 => {
            d.iban(r, None);
        }
        4 => {
            d.t("SEPA mandate signed by ");
            full(d, p);
            d.t(", account ");
            d.iban(r, None);
            d.b(b'.');
        }
        _ => {
            d.t(p.first);
            d.t(" paid by bank transfer from ");
            d.iban(r, None);
            d.b(b'.');
        }
    }
}

fn routing_sentence(d: &mut Doc, r: &mut Rng, p: Person) {
    match r.below(6) {
        0 => {
            d.t("Direct deposit for ");
            d.t(p.first);
            d.t(": routing number ");
            d.aba(r);
            d.t(", account ending ");
            d.u0(r.below(10_000), 4);
            d.b(b'.');
        }
        1 => {
            d.t("ABA ");
            d.aba(r);
        }
        2 => {
            d.t(r.pick(&["Routing #: ", "routing # ", "Routing number: "]));
            d.aba(r);
        }
        3 => {
            d.t("RTN ");
            d.aba(r);
            d.t(", acct ****");
            d.u0(r.below(10_000), 4);
        }
        4 => {
            d.t("Wire instructions: ABA routing number ");
            d.aba(r);
            d.b(b'.');
        }
        _ => {
            d.t(r.pick(words::VENDORS_US));
            d.t(" changed banks, new routing number: ");
            d.aba(r);
            d.b(b'.');
        }
    }
}

fn email_sentence(d: &mut Doc, r: &mut Rng, p: Person) {
    match r.below(5) {
        0 => {
            d.t("Customer email changed to ");
            d.email(r, p);
            d.b(b'.');
        }
        1 => {
            d.t("Reach ");
            d.t(p.first);
            d.t(" at ");
            d.email(r, p);
            d.t(" or ");
            d.phone(r, false);
            d.b(b'.');
        }
        2 => {
            d.t("Sent the quote to ");
            d.email(r, p);
            d.t(" on Tuesday.");
        }
        3 => {
            full(d, p);
            d.t(" <");
            d.email(r, p);
            d.b(b'>');
        }
        _ => {
            d.t("Forwarded the complaint to ");
            d.shop_email(r);
            d.t(" and replied to ");
            d.email(r, p);
            d.b(b'.');
        }
    }
}

fn phone_sentence(d: &mut Doc, r: &mut Rng, p: Person) {
    match r.below(6) {
        0 => {
            d.t("Call back ");
            d.phone(r, false);
            d.b(b'.');
        }
        1 => {
            d.t("mobile: ");
            d.phone(r, true);
        }
        2 => {
            d.t("Tel. ");
            d.phone(r, true);
        }
        3 => {
            d.t(p.first);
            d.t("'s phone: ");
            d.phone(r, true);
        }
        4 => {
            d.t("Left a voicemail at ");
            d.phone(r, false);
            d.t(" about the delivery.");
        }
        _ => {
            title_last(d, r, p);
            d.t(" (cell ");
            d.phone(r, false);
            d.t(") wants a call before noon.");
        }
    }
}

fn other_sentence(d: &mut Doc, r: &mut Rng, p: Person) {
    match r.below(8) {
        0 => {
            d.t("DOB: ");
            let us = r.percent(50);
            d.dob(r, us);
        }
        1 => {
            d.t(p.first);
            d.t(" was born ");
            let us = r.percent(50);
            d.dob(r, us);
            d.t(", so the birthday coupon goes out that week.");
        }
        2 => {
            d.t("Date of birth: ");
            let us = r.percent(50);
            d.dob(r, us);
        }
        3 | 4 => {
            d.t("Ship to ");
            d.full_address(r);
            d.b(b'.');
        }
        5 => {
            d.t("New address for ");
            d.t(p.first);
            d.t(": ");
            d.full_address(r);
        }
        6 => {
            d.t("New Stripe key for the web shop (rotate it!): ");
            d.secret(r, SecretKind::Stripe);
        }
        _ => {
            d.t("AWS key id ");
            d.secret(r, SecretKind::AwsKeyId);
            d.t(" is the one for the backups bucket.");
        }
    }
}

/// Writes one sentence containing a hard negative.
pub(crate) fn negative(d: &mut Doc, r: &mut Rng) {
    match r.below(24) {
        0 => {
            d.t("Order #");
            d.n_luhn_id(r);
            d.t(" shipped via UPS.");
        }
        1 => {
            d.t("Invoice # ");
            d.n_luhn_id(r);
            d.t(" is still unpaid.");
        }
        2 => {
            d.t("UPS tracking number ");
            d.n_luhn_id(r);
            d.t(", delivery expected Monday.");
        }
        3 => {
            d.t("SKU ");
            d.n_luhn_id(r);
            d.t(" is out of stock again.");
        }
        4 | 5 => {
            d.t("Customer read back ");
            d.n_luhn_fail(r);
            d.t(" but the terminal said invalid number.");
        }
        6 => {
            d.t("Batch ");
            d.n_nine(r);
            d.t(" processed at ");
            d.n_timestamp(r, 1);
            d.b(b'.');
        }
        7 => {
            d.t("Total for the month: ");
            d.n_money(r, 90_000);
            d.t(", up ");
            d.n_percent(r);
            d.t(" on last year.");
        }
        8 => {
            d.t("The spreadsheet showed ");
            d.n_decimal(r, None);
            d.t(" after the import, check the formula.");
        }
        9 => {
            d.t("Ordered ISBN ");
            d.n_isbn(r);
            d.t(" for the reading corner.");
        }
        10 => {
            d.t("SSN field had placeholder ");
            d.n_invalid_ssn(r);
            d.t(", ignore it.");
        }
        11 => {
            d.t("Deployed ");
            d.n_version(r);
            d.t(" at ");
            d.n_timestamp(r, 0);
            d.b(b'.');
        }
        12 => {
            d.n_qty(r);
            d.t(" on the wholesale sheet.");
        }
        13 => {
            d.t("Request ");
            d.n_uuid(r);
            d.t(" failed, see commit ");
            d.n_hash(r);
            d.b(b'.');
        }
        14 => {
            d.t("ZIP+4 for the warehouse is ");
            d.n_zip(r);
            d.b(b'.');
        }
        15 => {
            d.t("The bank bounced routing number ");
            d.n_bad_aba(r);
            d.t(", it was mistyped.");
        }
        16 => {
            d.t("Old IBAN ");
            d.n_bad_iban(r);
            d.t(" was rejected by the bank.");
        }
        17 => {
            d.t("Balance owed: ");
            d.n_money(r, 9_000);
            d.b(b'.');
        }
        18 => {
            d.t("Order date: ");
            d.n_date(r);
            d.t(", shipped ");
            d.n_date(r);
            d.b(b'.');
        }
        19 => {
            d.t("Job ");
            d.n_nine(r);
            d.t(" finished with 0 errors.");
        }
        20 => {
            d.t("Tried ");
            d.n_email_like(r);
            d.t(" for the site again.");
        }
        21 => {
            d.t("Cash drawer count ");
            d.n_money(r, 4_000);
            d.t(", float ");
            d.n_money(r, 300);
            d.b(b'.');
        }
        22 => {
            d.t("Export finished at ");
            d.n_timestamp(r, 2);
            d.t(" (epoch), file stamp ");
            d.n_timestamp(r, 3);
            d.b(b'.');
        }
        _ => {
            d.t("Old SSN on the form was ");
            d.n_invalid_ssn(r);
            d.t(" which cannot be right.");
        }
    }
}

/// Writes one harmless sentence.
pub(crate) fn filler(d: &mut Doc, r: &mut Rng) {
    d.t(r.pick(words::FILLER));
}

/// A random date in the shop's recent past.
pub(crate) fn recent(r: &mut Rng) -> Date {
    Date::random(r, 2021, 2025)
}

/// Writes a paragraph of `n` sentences; `pos`/`neg` are percent chances per sentence.
pub(crate) fn paragraph(d: &mut Doc, r: &mut Rng, n: u64, pos: u64, neg: u64) {
    for i in 0..n {
        if i > 0 {
            // A sentence that ends in a bare value (no full stop) ends its line, so two values
            // never run together ("+44 7903 150060 5105 1051 ...").
            d.b(if d.last_byte().is_ascii_alphanumeric() { b'\n' } else { b' ' });
        }
        let roll = r.below(100);
        if roll < pos {
            let f = Focus::random(r);
            positive(d, r, f);
        } else if roll < pos + neg {
            negative(d, r);
        } else {
            filler(d, r);
        }
    }
    d.b(b'\n');
}

/// Writes a short contact signature (name and maybe a phone).
pub(crate) fn signature(d: &mut Doc, r: &mut Rng, p: Person) {
    d.t(p.first);
    d.b(b'\n');
    if r.percent(60) {
        d.t(r.pick(&["Tel: ", "Mobile: ", "Phone: ", "tel "]));
        d.phone(r, true);
        d.b(b'\n');
    }
}

/// The CSV-cell form of a card: mostly plain digits.
pub(crate) fn csv_card_format(r: &mut Rng) -> CardFormat {
    if r.percent(60) { CardFormat::Plain } else { CardFormat::random(r) }
}

/// The two-letter ccTLD style suffix for supplier domains.
pub(crate) fn tld(country: &str) -> &'static str {
    match country {
        "DE" => "de",
        "FR" => "fr",
        "NL" => "nl",
        "ES" => "es",
        "IT" => "it",
        "BE" => "be",
        "AT" => "at",
        "CH" => "ch",
        "GB" => "co.uk",
        "IE" => "ie",
        _ => "com",
    }
}

/// Plants a supplier contact address such as `accounts@keramik.de`.
pub(crate) fn supplier_email(d: &mut Doc, r: &mut Rng, company: &str, country: &str) {
    let local = r.pick(&["accounts", "info", "billing", "sales", "orders", "office"]);
    let first_word = company.split(' ').next().unwrap_or(company);
    d.plant(crate::kind::Kind::Email, false, |s| {
        s.push_str(local);
        s.push('@');
        values::push_folded(s, first_word);
        s.push('.');
        s.push_str(tld(country));
    });
}

//! Planting helpers on [`Doc`]: each writes one value of a kind (recording it in the truth) or
//! one hard negative (recording it in the negatives), choosing format variants at random.

use crate::doc::Doc;
use crate::kind::{Kind, NegativeCategory as N};
use crate::rng::Rng;
use crate::values::{self, Brand, CardFormat, Date, Pan, Person, SecretKind, SsnFormat};
use crate::words;

/// A card to plant: about 5% are well-known test numbers (the flag says which).
pub(crate) fn pick_pan(r: &mut Rng) -> (Pan, bool) {
    if r.percent(5) {
        (Pan::test_card(r), true)
    } else {
        let brand = Brand::random(r);
        (values::pan(r, brand, true, false), false)
    }
}

impl Doc<'_> {
    /// Plants a card number (about 5% are well-known test numbers) in a random format and
    /// returns it so the caller can mention its brand or last four digits.
    pub(crate) fn card(&mut self, r: &mut Rng) -> Pan {
        let fmt = CardFormat::random(r);
        self.card_fmt(r, fmt)
    }

    /// Plants a card number in `fmt`.
    pub(crate) fn card_fmt(&mut self, r: &mut Rng, fmt: CardFormat) -> Pan {
        let (p, test) = pick_pan(r);
        self.plant_pan(p, test, fmt);
        p
    }

    /// Plants the given card number.
    pub(crate) fn plant_pan(&mut self, p: Pan, test: bool, fmt: CardFormat) {
        self.plant(Kind::CreditCard, test, |s| {
            values::push_card(s, p.as_str(), fmt);
        });
    }

    /// Plants an SSN. Bare nine digits only when `bare_ok` (the caller put "SSN" context right
    /// before, or the value sits under an `ssn` column).
    pub(crate) fn ssn(&mut self, r: &mut Rng, bare_ok: bool) {
        let fmt = match r.below(10) {
            6 | 7 if bare_ok => SsnFormat::Bare,
            8 | 9 => SsnFormat::Spaces,
            _ => SsnFormat::Dashes,
        };
        self.ssn_fmt(r, fmt);
    }

    /// Plants an SSN in `fmt`.
    pub(crate) fn ssn_fmt(&mut self, r: &mut Rng, fmt: SsnFormat) {
        let d = values::ssn(r);
        self.plant(Kind::UsSsn, false, |s| values::push_ssn(s, &d, fmt));
    }

    /// Plants an IBAN of `country` (or a random planted country), compact or grouped.
    pub(crate) fn iban(&mut self, r: &mut Rng, country: Option<&str>) {
        let c = country.unwrap_or_else(|| r.pick(&values::IBAN_COUNTRIES));
        let grouped = r.percent(50);
        self.plant(Kind::Iban, false, |s| values::iban(r, c, true, grouped, s));
    }

    /// Plants a routing number. The caller must have written a routing context within 20 bytes
    /// before, or be in a `routing_number` column.
    pub(crate) fn aba(&mut self, r: &mut Rng) {
        let d = values::aba(r, true);
        self.plant(Kind::UsBankRouting, false, |s| {
            s.push_str(std::str::from_utf8(&d).expect("ASCII digits"));
        });
    }

    /// Plants `p`'s email address.
    pub(crate) fn email(&mut self, r: &mut Rng, p: Person) {
        self.plant(Kind::Email, false, |s| values::email(r, p, s));
    }

    /// Plants one of the shop's own mailbox addresses.
    pub(crate) fn shop_email(&mut self, r: &mut Rng) {
        let m = r.pick(words::SHOP_MAILBOXES);
        self.plant(Kind::Email, false, |s| s.push_str(m));
    }

    /// Plants a phone number; bare ten digits only when `bare_ok`.
    pub(crate) fn phone(&mut self, r: &mut Rng, bare_ok: bool) {
        self.plant(Kind::Phone, false, |s| values::phone(r, bare_ok, s));
    }

    /// Plants `p`'s full name (only for name cells and JSON name values).
    pub(crate) fn name(&mut self, p: Person) {
        self.plant(Kind::PersonName, false, |s| p.push_full(s));
    }

    /// Plants a street line.
    pub(crate) fn street(&mut self, r: &mut Rng, with_unit: bool) {
        self.plant(Kind::StreetAddress, false, |s| values::street(r, with_unit, s));
    }

    /// Plants a full one-line US address.
    pub(crate) fn full_address(&mut self, r: &mut Rng) {
        self.plant(Kind::StreetAddress, false, |s| values::full_address(r, s));
    }

    /// Plants a date of birth (`us` picks `MM/DD/YYYY`, else ISO). The caller provides the
    /// birth-date context.
    pub(crate) fn dob(&mut self, r: &mut Rng, us: bool) {
        let d = Date::random(r, 1940, 2005);
        self.plant(Kind::DateOfBirth, false, |s| d.push(us, s));
    }

    /// Plants a credential of `kind`.
    pub(crate) fn secret(&mut self, r: &mut Rng, kind: SecretKind) {
        self.plant(Kind::Secret, false, |s| values::secret(r, kind, s));
    }

    /// Plants a PEM private key: the header line is the planted span, the body and footer are
    /// written after it, each line prefixed with `indent`.
    pub(crate) fn pem(&mut self, r: &mut Rng, indent: &str) {
        self.t(indent);
        self.plant(Kind::Secret, false, |s| s.push_str(values::PEM_HEADER));
        self.b(b'\n');
        let lines = r.range(4, 10) as usize;
        self.with(|s| values::pem_body(r, lines, indent, s));
        self.t(indent);
        self.t("-----END RSA PRIVATE KEY-----\n");
    }

    // -----------------------------------------------------------------------------------------
    // Hard negatives.

    /// A card-prefixed number that fails Luhn, plain or grouped.
    pub(crate) fn n_luhn_fail(&mut self, r: &mut Rng) {
        let brand = Brand::random(r);
        let p = values::pan(r, brand, false, false);
        let fmt = CardFormat::random(r);
        self.neg(Kind::CreditCard, N::LuhnFail, |s| {
            values::push_card(s, p.as_str(), fmt);
        });
    }

    /// A Luhn-valid, card-prefixed 16-digit id; the caller writes the id keyword before it.
    pub(crate) fn n_luhn_id(&mut self, r: &mut Rng) {
        let brand = r.pick(&[Brand::Visa, Brand::Mastercard, Brand::Discover, Brand::Jcb]);
        let p = values::pan(r, brand, true, true);
        self.neg(Kind::CreditCard, N::LuhnValidId, |s| s.push_str(p.as_str()));
    }

    /// A decimal whose digits pass Luhn, in `style` (see [`values::decimal_luhn`]).
    pub(crate) fn n_decimal(&mut self, r: &mut Rng, style: Option<u64>) {
        self.neg(Kind::CreditCard, N::Decimal, |s| {
            values::decimal_luhn(r, style, s);
        });
    }

    /// A ZIP code cell.
    pub(crate) fn n_zip_of(&mut self, zip: u32) {
        self.neg(Kind::UsSsn, N::ZipCode, |s| {
            use std::fmt::Write as _;
            let _ = write!(s, "{zip:05}");
        });
    }

    /// An amount in cents written as `12.34` (no currency sign).
    pub(crate) fn n_cents(&mut self, cents: u64) {
        self.neg(Kind::Phone, N::Amount, |s| {
            use std::fmt::Write as _;
            let _ = write!(s, "{}.{:02}", cents / 100, cents % 100);
        });
    }

    /// A timestamp of `style` (see [`values::timestamp`]).
    pub(crate) fn n_timestamp(&mut self, r: &mut Rng, style: u8) {
        let secs = values::epoch_secs(r);
        let ms = r.below(1000);
        let kind = match style {
            2 => Kind::Phone,
            3 => Kind::CreditCard,
            _ => Kind::DateOfBirth,
        };
        self.neg(kind, N::Timestamp, |s| values::timestamp(secs, ms, style, s));
    }

    /// A UUID in either case.
    pub(crate) fn n_uuid(&mut self, r: &mut Rng) {
        let upper = r.percent(25);
        self.neg(Kind::Secret, N::HexId, |s| values::uuid(r, upper, s));
    }

    /// A SHA-1, SHA-256, MD5 or short git hash.
    pub(crate) fn n_hash(&mut self, r: &mut Rng) {
        let n = r.pick(&[40usize, 64, 32, 7, 12]);
        self.neg(Kind::Secret, N::HexId, |s| values::hex(r, n, s));
    }

    /// A ZIP or ZIP+4 code.
    pub(crate) fn n_zip(&mut self, r: &mut Rng) {
        let (_, _, zip) = values::city(r);
        let plus4 = r.percent(70);
        let ext = r.range(1, 9999);
        self.neg(Kind::UsSsn, N::ZipCode, |s| {
            use std::fmt::Write as _;
            let _ = if plus4 { write!(s, "{zip:05}-{ext:04}") } else { write!(s, "{zip:05}") };
        });
    }

    /// An ISBN-13 or ISBN-10.
    pub(crate) fn n_isbn(&mut self, r: &mut Rng) {
        let thirteen = r.percent(60);
        let kind = if thirteen { Kind::CreditCard } else { Kind::Phone };
        self.neg(kind, N::Isbn, |s| values::isbn(r, thirteen, s));
    }

    /// An SSN-shaped number that breaks the rules, usually dashed.
    pub(crate) fn n_invalid_ssn(&mut self, r: &mut Rng) {
        let d = values::invalid_ssn(r);
        let fmt = if r.percent(85) { SsnFormat::Dashes } else { SsnFormat::Spaces };
        self.neg(Kind::UsSsn, N::InvalidSsn, |s| values::push_ssn(s, &d, fmt));
    }

    /// A bare nine-digit number; the caller must keep SSN/routing words away from it.
    pub(crate) fn n_nine(&mut self, r: &mut Rng) {
        let v = r.range(100_000_000, 999_999_999);
        self.neg(Kind::UsSsn, N::BareNineDigits, |s| {
            s.push_str(&v.to_string());
        });
    }

    /// A routing-number-shaped value with a failing checksum; the caller writes the context.
    pub(crate) fn n_bad_aba(&mut self, r: &mut Rng) {
        let d = values::aba(r, false);
        self.neg(Kind::UsBankRouting, N::BadRoutingChecksum, |s| {
            s.push_str(std::str::from_utf8(&d).expect("ASCII digits"));
        });
    }

    /// An IBAN with wrong check digits.
    pub(crate) fn n_bad_iban(&mut self, r: &mut Rng) {
        let c = r.pick(&values::IBAN_COUNTRIES);
        let grouped = r.percent(50);
        self.neg(Kind::Iban, N::BadIbanChecksum, |s| {
            values::iban(r, c, false, grouped, s);
        });
    }

    /// A version string such as `v2.14.3.1234` (never IPv4-shaped).
    pub(crate) fn n_version(&mut self, r: &mut Rng) {
        let (a, b, c) = (r.range(1, 9), r.range(0, 40), r.range(0, 20));
        let build = r.range(256, 9999);
        let four = r.percent(60);
        self.neg(Kind::Phone, N::VersionOrQuantity, |s| {
            use std::fmt::Write as _;
            let _ = if four { write!(s, "v{a}.{b}.{c}.{build}") } else { write!(s, "{a}.{b}.{c}") };
        });
    }

    /// A quantity-at-price expression (`Qty 12 @ 3.99`).
    pub(crate) fn n_qty(&mut self, r: &mut Rng) {
        let q = r.range(1, 500);
        let (d, c) = (r.range(0, 99), r.below(100));
        self.neg(Kind::Phone, N::VersionOrQuantity, |s| {
            use std::fmt::Write as _;
            let _ = write!(s, "Qty {q} @ {d}.{c:02}");
        });
    }

    /// A money amount with a dollar sign.
    pub(crate) fn n_money(&mut self, r: &mut Rng, max_dollars: u64) {
        self.neg(Kind::CreditCard, N::Amount, |s| {
            s.push('$');
            values::money(r, max_dollars, s);
        });
    }

    /// A percentage.
    pub(crate) fn n_percent(&mut self, r: &mut Rng) {
        let (a, b) = (r.range(0, 99), r.below(100));
        self.neg(Kind::Phone, N::Amount, |s| {
            use std::fmt::Write as _;
            let _ = write!(s, "{a}.{b:02}%");
        });
    }

    /// Something with an `@` that is not an email.
    pub(crate) fn n_email_like(&mut self, r: &mut Rng) {
        let pick = r.below(3);
        let (a, b, c) = (r.range(1, 20), r.range(0, 30), r.range(0, 30));
        let pkg = r.pick(&["lodash", "react", "express", "typescript", "left-pad", "vite"]);
        let handle = r.pick(&["brightleafgoods", "annabakes", "potterylove", "shoplocal"]);
        self.neg(Kind::Email, N::EmailLike, |s| {
            use std::fmt::Write as _;
            let _ = match pick {
                0 => write!(s, "{pkg}@{a}.{b}.{c}"),
                1 => write!(s, "@{handle}"),
                _ => write!(s, "@media"),
            };
        });
    }

    /// The `@media` at-rule of a stylesheet.
    pub(crate) fn n_email_like_media(&mut self) {
        self.neg(Kind::Email, N::EmailLike, |s| s.push_str("@media"));
    }

    /// A date that is not a birth date; the caller writes a non-birth context.
    pub(crate) fn n_date(&mut self, r: &mut Rng) {
        let d = Date::random(r, 2019, 2025);
        let us = r.percent(40);
        self.neg(Kind::DateOfBirth, N::NonBirthDate, |s| d.push(us, s));
    }
}

//! The names written into `truth.jsonl` and `negatives.jsonl`.
//!
//! These strings are the contract with the detector's accuracy harness: `Kind::as_str` matches
//! the detector's own kind identifiers, and `NegativeCategory::as_str` names the trap a hard
//! negative sets.

use std::fmt;

/// A kind of planted sensitive value, named exactly as the detector names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Kind {
    /// A payment card number (PAN), Luhn-valid with a real issuer prefix.
    CreditCard,
    /// A US social-security number valid under the post-2011 rules.
    UsSsn,
    /// An international bank account number with correct mod-97 check digits.
    Iban,
    /// A US ABA routing number, always planted with a context phrase or column header.
    UsBankRouting,
    /// An email address.
    Email,
    /// A telephone number valid under its country's numbering plan.
    Phone,
    /// A person's full name, planted only in CSV `name`/`full_name` cells and JSON `"name"`
    /// values.
    PersonName,
    /// A street line (CSV `address` cell, JSON `"address"` value) or a full US address in prose.
    StreetAddress,
    /// A date of birth next to a birth-date context or under a `dob` column.
    DateOfBirth,
    /// A credential: cloud or API key, token, private-key header, or a password inside a URL.
    Secret,
}

impl Kind {
    /// Every kind, in the order used for counts.
    pub const ALL: [Kind; 10] = [
        Kind::CreditCard,
        Kind::UsSsn,
        Kind::Iban,
        Kind::UsBankRouting,
        Kind::Email,
        Kind::Phone,
        Kind::PersonName,
        Kind::StreetAddress,
        Kind::DateOfBirth,
        Kind::Secret,
    ];

    /// The kinds the accuracy test measures.
    pub const MEASURED: [Kind; 6] =
        [Kind::CreditCard, Kind::UsSsn, Kind::Iban, Kind::UsBankRouting, Kind::Email, Kind::Phone];

    /// The identifier written in the `kind` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::CreditCard => "credit_card",
            Kind::UsSsn => "us_ssn",
            Kind::Iban => "iban",
            Kind::UsBankRouting => "us_bank_routing",
            Kind::Email => "email",
            Kind::Phone => "phone",
            Kind::PersonName => "person_name",
            Kind::StreetAddress => "street_address",
            Kind::DateOfBirth => "date_of_birth",
            Kind::Secret => "secret",
        }
    }

    /// The position of this kind in [`Kind::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The trap a hard negative sets: why a naive detector might report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum NegativeCategory {
    /// A 13–19 digit number with a card prefix that fails Luhn.
    LuhnFail,
    /// A Luhn-valid, card-prefixed number that is an order, invoice, tracking or SKU id (the
    /// keyword stands within 20 bytes before it, or it sits under such a column or JSON key).
    LuhnValidId,
    /// A decimal fraction, CSS length, coordinate or scientific number whose digits pass Luhn.
    Decimal,
    /// An ISO-8601 or log timestamp, or epoch seconds / milliseconds.
    Timestamp,
    /// A UUID, SHA-1, SHA-256, MD5 or git commit id.
    HexId,
    /// A ZIP or ZIP+4 code.
    ZipCode,
    /// An ISBN-10 or ISBN-13.
    Isbn,
    /// An SSN-shaped number that breaks the SSN rules (area 000/666, group 00, serial 0000, or a
    /// published sample number), often right after an "SSN" label.
    InvalidSsn,
    /// A bare nine-digit number with no SSN or routing context (batch, job, quantity).
    BareNineDigits,
    /// A nine-digit number after a routing-number phrase whose ABA checksum fails.
    BadRoutingChecksum,
    /// An IBAN-shaped string whose mod-97 check digits are wrong.
    BadIbanChecksum,
    /// A version string or a quantity-at-price expression.
    VersionOrQuantity,
    /// A price, total, balance or percentage.
    Amount,
    /// Something with an `@` that is not an email (`pkg@1.2.3`, `@handle`, `@media`).
    EmailLike,
    /// A date that is not a birth date (order date, ship date).
    NonBirthDate,
}

impl NegativeCategory {
    /// Every category, in the order used for counts.
    pub const ALL: [NegativeCategory; 15] = [
        NegativeCategory::LuhnFail,
        NegativeCategory::LuhnValidId,
        NegativeCategory::Decimal,
        NegativeCategory::Timestamp,
        NegativeCategory::HexId,
        NegativeCategory::ZipCode,
        NegativeCategory::Isbn,
        NegativeCategory::InvalidSsn,
        NegativeCategory::BareNineDigits,
        NegativeCategory::BadRoutingChecksum,
        NegativeCategory::BadIbanChecksum,
        NegativeCategory::VersionOrQuantity,
        NegativeCategory::Amount,
        NegativeCategory::EmailLike,
        NegativeCategory::NonBirthDate,
    ];

    /// The identifier written in the `category` field of `negatives.jsonl`.
    pub fn as_str(self) -> &'static str {
        match self {
            NegativeCategory::LuhnFail => "luhn_fail",
            NegativeCategory::LuhnValidId => "luhn_valid_id",
            NegativeCategory::Decimal => "decimal",
            NegativeCategory::Timestamp => "timestamp",
            NegativeCategory::HexId => "hex_id",
            NegativeCategory::ZipCode => "zip_code",
            NegativeCategory::Isbn => "isbn",
            NegativeCategory::InvalidSsn => "invalid_ssn",
            NegativeCategory::BareNineDigits => "bare_nine_digits",
            NegativeCategory::BadRoutingChecksum => "bad_routing_checksum",
            NegativeCategory::BadIbanChecksum => "bad_iban_checksum",
            NegativeCategory::VersionOrQuantity => "version_or_quantity",
            NegativeCategory::Amount => "amount",
            NegativeCategory::EmailLike => "email_like",
            NegativeCategory::NonBirthDate => "non_birth_date",
        }
    }

    /// The position of this category in [`NegativeCategory::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for NegativeCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

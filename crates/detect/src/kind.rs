//! The kinds of customer data custody recognises, and how much each one matters.

use std::fmt;
use std::str::FromStr;

/// A kind of sensitive value.
///
/// The string forms (`credit_card`, `us_ssn`, …) are part of the stable output contract.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Kind {
    /// A payment card number (PAN) that passes Luhn and the issuer table.
    CreditCard,
    /// A US social-security number under the post-2011 randomisation rules.
    UsSsn,
    /// A US individual taxpayer identification number.
    UsItin,
    /// A US bank routing (ABA) number, only with context.
    UsBankRouting,
    /// An international bank account number (mod-97 and per-country length).
    Iban,
    /// An email address.
    Email,
    /// A telephone number valid under its numbering plan.
    Phone,
    /// A date of birth: a valid date with a birth-date context.
    DateOfBirth,
    /// A US passport number, only with context.
    UsPassport,
    /// A US driver's license number, only with context.
    UsDriversLicense,
    /// An IPv4 or IPv6 address.
    IpAddress,
    /// A credential: API key, token, private key or password.
    Secret,
    /// A person's name, only where structure says so (column header, JSON key).
    PersonName,
    /// A street address: a structured field or a full address pattern.
    StreetAddress,
}

impl Kind {
    /// Every kind, in output order.
    pub const ALL: [Kind; 14] = [
        Kind::CreditCard,
        Kind::UsSsn,
        Kind::UsItin,
        Kind::UsBankRouting,
        Kind::Iban,
        Kind::Email,
        Kind::Phone,
        Kind::DateOfBirth,
        Kind::UsPassport,
        Kind::UsDriversLicense,
        Kind::IpAddress,
        Kind::Secret,
        Kind::PersonName,
        Kind::StreetAddress,
    ];

    /// The stable identifier used in every output format.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::CreditCard => "credit_card",
            Kind::UsSsn => "us_ssn",
            Kind::UsItin => "us_itin",
            Kind::UsBankRouting => "us_bank_routing",
            Kind::Iban => "iban",
            Kind::Email => "email",
            Kind::Phone => "phone",
            Kind::DateOfBirth => "date_of_birth",
            Kind::UsPassport => "us_passport",
            Kind::UsDriversLicense => "us_drivers_license",
            Kind::IpAddress => "ip_address",
            Kind::Secret => "secret",
            Kind::PersonName => "person_name",
            Kind::StreetAddress => "street_address",
        }
    }

    /// A plain-words label for people who are not technical.
    pub fn label(self) -> &'static str {
        match self {
            Kind::CreditCard => "payment card number",
            Kind::UsSsn => "social security number",
            Kind::UsItin => "taxpayer id (ITIN)",
            Kind::UsBankRouting => "bank routing number",
            Kind::Iban => "bank account (IBAN)",
            Kind::Email => "email address",
            Kind::Phone => "phone number",
            Kind::DateOfBirth => "date of birth",
            Kind::UsPassport => "passport number",
            Kind::UsDriversLicense => "driver's license number",
            Kind::IpAddress => "IP address",
            Kind::Secret => "password or access key",
            Kind::PersonName => "person's name",
            Kind::StreetAddress => "street address",
        }
    }

    /// How much harm a leak of one value of this kind does, used to rank files by risk.
    ///
    /// Values that enable fraud or identity theft on their own (cards, SSNs, credentials)
    /// weigh most; contact details weigh least.
    pub fn risk_weight(self) -> f64 {
        match self {
            Kind::CreditCard | Kind::UsSsn => 10.0,
            Kind::UsItin | Kind::UsPassport | Kind::Secret => 8.0,
            Kind::Iban | Kind::UsBankRouting | Kind::UsDriversLicense => 6.0,
            Kind::DateOfBirth => 4.0,
            Kind::Phone | Kind::Email | Kind::StreetAddress => 2.0,
            Kind::PersonName | Kind::IpAddress => 1.0,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a kind name that custody does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKind(pub String);

impl fmt::Display for UnknownKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        write!(f, "unknown kind '{}'; known kinds: {}", self.0, names.join(", "))
    }
}

impl std::error::Error for UnknownKind {}

impl FromStr for Kind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace('-', "_");
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == wanted)
            .ok_or_else(|| UnknownKind(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for kind in Kind::ALL {
            assert_eq!(kind.as_str().parse::<Kind>().unwrap(), kind);
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(serde_json::from_str::<Kind>(&json).unwrap(), kind);
        }
        assert_eq!("credit-card".parse::<Kind>().unwrap(), Kind::CreditCard);
        let err = "cards".parse::<Kind>().unwrap_err().to_string();
        assert!(err.contains("credit_card"), "{err}");
    }
}

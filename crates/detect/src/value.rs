//! A customer value held in memory, and the masks that make it safe to show.
//!
//! [`SensitiveValue`] is the only way a matched value leaves this crate. Its `Debug` and
//! `Display` never print the value; callers choose between [`SensitiveValue::masked`] (the
//! default everywhere) and [`SensitiveValue::expose`] (an explicit, greppable decision).

use std::fmt;

use crate::Kind;

/// A matched customer value. Printing it shows a redaction, never the value.
#[derive(Clone, PartialEq, Eq)]
pub struct SensitiveValue(String);

impl SensitiveValue {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The raw value. Call only where the user asked to see it (`--reveal`, a purpose-bound
    /// read) or where it is needed for a computation that does not display it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The value masked as the output contract says for `kind`.
    pub fn masked(&self, kind: Kind) -> String {
        mask(kind, &self.0)
    }

    /// Length of the value in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SensitiveValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SensitiveValue(<redacted {} bytes>)", self.0.len())
    }
}

impl fmt::Display for SensitiveValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Masks `value` for display.
///
/// - cards keep the last 4 digits (`**** **** **** 1111`), SSNs and ITINs the last 4;
/// - emails keep the first character and the domain (`j***@example.com`);
/// - phones and routing numbers keep the last 4 digits; IBANs the country and the last 4;
/// - secrets keep their first 4 characters (enough to tell an AWS key from a Stripe key);
/// - names keep initials, addresses the house number's first digit, dates nothing.
///
/// Separators (spaces, dashes, dots, parentheses) are kept so the shape stays readable.
pub fn mask(kind: Kind, value: &str) -> String {
    match kind {
        Kind::CreditCard => {
            // Cards print as groups of four counted from the end, whatever their original
            // grouping, so the last four digits are always one group (a 15-digit card
            // grouped 4-6-5 would otherwise show `***0 936`).
            let digits: Vec<char> = value.chars().filter(char::is_ascii_digit).collect();
            let keep = 4.min(digits.len());
            let hidden = digits.len() - keep;
            let mut out = String::new();
            for (i, d) in digits.iter().enumerate() {
                if i > 0 && (digits.len() - i).is_multiple_of(4) {
                    out.push(' ');
                }
                out.push(if i < hidden { '*' } else { *d });
            }
            out
        }
        Kind::UsSsn
        | Kind::UsItin
        | Kind::Phone
        | Kind::UsBankRouting
        | Kind::UsPassport
        | Kind::UsDriversLicense => keep_last_alnum(
            value,
            if kind == Kind::UsPassport || kind == Kind::UsDriversLicense { 3 } else { 4 },
        ),
        Kind::Email => match value.rfind('@') {
            Some(at) if at > 0 => {
                let first = value.chars().next().unwrap_or('*');
                format!("{first}***{}", &value[at..])
            }
            _ => star_all(value),
        },
        Kind::Iban => {
            let compact: Vec<char> = value.chars().filter(|c| !c.is_whitespace()).collect();
            if compact.len() < 8 {
                return star_all(value);
            }
            let n = compact.len();
            compact
                .iter()
                .enumerate()
                .map(|(i, c)| if i < 2 || i >= n - 4 { *c } else { '*' })
                .collect()
        }
        Kind::Secret => {
            let keep: String = value.chars().take(4).collect();
            let rest = value.chars().count().saturating_sub(4).min(16);
            format!("{keep}{}", "*".repeat(rest.max(4)))
        }
        Kind::PersonName => value
            .split_whitespace()
            .map(|w| {
                let mut chars = w.chars();
                let first = chars.next().unwrap_or('*');
                format!("{first}{}", "*".repeat(chars.count().max(1)))
            })
            .collect::<Vec<_>>()
            .join(" "),
        Kind::StreetAddress | Kind::DateOfBirth | Kind::IpAddress => {
            let mut seen_first = kind != Kind::StreetAddress;
            value
                .chars()
                .map(|c| {
                    if c.is_alphanumeric() {
                        if seen_first {
                            '*'
                        } else {
                            seen_first = true;
                            c
                        }
                    } else {
                        c
                    }
                })
                .collect()
        }
    }
}

/// Stars every alphanumeric character except the last `keep`, keeping separators.
fn keep_last_alnum(value: &str, keep: usize) -> String {
    let total = value.chars().filter(|c| c.is_alphanumeric()).count();
    let hide = total.saturating_sub(keep);
    let mut seen = 0;
    value
        .chars()
        .map(|c| {
            if c.is_alphanumeric() {
                seen += 1;
                if seen <= hide { '*' } else { c }
            } else {
                c
            }
        })
        .collect()
}

fn star_all(value: &str) -> String {
    value.chars().map(|c| if c.is_alphanumeric() { '*' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn review_22_card_masks_keep_the_last_four_together() {
        // American Express, grouped 4-6-5 as printed on the card.
        assert_eq!(mask(Kind::CreditCard, "3782 822463 10005"), "*** **** **** 0005");
        assert_eq!(mask(Kind::CreditCard, "3714 496353 98431"), "*** **** **** 8431");
        // Diners Club, 14 digits grouped 4-6-4; a 19-digit card.
        assert_eq!(mask(Kind::CreditCard, "3056 930902 5904"), "** **** **** 5904");
        assert_eq!(mask(Kind::CreditCard, "6011000990139424123"), "*** **** **** **** 4123");
    }

    #[test]
    fn contract_masks() {
        assert_eq!(mask(Kind::CreditCard, "4111111111111111"), "**** **** **** 1111");
        assert_eq!(mask(Kind::CreditCard, "4111-1111-1111-1111"), "**** **** **** 1111");
        assert_eq!(mask(Kind::CreditCard, "378282246310005"), "*** **** **** 0005");
        assert_eq!(mask(Kind::UsSsn, "123-45-6789"), "***-**-6789");
        assert_eq!(mask(Kind::Email, "jane.doe@example.com"), "j***@example.com");
        assert_eq!(mask(Kind::Phone, "(415) 837-2671"), "(***) ***-2671");
        assert_eq!(mask(Kind::Iban, "DE89 3704 0044 0532 0130 00"), "DE****************3000");
        assert_eq!(mask(Kind::Secret, "AKIAIOSFODNN7EXAMPLE"), "AKIA****************");
        assert_eq!(mask(Kind::PersonName, "Jane Doe"), "J*** D**");
        assert_eq!(mask(Kind::DateOfBirth, "1984-07-23"), "****-**-**");
        assert_eq!(mask(Kind::StreetAddress, "742 Evergreen Terrace"), "7** ********* *******");
    }

    #[test]
    fn debug_and_display_never_show_the_value() {
        let v = SensitiveValue::new("4111111111111111");
        assert!(!format!("{v:?}").contains("4111"));
        assert!(!format!("{v}").contains("4111"));
        assert!(!format!("{:?}", Some(&v)).contains("1111"));
    }

    #[test]
    fn masks_never_contain_the_full_value() {
        for (kind, value) in [
            (Kind::CreditCard, "5555555555554444"),
            (Kind::UsSsn, "078051120"),
            (Kind::Email, "a@b.co"),
            (Kind::Iban, "GB82WEST12345698765432"),
            (Kind::Secret, "sk_live_abcdefghijklmnopqrstuvwx"),
        ] {
            let m = mask(kind, value);
            assert_ne!(m, value);
            assert!(!m.contains(&value[..value.len() - 1]), "{kind}: {m}");
        }
    }
}

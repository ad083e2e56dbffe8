//! Field validation and normalisation. A value that passes is stored in one canonical form,
//! so equal values give equal blind indexes; errors say which rule failed, never the value.

use custody_detect::validate;

use crate::{Error, FieldType};

fn invalid(field: &str, rule: &'static str) -> Error {
    Error::Invalid { field: field.to_string(), rule }
}

/// Validates `raw` for a field of type `ty` named `field` and returns its canonical form.
pub fn normalize(field: &str, ty: FieldType, raw: &str) -> Result<String, Error> {
    let value = raw.trim();
    if value.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    match ty {
        FieldType::Text => {
            if value.len() > 4096 {
                return Err(invalid(field, "must be at most 4096 bytes"));
            }
            Ok(value.to_string())
        }
        FieldType::Email => {
            let lower = value.to_ascii_lowercase();
            let ok = lower.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !lower.contains(char::is_whitespace)
            });
            if ok { Ok(lower) } else { Err(invalid(field, "must be an email address")) }
        }
        FieldType::Phone => validate::phone_e164(value)
            .ok_or_else(|| invalid(field, "must be a valid phone number")),
        FieldType::CardNumber => {
            let digits: String = value.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
            let ok = digits.bytes().all(|b| b.is_ascii_digit())
                && validate::luhn(digits.as_bytes())
                && validate::card_brand(digits.as_bytes()).is_some();
            if ok { Ok(digits) } else { Err(invalid(field, "must be a valid card number")) }
        }
        FieldType::CardExpiry => {
            let ok = value.len() == 5
                && value.as_bytes()[2] == b'/'
                && value[..2].parse::<u8>().is_ok_and(|m| (1..=12).contains(&m))
                && value[3..].bytes().all(|b| b.is_ascii_digit());
            if ok { Ok(value.to_string()) } else { Err(invalid(field, "must be MM/YY")) }
        }
        FieldType::Ssn => {
            let digits: String = value.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
            if digits.len() == 9 && validate::is_valid_ssn(digits.as_bytes()) {
                Ok(format!("{}-{}-{}", &digits[..3], &digits[3..5], &digits[5..]))
            } else {
                Err(invalid(field, "must be a valid social security number"))
            }
        }
        FieldType::Date => {
            let parts: Vec<&str> = value.split('-').collect();
            let ok = parts.len() == 3
                && parts[0].len() == 4
                && parts[1].len() == 2
                && parts[2].len() == 2
                && match (parts[0].parse(), parts[1].parse(), parts[2].parse()) {
                    (Ok(y), Ok(m), Ok(d)) => validate::is_plausible_birth_date(y, m, d, 9999),
                    _ => false,
                };
            if ok {
                Ok(value.to_string())
            } else {
                Err(invalid(field, "must be a date YYYY-MM-DD"))
            }
        }
        FieldType::Money => {
            let ok = value.split_once('.').map_or(
                value.bytes().all(|b| b.is_ascii_digit()),
                |(u, c)| {
                    !u.is_empty()
                        && u.bytes().all(|b| b.is_ascii_digit())
                        && c.len() == 2
                        && c.bytes().all(|b| b.is_ascii_digit())
                },
            );
            if ok {
                Ok(value.to_string())
            } else {
                Err(invalid(field, "must be an amount with two decimals, like 7.99"))
            }
        }
        FieldType::Reference => Ok(value.to_string()),
        FieldType::Street | FieldType::Unit | FieldType::City => {
            let folded = value.split_whitespace().collect::<Vec<_>>().join(" ");
            // As long as free text may be: an address kept whole as its street (one that
            // could not be read into parts) must still fit.
            if folded.len() > 4096 {
                return Err(invalid(field, "must be at most 4096 bytes"));
            }
            Ok(folded)
        }
        FieldType::Country => crate::address::country_code(value)
            .map(str::to_string)
            .ok_or_else(|| invalid(field, "must be an ISO 3166-1 country code (US, CA, GB, …)")),
        // Completed with the record's country in `address::normalize_parts`; on its own (a
        // search) a full code or a name that only one known country has becomes its code.
        FieldType::Region => {
            let found = ["US", "CA", "AU"]
                .iter()
                .filter_map(|c| crate::address::region_code(c, value))
                .collect::<Vec<_>>();
            match found.as_slice() {
                [code] => Ok(code.clone()),
                _ if value.chars().count() > 64 => {
                    Err(invalid(field, "must be at most 64 characters"))
                }
                _ => Ok(value.split_whitespace().collect::<Vec<_>>().join(" ").to_uppercase()),
            }
        }
        // Its shape is checked against the record's country in `address::normalize_parts`.
        FieldType::PostalCode => {
            crate::address::postal_code(None, value).map_err(|rule| invalid(field, rule))
        }
        FieldType::Address => Err(invalid(field, "is an address: give its parts")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms() {
        assert_eq!(
            normalize("email", FieldType::Email, " Jane.Doe@Example.COM ").unwrap(),
            "jane.doe@example.com"
        );
        assert_eq!(normalize("phone", FieldType::Phone, "(415) 837-2671").unwrap(), "+14158372671");
        assert_eq!(
            normalize("card", FieldType::CardNumber, "4539 5260 1815 9083").unwrap(),
            "4539526018159083"
        );
        assert_eq!(normalize("ssn", FieldType::Ssn, "773 12 3456").unwrap(), "773-12-3456");
        assert_eq!(normalize("dob", FieldType::Date, "1984-02-29").unwrap(), "1984-02-29");
        assert_eq!(normalize("exp", FieldType::CardExpiry, "09/27").unwrap(), "09/27");
        assert_eq!(normalize("amount", FieldType::Money, "86.40").unwrap(), "86.40");
    }

    #[test]
    fn invalid_values_name_the_rule_not_the_value() {
        for (ty, raw) in [
            (FieldType::Email, "jane.example.com"),
            (FieldType::Phone, "123-456-7890"),
            (FieldType::CardNumber, "4539 5260 1815 9084"),
            (FieldType::Ssn, "666-12-3456"),
            (FieldType::Date, "1985-02-29"),
            (FieldType::CardExpiry, "13/27"),
            (FieldType::Money, "12.5"),
            (FieldType::Text, "   "),
        ] {
            let err = normalize("f", ty, raw).unwrap_err().to_string();
            assert!(!err.contains(raw.trim()) || raw.trim().is_empty(), "{err}");
            assert!(err.starts_with("field 'f'"), "{err}");
        }
    }
}

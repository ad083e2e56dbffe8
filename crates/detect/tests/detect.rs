//! Behaviour of the detector through its public API: true examples, hard negatives, and
//! regression tests for the misses of the peers we measured against.

use custody_detect::{Chunk, Detection, Detector, DetectorConfig, Kind, Structure};
use proptest::prelude::*;

fn detect_with(text: &str, structure: &Structure) -> Vec<Detection> {
    let det = Detector::new(DetectorConfig::default());
    let mut out = Vec::new();
    det.detect(&Chunk::whole(text.as_bytes()), structure, &mut out);
    out
}

fn detect(text: &str) -> Vec<(Kind, String)> {
    detect_with(text, &Structure::Plain)
        .into_iter()
        .map(|d| (d.kind, d.value.expose().to_string()))
        .collect()
}

fn kinds_of(text: &str, kind: Kind) -> Vec<String> {
    detect(text).into_iter().filter(|(k, _)| *k == kind).map(|(_, v)| v).collect()
}

fn one(text: &str, kind: Kind, value: &str) {
    assert_eq!(kinds_of(text, kind), vec![value.to_string()], "in {text:?}: {:?}", detect(text));
}

fn none(text: &str, kind: Kind) {
    assert!(kinds_of(text, kind).is_empty(), "expected no {kind} in {text:?}: {:?}", detect(text));
}

#[test]
fn cards_plain_and_grouped() {
    one("charge 4539148803436467 today", Kind::CreditCard, "4539148803436467");
    one("card 4539 1488 0343 6467.", Kind::CreditCard, "4539 1488 0343 6467");
    one("card 4539-1488-0343-6467", Kind::CreditCard, "4539-1488-0343-6467");
    one("amex 3714 496353 98431", Kind::CreditCard, "3714 496353 98431");
    one("Qty 2 4539 1488 0343 6467", Kind::CreditCard, "4539 1488 0343 6467");
    one("(4539148803436467)", Kind::CreditCard, "4539148803436467");
}

#[test]
fn two_series_mastercard_regression() {
    // Presidio's regex and bulk_extractor's IIN table miss the 2221–2720 range.
    one("mc 2223 0000 4841 0010", Kind::CreditCard, "2223 0000 4841 0010");
    one("2720992720992729", Kind::CreditCard, "2720992720992729");
}

#[test]
fn test_cards_are_flagged_with_low_confidence() {
    let found = detect_with("Visa card 4111 1111 1111 1111", &Structure::Plain);
    assert_eq!(found.len(), 1);
    assert!(found[0].test_card);
    assert!(found[0].confidence <= 0.35);
}

#[test]
fn card_hard_negatives() {
    for text in [
        "4539148803436468",     // Luhn fails
        "0.4111111111111111",   // float
        "-0.5309136012499991%", // CSS decimal (arachni#647)
        "margin: 0.4539148803436467em",
        "4.539148803436467e+15",
        "id=a4539148803436467",
        "4539148803436467abc",
        "sha 3f4539148803436467ab",
        "123e4567-e89b-12d3-a456-426614174000",
        "550e8400-e29b-41d4-a716-446655440000",
        "ISBN 978-3-16-148410-0",
        "9111111111111111", // no issuer
        "lat=51.4539148803436467",
        "4539148803436467@example.com",
    ] {
        none(text, Kind::CreditCard);
    }
}

#[test]
fn negative_words_stay_in_their_sentence() {
    // Regression (throughput corpus): "product" ends a sentence before the card.
    one(
        "the product zoom broke, reported it. 4956-8538-0221-6521",
        Kind::CreditCard,
        "4956-8538-0221-6521",
    );
}

#[test]
fn luhn_valid_order_ids_are_not_cards() {
    for text in [
        "Order #4539148803436467 shipped",
        "Invoice # 2720998877665544",
        "tracking number 4012888812345678",
        "SKU 6011000990139424",
    ] {
        none(text, Kind::CreditCard);
    }
}

#[test]
fn card_straddling_a_chunk_boundary_is_found_once() {
    let det = Detector::new(DetectorConfig::default());
    let mut text = "x".repeat(5000);
    text.push_str(" card 4539 1488 0343 6467 end ");
    text.push_str(&"y".repeat(5000));
    let bytes = text.as_bytes();
    let card_at = text.find("4539").unwrap();
    // Split everywhere around the card; each split reports the card exactly once.
    let overlap = det.overlap();
    for split in card_at - 30..card_at + 30 {
        let mut found = Vec::new();
        let first = Chunk {
            bytes: &bytes[..(split + overlap).min(bytes.len())],
            stream_start: true,
            stream_end: false,
            emit_from: 0,
            emit_to: split,
        };
        det.detect(&first, &Structure::Plain, &mut found);
        let base = split - overlap;
        let second = Chunk {
            bytes: &bytes[base..],
            stream_start: false,
            stream_end: true,
            emit_from: overlap,
            emit_to: bytes.len() - base,
        };
        let mut later = Vec::new();
        det.detect(&second, &Structure::Plain, &mut later);
        let starts: Vec<usize> =
            found.iter().map(|d| d.start).chain(later.iter().map(|d| d.start + base)).collect();
        assert_eq!(starts, vec![card_at], "split at {split}");
    }
}

#[test]
fn ssns() {
    one("SSN 123-45-6780", Kind::UsSsn, "123-45-6780");
    one("123 45 6780", Kind::UsSsn, "123 45 6780");
    one("SSN: 123456780", Kind::UsSsn, "123456780");
    // Areas 773–899 (ClamAV's MAX_AREA is 772).
    one("773-12-3456", Kind::UsSsn, "773-12-3456");
    one("ssn=899451234", Kind::UsSsn, "899451234");
    for text in [
        "000-12-3456",
        "666-12-3456",
        "123-00-4567",
        "123-45-0000",
        "078-05-1120",
        "batch 482913745 processed",
        "123456780",
        "12-345-6789",
    ] {
        none(text, Kind::UsSsn);
    }
}

#[test]
fn itins_and_routing_numbers() {
    one("ITIN 912-70-1234", Kind::UsItin, "912-70-1234");
    one("routing number 021000021", Kind::UsBankRouting, "021000021");
    one("ABA: 011000015", Kind::UsBankRouting, "011000015");
    none("021000021", Kind::UsBankRouting);
    none("routing number 021000022", Kind::UsBankRouting);
}

#[test]
fn ibans() {
    one("IBAN DE89 3704 0044 0532 0130 00", Kind::Iban, "DE89 3704 0044 0532 0130 00");
    one("pay to GB82WEST12345698765432.", Kind::Iban, "GB82WEST12345698765432");
    one("GB82 WEST 1234 5698 7654 32", Kind::Iban, "GB82 WEST 1234 5698 7654 32");
    one("FR14 2004 1010 0505 0001 3M02 606", Kind::Iban, "FR14 2004 1010 0505 0001 3M02 606");
    none("DE89 3704 0044 0532 0130 01", Kind::Iban);
    none("XDE89370400440532013000", Kind::Iban);
    // Regression (throughput corpus): a lower-case hex session id that passes mod-97.
    none(r#""session":"be443aad45c1186f""#, Kind::Iban);
}

#[test]
fn emails() {
    one("mail jane.doe@example.com now", Kind::Email, "jane.doe@example.com");
    one("<j.o'brien+shop@mail.example.co.uk>", Kind::Email, "j.o'brien+shop@mail.example.co.uk");
    for text in [
        "logo@2x.png",
        "user@localhost",
        "a@b",
        "@example.com",
        "postgres://u:pw@db.internal:5432/x",
    ] {
        none(text, Kind::Email);
    }
}

#[test]
fn phones() {
    one("call (415) 837-2671", Kind::Phone, "(415) 837-2671");
    one("415-837-2671", Kind::Phone, "415-837-2671");
    one("415.837.2671", Kind::Phone, "415.837.2671");
    one("+1 415 837 2671", Kind::Phone, "+1 415 837 2671");
    one("+14158372671", Kind::Phone, "+14158372671");
    one("+1 (415) 837-2671", Kind::Phone, "+1 (415) 837-2671");
    one("+44 20 7946 0958", Kind::Phone, "+44 20 7946 0958");
    one("020 7946 0958", Kind::Phone, "020 7946 0958");
    one("+49 30 12345678", Kind::Phone, "+49 30 12345678");
    one("+33 1 23 45 67 89", Kind::Phone, "+33 1 23 45 67 89");
    one("01 23 45 67 89", Kind::Phone, "01 23 45 67 89");
    one("phone: 4158372671", Kind::Phone, "4158372671");
    for text in [
        "62704-1234",
        "1709648521",
        "2024-03-05 14:22:01",
        "Qty 12 @ 3.99",
        "v2.14.3.1234",
        "978-3-16-148410-0",
        "123-456-7890",
        "$1,234,567.89",
    ] {
        none(text, Kind::Phone);
    }
}

#[test]
fn dates_of_birth_need_context() {
    one("DOB: 1984-07-23", Kind::DateOfBirth, "1984-07-23");
    one("date of birth 07/23/1984", Kind::DateOfBirth, "07/23/1984");
    one("born 23.07.1984", Kind::DateOfBirth, "23.07.1984");
    none("shipped 2024-03-05", Kind::DateOfBirth);
    none("DOB: 1984-13-45", Kind::DateOfBirth);
}

#[test]
fn passports_and_licenses_need_context() {
    one("passport no. 123456789", Kind::UsPassport, "123456789");
    one("Passport: A12345678", Kind::UsPassport, "A12345678");
    one("driver's license D1234567", Kind::UsDriversLicense, "D1234567");
    none("A12345678", Kind::UsPassport);
    none("D1234567", Kind::UsDriversLicense);
}

#[test]
fn ip_addresses() {
    one("from 203.0.113.42 at", Kind::IpAddress, "203.0.113.42");
    one("client 2001:db8::8a2e:370:7334 at", Kind::IpAddress, "2001:db8::8a2e:370:7334");
    one("link fe80::1ff:fe23:4567:890a up", Kind::IpAddress, "fe80::1ff:fe23:4567:890a");
    none("version 1.2.3.4", Kind::IpAddress);
    none("v1.2.3.4", Kind::IpAddress);
    none("999.1.1.1", Kind::IpAddress);
    none("at 10:23:45 and 00:1a:2b:3c:4d:5e", Kind::IpAddress);
}

#[test]
fn csv_headers_give_context_and_names() {
    let csv = "id,full_name,email,phone,ssn,order_id,address\n1,Jane Doe,jane@example.com,4158372671,123456780,4539148803436467,742 Evergreen Terrace\n";
    let header = csv.lines().next().unwrap();
    let structure = Structure::from_header(header.as_bytes()).unwrap();
    let found: Vec<(Kind, String)> = detect_with(csv, &structure)
        .into_iter()
        .map(|d| (d.kind, d.value.expose().to_string()))
        .collect();
    assert_eq!(
        found,
        vec![
            (Kind::PersonName, "Jane Doe".to_string()),
            (Kind::Email, "jane@example.com".to_string()),
            (Kind::Phone, "4158372671".to_string()),
            (Kind::UsSsn, "123456780".to_string()),
            (Kind::StreetAddress, "742 Evergreen Terrace".to_string()),
        ]
    );
}

#[test]
fn a_data_row_is_not_a_header() {
    assert!(Structure::from_header(b"Jane Doe,jane@example.com,4158372671").is_none());
    assert!(Structure::from_header(b"just one field").is_none());
}

#[test]
fn json_keys_give_names_but_not_product_names() {
    let json = r#"{"customer": {"name": "Jane Doe", "address": "742 Evergreen Terrace"}, "items": [{"name": "Blue Mug", "sku": "4539148803436467"}, {"name": "Red Mug"}], "product": {"name": "Tea"}}"#;
    let found = detect(json);
    assert!(found.contains(&(Kind::PersonName, "Jane Doe".into())), "{found:?}");
    assert!(found.contains(&(Kind::StreetAddress, "742 Evergreen Terrace".into())), "{found:?}");
    for thing in ["Blue Mug", "Red Mug", "Tea"] {
        assert!(!found.iter().any(|(_, v)| v == thing), "{thing}: {found:?}");
    }
    assert!(!found.iter().any(|(k, _)| *k == Kind::CreditCard), "{found:?}");
}

#[test]
fn full_addresses_in_prose() {
    one(
        "Ship to 123 Main St, Springfield, IL 62704 please",
        Kind::StreetAddress,
        "123 Main St, Springfield, IL 62704",
    );
    one(
        "1600 Pennsylvania Avenue NW, Washington, DC 20500",
        Kind::StreetAddress,
        "1600 Pennsylvania Avenue NW, Washington, DC 20500",
    );
    none("Jordan walked down Main Street", Kind::StreetAddress);
    none("Springfield, IL 62704", Kind::StreetAddress);
}

#[test]
fn names_are_never_guessed_from_prose() {
    assert!(detect("Jane Doe called about her order").is_empty());
}

#[test]
fn debug_output_of_detections_masks_values() {
    let found =
        detect_with("card 4539 1488 0343 6467 ssn 123-45-6780 jane@example.com", &Structure::Plain);
    assert_eq!(found.len(), 3);
    let debug = format!("{found:?}");
    for secret in ["4539", "6780", "jane@"] {
        assert!(!debug.contains(secret), "{secret} leaked in {debug}");
    }
}

proptest! {
    /// Splitting a buffer anywhere never loses or duplicates a detection.
    #[test]
    fn chunking_is_invisible(prefix in "[a-z ]{0,300}", split_frac in 0.0f64..1.0) {
        let text = format!("{prefix} SSN 123-45-6780, card 4539 1488 0343 6467, mail jane@example.com, IBAN DE89 3704 0044 0532 0130 00 end");
        let det = Detector::new(DetectorConfig::default());
        let bytes = text.as_bytes();
        let mut whole = Vec::new();
        det.detect(&Chunk::whole(bytes), &Structure::Plain, &mut whole);
        let split = (bytes.len() as f64 * split_frac) as usize;
        let overlap = det.overlap();
        let mut parts = Vec::new();
        det.detect(&Chunk { bytes: &bytes[..(split + overlap).min(bytes.len())], stream_start: true, stream_end: split + overlap >= bytes.len(), emit_from: 0, emit_to: split }, &Structure::Plain, &mut parts);
        let base = split.saturating_sub(overlap);
        let mut later = Vec::new();
        det.detect(&Chunk { bytes: &bytes[base..], stream_start: base == 0, stream_end: true, emit_from: split - base, emit_to: bytes.len() - base }, &Structure::Plain, &mut later);
        let a: Vec<(usize, Kind)> = whole.iter().map(|d| (d.start, d.kind)).collect();
        let b: Vec<(usize, Kind)> = parts.iter().map(|d| (d.start, d.kind)).chain(later.iter().map(|d| (d.start + base, d.kind))).collect();
        prop_assert_eq!(a, b);
    }

    /// Random digit soup never panics, and whatever is reported as a card passes Luhn.
    #[test]
    fn reported_cards_always_validate(text in "[0-9 .\\-()+:a-f@]{0,200}") {
        for d in detect_with(&text, &Structure::Plain) {
            if d.kind == Kind::CreditCard {
                let digits: Vec<u8> = d.value.expose().bytes().filter(u8::is_ascii_digit).collect();
                prop_assert!(custody_detect::validate::luhn(&digits));
            }
        }
    }
}

/// The vault's tokens never look like customer data: card tokens fail Luhn, SSN tokens use
/// an area and group no SSN or ITIN has.
#[test]
fn vault_tokens_are_not_findings() {
    use std::fmt::Write as _;

    use custody_crypto::{CardTokenizer, Key, ssn_token};
    let tokenizer = CardTokenizer::new(&Key::from_bytes([7; 32]), false);
    let mut text = String::new();
    for i in 0..500u64 {
        let body = format!("4{:014}", i * 7_919_337 % 100_000_000_000_000);
        let mut card = body.into_bytes();
        card.push(b'0');
        for d in b'0'..=b'9' {
            *card.last_mut().unwrap() = d;
            if custody_detect::validate::luhn(&card) {
                break;
            }
        }
        let token = tokenizer.tokenize("card_number", std::str::from_utf8(&card).unwrap()).unwrap();
        let ssn = ssn_token(&format!("{:04}", i % 10_000)).unwrap();
        writeln!(text, "card {token} ssn {ssn}").unwrap();
    }
    let found = detect(&text);
    assert!(
        !found.iter().any(|(k, _)| matches!(k, Kind::CreditCard | Kind::UsSsn | Kind::UsItin)),
        "{:?}",
        &found[..found.len().min(5)]
    );
}

/// The scan cache keys on this: equal settings give equal text, any change another.
#[test]
fn config_fingerprints_are_stable_and_name_every_setting() {
    let base = custody_detect::DetectorConfig::default();
    assert_eq!(base.fingerprint(), custody_detect::DetectorConfig::default().fingerprint());
    assert!(base.fingerprint().contains("credit_card"), "{}", base.fingerprint());
    let mut other = custody_detect::DetectorConfig::default();
    other.min_confidence += 0.01;
    assert_ne!(base.fingerprint(), other.fingerprint());
    let mut other = custody_detect::DetectorConfig::default();
    other.current_year += 1;
    assert_ne!(base.fingerprint(), other.fingerprint());
    let only = custody_detect::DetectorConfig::default().with_kinds(&[custody_detect::Kind::Email]);
    assert!(only.fingerprint().starts_with("kinds=email;"), "{}", only.fingerprint());
}

//! Telephone numbers validated against libphonenumber's numbering plans.
//!
//! The plans come from the `phonenumber` crate's compiled-in metadata (libphonenumber's
//! `PhoneNumberMetadata.xml`). Its own validator looks every pattern up in a shared,
//! mutex-guarded regex cache on each call (about 20 µs a number, and a point of contention
//! between threads), so we compile each region's patterns once per thread, anchored as
//! libphonenumber's `matches()` is: a number is valid when the region's general pattern and
//! at least one number-type pattern (fixed line, mobile, toll free, …) match all of it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use regex::{Regex, RegexSet};

/// One region's rules.
struct Region {
    id: &'static str,
    national_prefix: Option<&'static str>,
    general: Regex,
    types: RegexSet,
}

type Metas = Rc<[&'static phonenumber::metadata::Metadata]>;

thread_local! {
    /// The regions of each calling code.
    static CODES: RefCell<HashMap<u16, Metas>> = RefCell::new(HashMap::new());
    /// Compiled regions, built the first time a number needs them.
    static REGIONS: RefCell<HashMap<&'static str, Option<Rc<Region>>>> = RefCell::new(HashMap::new());
}

fn database() -> &'static phonenumber::metadata::Database {
    &phonenumber::metadata::DATABASE
}

fn anchored(pattern: &str) -> String {
    let compact: String = pattern.chars().filter(|c| !c.is_whitespace()).collect();
    format!("^(?:{compact})$")
}

fn compile(meta: &'static phonenumber::metadata::Metadata) -> Option<Region> {
    let d = meta.descriptors();
    let general = Regex::new(&anchored(d.general().national_number().as_str())).ok()?;
    let types = [
        d.fixed_line(),
        d.mobile(),
        d.toll_free(),
        d.premium_rate(),
        d.shared_cost(),
        d.voip(),
        d.personal_number(),
        d.pager(),
        d.uan(),
        d.voicemail(),
    ]
    .into_iter()
    .flatten()
    .map(|t| anchored(t.national_number().as_str()));
    let types = RegexSet::new(types).ok()?;
    Some(Region { id: meta.id(), national_prefix: meta.national_prefix(), general, types })
}

/// The compiled rules of one region.
fn region(meta: &'static phonenumber::metadata::Metadata) -> Option<Rc<Region>> {
    REGIONS.with(|regions| {
        regions.borrow_mut().entry(meta.id()).or_insert_with(|| compile(meta).map(Rc::new)).clone()
    })
}

/// The regions sharing a calling code, the most populous ones first.
fn regions_of(code: u16) -> Rc<[&'static phonenumber::metadata::Metadata]> {
    const PREFERRED: [&str; 5] = ["US", "CA", "GB", "DE", "FR"];
    CODES.with(|codes| {
        Rc::clone(codes.borrow_mut().entry(code).or_insert_with(|| {
            let mut metas = database().by_code(&code).unwrap_or_default();
            metas.sort_by_key(|m| PREFERRED.iter().position(|p| *p == m.id()).unwrap_or(PREFERRED.len()));
            metas.into()
        }))
    })
}

fn valid_in(region: &Region, national: &str) -> bool {
    region.general.is_match(national) && region.types.is_match(national)
}

/// The first of `metas` in which `national` is valid.
fn first_valid(metas: &[&'static phonenumber::metadata::Metadata], national: &str) -> Option<&'static str> {
    metas.iter().find_map(|m| region(m).filter(|r| valid_in(r, national)).map(|r| r.id))
}

/// A number written with `+` and its country code: returns the region it is valid in.
pub(crate) fn international(digits: &str) -> Option<&'static str> {
    // Country calling codes are prefix-free: the first 1–3 digits that name one decide.
    for len in 1..=3.min(digits.len()) {
        let code: u16 = digits[..len].parse().ok()?;
        let metas = regions_of(code);
        if !metas.is_empty() {
            return first_valid(&metas, &digits[len..]);
        }
    }
    None
}

/// A North American number (10 digits, or 11 with the leading 1).
pub(crate) fn nanp(digits: &str) -> Option<&'static str> {
    let national = match digits.len() {
        10 => digits,
        11 if digits.starts_with('1') => &digits[1..],
        _ => return None,
    };
    // Every NANP region's area code starts with 2–9: reject the rest before touching the
    // patterns. (Exchanges starting with 1 are valid in some regions' data.)
    if national.as_bytes()[0] < b'2' {
        return None;
    }
    first_valid(&regions_of(1), national)
}

/// A national number with a trunk prefix, tried in each of `regions` (ISO ids) in order.
pub(crate) fn national(digits: &str, regions: &[(&str, u16)]) -> Option<&'static str> {
    regions.iter().find_map(|(id, _)| {
        let meta = database().by_id(*id)?;
        let region = region(meta)?;
        let national = match region.national_prefix {
            Some(prefix) => digits.strip_prefix(prefix)?,
            None => digits,
        };
        valid_in(&region, national).then_some(region.id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_libphonenumber_examples() {
        assert_eq!(nanp("4158372671"), Some("US"));
        assert_eq!(nanp("14158372671"), Some("US"));
        assert_eq!(nanp("4168372671"), Some("CA"));
        assert_eq!(nanp("1234567890"), None, "area codes do not start with 1");
        assert_eq!(nanp("4151234567"), None, "exchanges do not start with 1");
        assert_eq!(international("442079460958"), Some("GB"));
        assert_eq!(international("493012345678"), Some("DE"));
        assert_eq!(international("33123456789"), Some("FR"));
        assert_eq!(international("999123456"), None);
        let eu = [("GB", 44), ("DE", 49), ("FR", 33)];
        assert_eq!(national("02079460958", &eu), Some("GB"));
        assert_eq!(national("0123456789", &eu[2..]), Some("FR"));
        assert_eq!(national("12345", &eu), None);
    }

    #[test]
    fn matches_the_phonenumber_crate_on_many_numbers() {
        use phonenumber::country::Id;
        for i in 0..3000u64 {
            let n = format!("{}", 2_000_000_000u64 + i * 2_654_435);
            let theirs =
                phonenumber::parse(Some(Id::US), &n).map(|p| p.is_valid()).unwrap_or(false);
            assert_eq!(nanp(&n).is_some(), theirs, "{n}");
        }
    }
}

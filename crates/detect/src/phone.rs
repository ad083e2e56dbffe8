//! Telephone numbers validated against libphonenumber's numbering plans.
//!
//! The plans are libphonenumber's `PhoneNumberMetadata.xml`, extracted at build time
//! (`build.rs`, from the `phonenumber` crate) into the [`PLANS`] table of pattern strings.
//! Each thread compiles a region's patterns the first time a number needs them, anchored as
//! libphonenumber's `matches()` is. A number is valid in a region when the region's general
//! pattern and at least one number-type pattern (fixed line, mobile, toll free, …) match
//! all of it; among regions sharing a calling code the region is chosen as libphonenumber
//! does: the main region first, regions with leading digits only when those match.
//!
//! (The `phonenumber` crate's own validator loads and checks its whole database on first
//! use, about 600 million instructions, and looks every pattern up in a mutex-guarded cache
//! on each call.)

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use regex::{Regex, RegexSet};

/// One region's plan, as extracted from libphonenumber's metadata.
pub(crate) struct Plan {
    id: &'static str,
    code: u16,
    national_prefix: Option<&'static str>,
    leading_digits: Option<&'static str>,
    general: &'static str,
    types: &'static [&'static str],
}

include!(concat!(env!("OUT_DIR"), "/plans.rs"));

/// A region's compiled patterns.
struct Compiled {
    leading: Option<Regex>,
    general: Regex,
    types: RegexSet,
}

thread_local! {
    /// Compiled regions by index into [`PLANS`], built the first time a number needs them.
    static COMPILED: RefCell<HashMap<usize, Option<Rc<Compiled>>>> = RefCell::new(HashMap::new());
}

fn compiled(index: usize) -> Option<Rc<Compiled>> {
    COMPILED.with(|cache| {
        cache
            .borrow_mut()
            .entry(index)
            .or_insert_with(|| {
                let plan = &PLANS[index];
                let leading = match plan.leading_digits {
                    Some(l) => Some(Regex::new(l).ok()?),
                    None => None,
                };
                let general = Regex::new(plan.general).ok()?;
                let types = RegexSet::new(plan.types).ok()?;
                Some(Rc::new(Compiled { leading, general, types }))
            })
            .clone()
    })
}

/// Indices of the regions of a calling code (main region first: the table is sorted so).
fn regions_of(code: u16) -> impl Iterator<Item = usize> {
    let start = PLANS.partition_point(|p| p.code < code);
    (start..PLANS.len()).take_while(move |&i| PLANS[i].code == code)
}

fn valid_in(c: &Compiled, national: &str) -> bool {
    c.general.is_match(national) && c.types.is_match(national)
}

/// libphonenumber's region choice for a national number among the regions of its calling
/// code, and whether it is valid there.
fn validate(code: u16, national: &str) -> Option<&'static str> {
    for index in regions_of(code) {
        let Some(c) = compiled(index) else { continue };
        match &c.leading {
            // A region with leading digits owns the numbers that start with them.
            Some(leading) => {
                if leading.is_match(national) {
                    return valid_in(&c, national).then_some(PLANS[index].id);
                }
            }
            None => {
                if valid_in(&c, national) {
                    return Some(PLANS[index].id);
                }
            }
        }
    }
    None
}

/// A number written with `+` and its country code: returns the region it is valid in.
pub(crate) fn international(digits: &str) -> Option<&'static str> {
    // Country calling codes are prefix-free: the first 1–3 digits that name one decide.
    for len in 1..=3.min(digits.len()) {
        let code: u16 = digits[..len].parse().ok()?;
        if let Some(main) = regions_of(code).next() {
            let national = &digits[len..];
            // `+44 (0)20 …`: a trunk `0` written after the country code is dropped when what
            // remains fits the region's plan (libphonenumber's parser does the same, with
            // per-region rules we do not copy).
            if let Some(stripped) = PLANS[main]
                .national_prefix
                .filter(|p| *p == "0")
                .and_then(|p| national.strip_prefix(p))
                && compiled(main).is_some_and(|c| c.general.is_match(stripped))
            {
                return validate(code, stripped);
            }
            return validate(code, national);
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
    // patterns.
    if national.as_bytes()[0] < b'2' {
        return None;
    }
    validate(1, national)
}

/// A national number with a trunk prefix, tried in each of `regions` (ISO ids) in order.
pub(crate) fn national(digits: &str, regions: &[(&str, u16)]) -> Option<&'static str> {
    regions.iter().find_map(|(id, code)| {
        let index = regions_of(*code).find(|i| PLANS[*i].id == *id)?;
        let plan = &PLANS[index];
        let national = match plan.national_prefix {
            Some(prefix) => digits.strip_prefix(prefix)?,
            None => digits,
        };
        let c = compiled(index)?;
        valid_in(&c, national).then_some(plan.id)
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

    /// Known answers from libphonenumber itself (its Python port), for example numbers of
    /// 22 regions and random digits under 13 calling codes. The `phonenumber` crate is not
    /// the reference here: its patterns match by prefix, so it accepts numbers
    /// libphonenumber rejects.
    #[test]
    fn international_numbers_agree_with_libphonenumber() {
        let vectors = include_str!("../tests/data/phone_vectors.txt");
        let mut disagree = Vec::new();
        let mut total = 0;
        for line in vectors.lines().filter(|l| !l.starts_with('#')) {
            let (digits, verdict) = line.split_once(' ').unwrap();
            total += 1;
            if international(digits).is_some() != (verdict == "valid") {
                disagree.push(line);
            }
        }
        assert!(total > 1000, "{total}");
        assert!(disagree.is_empty(), "{} of {total} disagree: {disagree:?}", disagree.len());
    }

    #[test]
    fn matches_the_phonenumber_crate_on_many_numbers() {
        use phonenumber::country::Id;
        for i in 0..3000u64 {
            let n = format!("{}", 2_000_000_000u64 + i * 2_654_435);
            let theirs = phonenumber::parse(Some(Id::US), &n).is_ok_and(|p| p.is_valid());
            assert_eq!(nanp(&n).is_some(), theirs, "{n}");
        }
    }
}

//! Postal addresses in parts: street, unit, city, region, postal code, country. Breach law
//! is decided by where a customer lives, so region and country are kept apart, in standard
//! codes: the country as ISO 3166-1 alpha-2 (`US`), the region as ISO 3166-2 (`US-OR`) for
//! the United States, Canada and Australia, whose subdivision lists are below; US ZIP codes,
//! Canadian postal codes and Australian postcodes are checked for shape.
//!
//! In the configuration an address is one field of type `address`; it stands for six part
//! fields (`address_street` … `address_country`), each stored, masked, searched and
//! permitted on its own. [`parse`] reads a free-text address (the API's string form, an
//! import's single column, a vault migrated from the text field) as well as it can.

use crate::Error;

/// One part of an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Part {
    /// House number and street (`742 Evergreen Terrace`).
    Street,
    /// Apartment, suite, floor (`Apt 4B`).
    Unit,
    /// City or town.
    City,
    /// State, province or territory: ISO 3166-2 (`US-OR`) where known.
    Region,
    /// ZIP or postal code.
    PostalCode,
    /// ISO 3166-1 alpha-2 (`US`).
    Country,
}

impl Part {
    /// Every part, in address order.
    pub const ALL: [Part; 6] =
        [Part::Street, Part::Unit, Part::City, Part::Region, Part::PostalCode, Part::Country];

    /// The part's name: the key in the API's address object and the suffix of its field.
    pub fn as_str(self) -> &'static str {
        match self {
            Part::Street => "street",
            Part::Unit => "unit",
            Part::City => "city",
            Part::Region => "region",
            Part::PostalCode => "postal_code",
            Part::Country => "country",
        }
    }

    /// The part named `name`.
    pub fn from_name(name: &str) -> Option<Part> {
        Part::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// Searchable unless the configuration says otherwise: region and country, so a breach
    /// can be scoped by state.
    pub fn searchable_by_default(self) -> bool {
        matches!(self, Part::Region | Part::Country)
    }
}

/// An address in parts; `None` where a part is unknown.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Address {
    /// House number and street.
    pub street: Option<String>,
    /// Apartment, suite, floor.
    pub unit: Option<String>,
    /// City or town.
    pub city: Option<String>,
    /// Region, as written or as an ISO 3166-2 code.
    pub region: Option<String>,
    /// ZIP or postal code.
    pub postal_code: Option<String>,
    /// Country, as written or as an ISO 3166-1 code.
    pub country: Option<String>,
}

impl std::fmt::Debug for Address {
    // Which parts are known, never what they say.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let known: Vec<&str> = self
            .parts()
            .into_iter()
            .filter(|(_, v)| v.is_some())
            .map(|(p, _)| p.as_str())
            .collect();
        write!(f, "Address({})", known.join(", "))
    }
}

impl Address {
    /// The parts with their values.
    pub fn parts(&self) -> [(Part, Option<&str>); 6] {
        [
            (Part::Street, self.street.as_deref()),
            (Part::Unit, self.unit.as_deref()),
            (Part::City, self.city.as_deref()),
            (Part::Region, self.region.as_deref()),
            (Part::PostalCode, self.postal_code.as_deref()),
            (Part::Country, self.country.as_deref()),
        ]
    }

    fn set(&mut self, part: Part, value: String) {
        let slot = match part {
            Part::Street => &mut self.street,
            Part::Unit => &mut self.unit,
            Part::City => &mut self.city,
            Part::Region => &mut self.region,
            Part::PostalCode => &mut self.postal_code,
            Part::Country => &mut self.country,
        };
        *slot = Some(value);
    }
}

/// ISO 3166-1 alpha-2: every officially assigned code (249).
const COUNTRIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ \
BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE \
DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR \
GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP \
KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT \
MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW \
PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG \
TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

/// Country names and alpha-3 codes a shop's exports commonly hold, for the countries whose
/// customers a small business most often has. Anything else must be the alpha-2 code.
const COUNTRY_NAMES: &[(&str, &str)] = &[
    ("UNITED STATES", "US"),
    ("UNITED STATES OF AMERICA", "US"),
    ("USA", "US"),
    ("U.S.", "US"),
    ("U.S.A.", "US"),
    ("AMERICA", "US"),
    ("CANADA", "CA"),
    ("CAN", "CA"),
    ("AUSTRALIA", "AU"),
    ("AUS", "AU"),
    ("UNITED KINGDOM", "GB"),
    ("UK", "GB"),
    ("U.K.", "GB"),
    ("GREAT BRITAIN", "GB"),
    ("ENGLAND", "GB"),
    ("SCOTLAND", "GB"),
    ("WALES", "GB"),
    ("NORTHERN IRELAND", "GB"),
    ("GBR", "GB"),
    ("IRELAND", "IE"),
    ("IRL", "IE"),
    ("NEW ZEALAND", "NZ"),
    ("NZL", "NZ"),
    ("MEXICO", "MX"),
    ("MEX", "MX"),
    ("GERMANY", "DE"),
    ("DEU", "DE"),
    ("DEUTSCHLAND", "DE"),
    ("FRANCE", "FR"),
    ("FRA", "FR"),
    ("SPAIN", "ES"),
    ("ESP", "ES"),
    ("ITALY", "IT"),
    ("ITA", "IT"),
    ("NETHERLANDS", "NL"),
    ("NLD", "NL"),
    ("THE NETHERLANDS", "NL"),
    ("PUERTO RICO", "PR"),
    ("INDIA", "IN"),
    ("IND", "IN"),
    ("CHINA", "CN"),
    ("CHN", "CN"),
    ("JAPAN", "JP"),
    ("JPN", "JP"),
    ("BRAZIL", "BR"),
    ("BRA", "BR"),
    ("PHILIPPINES", "PH"),
    ("PHL", "PH"),
];

/// ISO 3166-2:US: the 50 states, the District of Columbia and the outlying areas.
const US: &[(&str, &str)] = &[
    ("AL", "ALABAMA"),
    ("AK", "ALASKA"),
    ("AZ", "ARIZONA"),
    ("AR", "ARKANSAS"),
    ("CA", "CALIFORNIA"),
    ("CO", "COLORADO"),
    ("CT", "CONNECTICUT"),
    ("DE", "DELAWARE"),
    ("FL", "FLORIDA"),
    ("GA", "GEORGIA"),
    ("HI", "HAWAII"),
    ("ID", "IDAHO"),
    ("IL", "ILLINOIS"),
    ("IN", "INDIANA"),
    ("IA", "IOWA"),
    ("KS", "KANSAS"),
    ("KY", "KENTUCKY"),
    ("LA", "LOUISIANA"),
    ("ME", "MAINE"),
    ("MD", "MARYLAND"),
    ("MA", "MASSACHUSETTS"),
    ("MI", "MICHIGAN"),
    ("MN", "MINNESOTA"),
    ("MS", "MISSISSIPPI"),
    ("MO", "MISSOURI"),
    ("MT", "MONTANA"),
    ("NE", "NEBRASKA"),
    ("NV", "NEVADA"),
    ("NH", "NEW HAMPSHIRE"),
    ("NJ", "NEW JERSEY"),
    ("NM", "NEW MEXICO"),
    ("NY", "NEW YORK"),
    ("NC", "NORTH CAROLINA"),
    ("ND", "NORTH DAKOTA"),
    ("OH", "OHIO"),
    ("OK", "OKLAHOMA"),
    ("OR", "OREGON"),
    ("PA", "PENNSYLVANIA"),
    ("RI", "RHODE ISLAND"),
    ("SC", "SOUTH CAROLINA"),
    ("SD", "SOUTH DAKOTA"),
    ("TN", "TENNESSEE"),
    ("TX", "TEXAS"),
    ("UT", "UTAH"),
    ("VT", "VERMONT"),
    ("VA", "VIRGINIA"),
    ("WA", "WASHINGTON"),
    ("WV", "WEST VIRGINIA"),
    ("WI", "WISCONSIN"),
    ("WY", "WYOMING"),
    ("DC", "DISTRICT OF COLUMBIA"),
    ("AS", "AMERICAN SAMOA"),
    ("GU", "GUAM"),
    ("MP", "NORTHERN MARIANA ISLANDS"),
    ("PR", "PUERTO RICO"),
    ("UM", "UNITED STATES MINOR OUTLYING ISLANDS"),
    ("VI", "VIRGIN ISLANDS, U.S."),
];

/// ISO 3166-2:CA: provinces and territories.
const CA: &[(&str, &str)] = &[
    ("AB", "ALBERTA"),
    ("BC", "BRITISH COLUMBIA"),
    ("MB", "MANITOBA"),
    ("NB", "NEW BRUNSWICK"),
    ("NL", "NEWFOUNDLAND AND LABRADOR"),
    ("NS", "NOVA SCOTIA"),
    ("NT", "NORTHWEST TERRITORIES"),
    ("NU", "NUNAVUT"),
    ("ON", "ONTARIO"),
    ("PE", "PRINCE EDWARD ISLAND"),
    ("QC", "QUEBEC"),
    ("SK", "SASKATCHEWAN"),
    ("YT", "YUKON"),
];

/// ISO 3166-2:AU: states and territories.
const AU: &[(&str, &str)] = &[
    ("ACT", "AUSTRALIAN CAPITAL TERRITORY"),
    ("NSW", "NEW SOUTH WALES"),
    ("NT", "NORTHERN TERRITORY"),
    ("QLD", "QUEENSLAND"),
    ("SA", "SOUTH AUSTRALIA"),
    ("TAS", "TASMANIA"),
    ("VIC", "VICTORIA"),
    ("WA", "WESTERN AUSTRALIA"),
];

fn subdivisions(country: &str) -> Option<&'static [(&'static str, &'static str)]> {
    match country {
        "US" => Some(US),
        "CA" => Some(CA),
        "AU" => Some(AU),
        _ => None,
    }
}

/// Upper case, inner white space folded, dots after initials kept.
fn fold(raw: &str) -> String {
    raw.split_whitespace().collect::<Vec<_>>().join(" ").to_uppercase()
}

/// The ISO 3166-1 alpha-2 code for `raw` (a code, or a common name or alpha-3 code).
pub fn country_code(raw: &str) -> Option<&'static str> {
    let folded = fold(raw);
    if folded.len() == 2 {
        return COUNTRIES.split(' ').find(|c| *c == folded);
    }
    COUNTRY_NAMES.iter().find(|(name, _)| *name == folded).map(|(_, code)| *code)
}

/// The ISO 3166-2 code (`US-OR`) of `raw` in `country` (`OR`, `Oregon`, `US-OR`), when the
/// country is one whose subdivisions are known; `None` if `raw` is not one of them.
pub fn region_code(country: &str, raw: &str) -> Option<String> {
    let list = subdivisions(country)?;
    let folded = fold(raw).replace('.', "");
    let folded = folded.strip_prefix(&format!("{country}-")).unwrap_or(&folded);
    let found = list.iter().find(|(code, name)| *code == folded || *name == folded)?;
    Some(format!("{country}-{}", found.0))
}

/// Whether `raw` names a subdivision of more than one of the countries whose lists are
/// known (`WA`, `NT`), so that only its full code says which.
pub fn ambiguous_region(raw: &str) -> bool {
    ["US", "CA", "AU"].iter().filter(|c| region_code(c, raw).is_some()).count() > 1
}

/// The country a full ISO 3166-2 code (`US-OR`) belongs to, when it is a known one.
fn country_of_full_code(raw: &str) -> Option<&'static str> {
    let (country, _) = fold(raw).split_once('-')?.to_owned_pair();
    let country = country_code(&country).filter(|c| subdivisions(c).is_some())?;
    region_code(country, raw).map(|_| country)
}

trait OwnedPair {
    fn to_owned_pair(self) -> (String, String);
}

impl OwnedPair for (&str, &str) {
    fn to_owned_pair(self) -> (String, String) {
        (self.0.to_string(), self.1.to_string())
    }
}

/// Checks a postal code's shape for `country` and writes it the standard way: US ZIP
/// `12345` or `12345-6789`, Canadian `A1A 1A1`, Australian `2000`; elsewhere up to 12
/// letters, digits, spaces and hyphens.
pub fn postal_code(country: Option<&str>, raw: &str) -> Result<String, &'static str> {
    let folded = fold(raw);
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    match country {
        Some("US") => {
            let ok = match folded.split_once('-') {
                None => folded.len() == 5 && digits(&folded),
                Some((zip, plus4)) => {
                    zip.len() == 5 && digits(zip) && plus4.len() == 4 && digits(plus4)
                }
            };
            if ok { Ok(folded) } else { Err("must be a US ZIP code (12345 or 12345-6789)") }
        }
        Some("CA") => {
            let compact: String = folded.chars().filter(|c| !c.is_whitespace()).collect();
            let b = compact.as_bytes();
            let ok = b.len() == 6
                && b.iter().enumerate().all(|(i, c)| {
                    if i % 2 == 0 { c.is_ascii_uppercase() } else { c.is_ascii_digit() }
                });
            if ok {
                Ok(format!("{} {}", &compact[..3], &compact[3..]))
            } else {
                Err("must be a Canadian postal code (A1A 1A1)")
            }
        }
        Some("AU") => {
            if folded.len() == 4 && digits(&folded) {
                Ok(folded)
            } else {
                Err("must be an Australian postcode (four digits)")
            }
        }
        _ => {
            let ok = !folded.is_empty()
                && folded.len() <= 12
                && folded.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ' || b == b'-');
            if ok { Ok(folded) } else { Err("must be a postal code (up to 12 letters and digits)") }
        }
    }
}

/// Normalises the address parts of one write, across parts: the country to its code, the
/// region to ISO 3166-2 with the country's list (the country inferred as the United States
/// when it is missing and the region is a US state, unless the postal code has another
/// country's shape), the postal code checked against the country. `stored_country` is the
/// record's country when this write does not give one (an update). Errors name the part's
/// field and the rule, never the value.
pub(crate) fn normalize_parts(
    fields: &[(Part, &str)],
    values: &mut std::collections::BTreeMap<String, String>,
    stored_country: Option<&str>,
) -> Result<(), Error> {
    let name = |part: Part| fields.iter().find(|(p, _)| *p == part).map(|(_, n)| (*n).to_string());
    let invalid = |part: Part, rule: &'static str| Error::Invalid {
        field: name(part).unwrap_or_else(|| part.as_str().to_string()),
        rule,
    };
    let get = |values: &std::collections::BTreeMap<String, String>, part: Part| {
        name(part).and_then(|n| values.get(&n).cloned()).filter(|v| !v.trim().is_empty())
    };
    let mut country: Option<String> = match get(values, Part::Country) {
        Some(raw) => Some(
            country_code(&raw)
                .ok_or_else(|| {
                    invalid(Part::Country, "must be an ISO 3166-1 country code (US, CA, GB, …)")
                })?
                .to_string(),
        ),
        None => stored_country.map(str::to_string),
    };
    if let Some(raw) = get(values, Part::Region) {
        let postal = get(values, Part::PostalCode);
        if country.is_none() {
            // `US-OR` names its country; a bare US state does, unless the postal code is
            // shaped like another country's (`WA 6000` is Western Australia).
            let inferred = country_of_full_code(&raw).map(str::to_string).or_else(|| {
                let looks_us = postal.as_deref().is_none_or(|p| postal_code(Some("US"), p).is_ok());
                (looks_us && region_code("US", &raw).is_some()).then(|| "US".to_string())
            });
            if let Some(c) = inferred {
                if let Some(n) = name(Part::Country) {
                    values.insert(n, c.clone());
                }
                country = Some(c);
            }
        }
        let region = match country.as_deref() {
            Some(c) if subdivisions(c).is_some() => region_code(c, &raw).ok_or_else(|| {
                invalid(Part::Region, "must be a state, province or territory of the address's country (ISO 3166-2, e.g. US-CA)")
            })?,
            _ => {
                let folded = fold(&raw);
                if folded.len() > 64 {
                    return Err(invalid(Part::Region, "must be at most 64 characters"));
                }
                folded
            }
        };
        values.insert(name(Part::Region).expect("a region was given"), region);
    }
    if let Some(raw) = get(values, Part::PostalCode) {
        let code = postal_code(country.as_deref(), &raw)
            .map_err(|rule| invalid(Part::PostalCode, rule))?;
        values.insert(name(Part::PostalCode).expect("a postal code was given"), code);
    }
    if let (Some(c), Some(n)) = (&country, name(Part::Country))
        && values.contains_key(&n)
    {
        values.insert(n, c.clone());
    }
    for part in [Part::Street, Part::Unit, Part::City] {
        if let Some(n) = name(part)
            && let Some(v) = values.get(&n)
        {
            let folded = v.split_whitespace().collect::<Vec<_>>().join(" ");
            if folded.len() > 4096 {
                return Err(invalid(part, "must be at most 4096 bytes"));
            }
            values.insert(n, folded);
        }
    }
    Ok(())
}

/// The part fields of the address field `name` in `collection` (made from one `address`
/// field in the configuration), as (part, field name); empty if `name` is no address.
pub fn part_fields(config: &crate::Config, collection: &str, name: &str) -> Vec<(Part, String)> {
    config
        .collections
        .get(collection)
        .map(|c| {
            c.fields
                .iter()
                .filter(|f| f.part_of.as_deref() == Some(name))
                .filter_map(|f| f.ty.address_part().map(|p| (p, f.name.clone())))
                .collect()
        })
        .unwrap_or_default()
}

/// An address as a caller sends it: parts by name (`{"street": …, "city": …}`), or one
/// free-text line, read with [`parse`].
pub enum Given<'a> {
    /// Parts by name.
    Parts(Vec<(&'a str, &'a str)>),
    /// One line of text.
    Text(&'a str),
}

/// The part fields and values an address given for the address field `name` stands for.
/// An unknown part name is an error naming the address field, never the value.
pub fn expand(
    config: &crate::Config,
    collection: &str,
    name: &str,
    given: &Given<'_>,
) -> Result<Vec<(String, String)>, Error> {
    let fields = part_fields(config, collection, name);
    let field_of = |part: Part| fields.iter().find(|(p, _)| *p == part).map(|(_, f)| f.clone());
    let mut out = Vec::new();
    match given {
        Given::Parts(parts) => {
            for (key, value) in parts {
                let part = Part::from_name(key).ok_or_else(|| Error::Invalid {
                    field: name.to_string(),
                    rule: "has parts street, unit, city, region, postal_code and country only",
                })?;
                if let Some(f) = field_of(part) {
                    out.push((f, (*value).to_string()));
                }
            }
        }
        Given::Text(text) => {
            let parsed = parse(text);
            for (part, value) in parsed.parts() {
                if let (Some(f), Some(v)) = (field_of(part), value) {
                    out.push((f, v.to_string()));
                }
            }
        }
    }
    Ok(out)
}

/// `values` with any address field given as one line of text (`address = "742 Evergreen
/// Terrace, Springfield, OR 97403"`) replaced by its parts; other values as they are.
pub fn expand_values(
    config: &crate::Config,
    collection: &str,
    values: &std::collections::BTreeMap<String, String>,
) -> Result<std::collections::BTreeMap<String, String>, Error> {
    let mut out = std::collections::BTreeMap::new();
    for (name, value) in values {
        if part_fields(config, collection, name).is_empty() {
            out.insert(name.clone(), value.clone());
        } else {
            let given = expand(config, collection, name, &Given::Text(value))?;
            out.extend(with_cleared(config, collection, name, given));
        }
    }
    Ok(out)
}

/// `values` without the address parts given empty (what a new record does not have).
pub fn drop_cleared(
    config: &crate::Config,
    collection: &str,
    values: std::collections::BTreeMap<String, String>,
) -> std::collections::BTreeMap<String, String> {
    let parts = config.address_fields(collection);
    values
        .into_iter()
        .filter(|(k, v)| !(v.trim().is_empty() && parts.iter().any(|(_, n)| n == k)))
        .collect()
}

/// The parts of the address field `name` that `given` leaves out, as empty values: an
/// address given whole replaces the one stored, so an update clears the parts it does not
/// name (a customer who moved keeps no old unit or state). [`crate::Vault`] deletes a part
/// given empty; a new record simply does not have it.
pub fn with_cleared(
    config: &crate::Config,
    collection: &str,
    name: &str,
    given: Vec<(String, String)>,
) -> Vec<(String, String)> {
    let mut out = given;
    for (_, field) in part_fields(config, collection, name) {
        if !out.iter().any(|(f, _)| *f == field) {
            out.push((field, String::new()));
        }
    }
    out
}

/// Checks the address parts among `values` (raw, as a caller gives them) together, as
/// [`crate::Vault`] will when they are stored: for a preview that must find every problem
/// before anything is written (an import).
pub fn check_parts(
    config: &crate::Config,
    collection: &str,
    values: &std::collections::BTreeMap<String, String>,
) -> Result<(), Error> {
    let fields = config.address_fields(collection);
    let mut parts = std::collections::BTreeMap::new();
    for (part, name) in &fields {
        if let Some(raw) = values.get(*name) {
            let ty = config.collections[collection]
                .fields
                .iter()
                .find(|f| f.name == *name)
                .map(|f| f.ty)
                .expect("an address field of the collection");
            debug_assert_eq!(ty.address_part(), Some(*part));
            parts.insert((*name).to_string(), crate::normalize(name, ty, raw)?);
        }
    }
    normalize_parts(&fields, &mut parts, None)
}

/// The most words a region name has ("United States Minor Outlying Islands").
const REGION_WORDS: usize = 5;
/// Text longer than this is not read into parts.
const MAX_PARSED: usize = 1024;

/// Words that open the unit part of an address.
const UNIT_WORDS: &[&str] = &[
    "APT",
    "APARTMENT",
    "SUITE",
    "STE",
    "UNIT",
    "FLOOR",
    "FL",
    "ROOM",
    "RM",
    "BLDG",
    "BUILDING",
    "#",
];

fn is_unit(part: &str) -> bool {
    let upper = fold(part);
    let first = upper.split([' ', '.']).next().unwrap_or("");
    upper.starts_with('#') || UNIT_WORDS.contains(&first)
}

/// Reads a free-text address as well as it can: `742 Evergreen Terrace, Apt 4B,
/// Springfield, OR 97403, US` gives every part. Comma-separated, the country last when it
/// is one, then `REGION POSTAL` (or either alone), then the city; a part that starts like a
/// unit (`Apt`, `Suite`, `#`) is the unit; the rest is the street. What cannot be read
/// stays in `street`, with region and country unknown (never guessed from the street).
pub fn parse(text: &str) -> Address {
    let mut address = Address::default();
    if text.len() > MAX_PARSED {
        // Not an address line: kept whole as the street (normalisation bounds it).
        return Address { street: Some(text.trim().to_string()), ..Address::default() };
    }
    let mut parts: Vec<String> = text
        .split([',', '\n'])
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty())
        .collect();
    if parts.is_empty() {
        return address;
    }
    let whole = parts.join(", ");
    if let Some(code) = parts.last().and_then(|p| country_code(p))
        && parts.len() > 1
    {
        address.set(Part::Country, code.to_string());
        parts.pop();
    }
    // "OR 97403", "Oregon 97403", "ON M5V 2T6", "NSW 2000", or a region alone; the city
    // may open the same part ("Sydney NSW 2000", "Springfield OR 97403").
    let mut found_region = false;
    let mut city_in_part = None;
    if parts.len() > 1
        && let Some(last) = parts.last().cloned()
    {
        let words: Vec<&str> = last.split(' ').collect();
        let countries: Vec<&str> = match address.country.as_deref() {
            Some(c) => vec![c],
            None => vec!["US", "CA", "AU"],
        };
        // Only windows at the end: a region of at most `REGION_WORDS` words ("Northern
        // Mariana Islands"), then a postal code of at most two ("M5V 2T6"). Bounded work
        // whatever the text (every window of a long part would be cubic).
        let n = words.len();
        'search: for start in n.saturating_sub(REGION_WORDS + 2)..n {
            for end in (start + 1..=n.min(start + REGION_WORDS)).rev() {
                if n - end > 2 {
                    continue;
                }
                let (region, postal) = (words[start..end].join(" "), words[end..].join(" "));
                let hit = countries.iter().find_map(|c| {
                    let r = region_code(c, &region)?;
                    let p = if postal.is_empty() {
                        None
                    } else {
                        Some(postal_code(Some(c), &postal).ok()?)
                    };
                    Some((*c, r, p))
                });
                if let Some((c, r, p)) = hit {
                    address.set(Part::Country, c.to_string());
                    address.set(Part::Region, r);
                    if let Some(p) = p {
                        address.set(Part::PostalCode, p);
                    }
                    if start > 0 {
                        city_in_part = Some(words[..start].join(" "));
                    }
                    parts.pop();
                    found_region = true;
                    break 'search;
                }
            }
        }
    }
    if !found_region {
        // Nothing recognisable at the end: all of it is the street, nothing guessed.
        return Address { street: Some(whole), ..Address::default() };
    }
    if let Some(city) = city_in_part {
        address.set(Part::City, city);
    } else if parts.len() > 1 {
        address.set(Part::City, parts.pop().expect("more than one"));
    }
    if let Some(i) = parts.iter().skip(1).position(|p| is_unit(p)).map(|i| i + 1) {
        address.set(Part::Unit, parts.remove(i));
    }
    if !parts.is_empty() {
        address.set(Part::Street, parts.join(", "));
    }
    address
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn country_codes_from_codes_and_common_names() {
        assert_eq!(country_code("us"), Some("US"));
        assert_eq!(country_code(" United States of America "), Some("US"));
        assert_eq!(country_code("U.K."), Some("GB"));
        assert_eq!(country_code("gb"), Some("GB"));
        assert_eq!(country_code("XX"), None);
        assert_eq!(country_code("EU"), None, "not a country code");
        assert_eq!(COUNTRIES.split(' ').count(), 249);
    }

    #[test]
    fn regions_in_iso_3166_2() {
        assert_eq!(region_code("US", "or").as_deref(), Some("US-OR"));
        assert_eq!(region_code("US", "New  York").as_deref(), Some("US-NY"));
        assert_eq!(region_code("US", "US-DC").as_deref(), Some("US-DC"));
        assert_eq!(region_code("CA", "Québec"), None, "accents are not folded: QC works");
        assert_eq!(region_code("CA", "qc").as_deref(), Some("CA-QC"));
        assert_eq!(region_code("AU", "N.S.W.").as_deref(), Some("AU-NSW"));
        assert_eq!(region_code("US", "ZZ"), None);
        assert_eq!(region_code("GB", "Kent"), None, "no list for GB");
        assert!(ambiguous_region("wa") && ambiguous_region("NT"));
        assert!(!ambiguous_region("OR") && !ambiguous_region("US-WA") && !ambiguous_region("Kent"));
        assert_eq!(US.len(), 57);
        assert_eq!(CA.len(), 13);
        assert_eq!(AU.len(), 8);
    }

    #[test]
    fn postal_codes_by_country() {
        assert_eq!(postal_code(Some("US"), "97403").unwrap(), "97403");
        assert_eq!(postal_code(Some("US"), "97403-1234").unwrap(), "97403-1234");
        for bad in ["9740", "974031", "97403-12", "ABCDE"] {
            assert!(postal_code(Some("US"), bad).is_err(), "{bad}");
        }
        assert_eq!(postal_code(Some("CA"), "m5v2t6").unwrap(), "M5V 2T6");
        assert!(postal_code(Some("CA"), "12345").is_err());
        assert_eq!(postal_code(Some("AU"), "2000").unwrap(), "2000");
        assert_eq!(postal_code(Some("GB"), "sw1a 1aa").unwrap(), "SW1A 1AA");
        assert!(postal_code(None, "a;b").is_err());
    }

    #[test]
    fn free_text_addresses() {
        let a = parse("742 Evergreen Terrace, Springfield, OR 97403, US");
        assert_eq!(a.street.as_deref(), Some("742 Evergreen Terrace"));
        assert_eq!(a.city.as_deref(), Some("Springfield"));
        assert_eq!(a.region.as_deref(), Some("US-OR"));
        assert_eq!(a.postal_code.as_deref(), Some("97403"));
        assert_eq!(a.country.as_deref(), Some("US"));
        let b = parse("12 Main St, Apt 4B, Austin, Texas 78701");
        assert_eq!((b.unit.as_deref(), b.region.as_deref()), (Some("Apt 4B"), Some("US-TX")));
        assert_eq!(b.country.as_deref(), Some("US"));
        let c = parse("100 Queen St W, Toronto, ON M5H 2N2, Canada");
        assert_eq!(
            (c.region.as_deref(), c.postal_code.as_deref()),
            (Some("CA-ON"), Some("M5H 2N2"))
        );
        let d = parse("1 Martin Pl, Sydney NSW 2000");
        assert_eq!(d.region.as_deref(), Some("AU-NSW"), "{d:?}");
        assert_eq!((d.country.as_deref(), d.city.as_deref()), (Some("AU"), Some("Sydney")));
        assert_eq!(d.street.as_deref(), Some("1 Martin Pl"));
        let f = parse("500 Oak Ave, Portland OR 97204");
        assert_eq!((f.city.as_deref(), f.region.as_deref()), (Some("Portland"), Some("US-OR")));
        // A street word that happens to be a state code is not taken for the region.
        let g = parse("9 Oregon Trail, Boise, ID 83702");
        assert_eq!(
            (g.street.as_deref(), g.region.as_deref()),
            (Some("9 Oregon Trail"), Some("US-ID"))
        );
        // Nothing to read: kept whole as the street, region and country unknown.
        let e = parse("Flat 3, 10 Downing Street, London SW1A 2AA");
        assert_eq!(e.street.as_deref(), Some("Flat 3, 10 Downing Street, London SW1A 2AA"));
        assert_eq!((e.region, e.country), (None, None));
        assert_eq!(parse("  "), Address::default());
        // Hostile input: a long last part is not searched window by window (every window of
        // 30,000 words would run for hours), and a region at the end is still found.
        let long = format!("x, {}", "a ".repeat(30_000));
        assert!(parse(&long).region.is_none());
        let many = format!("x, {} OR 97403", "a ".repeat(400));
        assert_eq!(parse(&many).region.as_deref(), Some("US-OR"));
    }

    #[test]
    fn record_level_normalisation_and_errors_name_the_part() {
        let fields = [
            (Part::Street, "address_street"),
            (Part::Region, "address_region"),
            (Part::PostalCode, "address_postal_code"),
            (Part::Country, "address_country"),
        ];
        let mut v = BTreeMap::from([
            ("address_region".to_string(), "oregon".to_string()),
            ("address_postal_code".to_string(), "97403".to_string()),
        ]);
        normalize_parts(&fields, &mut v, None).unwrap();
        assert_eq!(v["address_region"], "US-OR");
        assert_eq!(v["address_country"], "US", "inferred from a US state and a ZIP");
        let mut v = BTreeMap::from([
            ("address_region".to_string(), "WA".to_string()),
            ("address_postal_code".to_string(), "6000".to_string()),
            ("address_country".to_string(), "Australia".to_string()),
        ]);
        normalize_parts(&fields, &mut v, None).unwrap();
        assert_eq!((v["address_region"].as_str(), v["address_country"].as_str()), ("AU-WA", "AU"));
        let bad = |values: &[(&str, &str)], stored: Option<&str>| {
            let mut v: BTreeMap<String, String> =
                values.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            match normalize_parts(&fields, &mut v, stored).unwrap_err() {
                Error::Invalid { field, rule } => (field, rule),
                e => panic!("{e}"),
            }
        };
        let (field, rule) = bad(&[("address_country", "Atlantis")], None);
        assert_eq!(field, "address_country");
        assert!(!rule.contains("Atlantis"));
        assert_eq!(bad(&[("address_postal_code", "9740X")], Some("US")).0, "address_postal_code");
        assert_eq!(bad(&[("address_region", "Ontario")], Some("US")).0, "address_region");
    }
}

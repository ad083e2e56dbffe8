//! Context: the words, column headers and keys around a candidate that make it more or less
//! likely to be what it looks like.
//!
//! Three sources feed one [`Hint`] type: keywords near a value in prose (`SSN: …`), the key
//! a value is written under (`"ssn": "…"`, `ssn=…`), and the header of the CSV/TSV column the
//! value sits in. Negative context (`order`, `invoice #`, `tracking`, `sku`) lowers confidence.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

/// What a piece of context says about the value near it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Hint {
    /// Payment cards.
    Card,
    /// Social-security numbers.
    Ssn,
    /// Taxpayer ids.
    Itin,
    /// Bank routing numbers.
    Routing,
    /// Bank accounts / IBAN.
    Iban,
    /// Telephone numbers.
    Phone,
    /// Email addresses.
    Email,
    /// Birth dates.
    Dob,
    /// Passports.
    Passport,
    /// Driver's licenses.
    DriversLicense,
    /// Person names.
    Name,
    /// Street addresses.
    Address,
    /// IP addresses.
    Ip,
    /// Identifiers that are not customer data: order, invoice, tracking, SKU numbers.
    Negative,
}

impl Hint {
    /// The stable name used in reasons (`context:ssn`, `column:card`).
    pub fn as_str(self) -> &'static str {
        match self {
            Hint::Card => "card",
            Hint::Ssn => "ssn",
            Hint::Itin => "itin",
            Hint::Routing => "routing",
            Hint::Iban => "iban",
            Hint::Phone => "phone",
            Hint::Email => "email",
            Hint::Dob => "dob",
            Hint::Passport => "passport",
            Hint::DriversLicense => "drivers_license",
            Hint::Name => "name",
            Hint::Address => "address",
            Hint::Ip => "ip",
            Hint::Negative => "negative",
        }
    }
}

/// Keywords searched near a candidate, lower-case. A keyword must start at a word boundary;
/// keywords of three letters or fewer must also end at one (so `cc` does not fire in
/// `account`, nor `dob` in `adobe`).
const KEYWORDS: &[(&str, Hint)] = &[
    ("card", Hint::Card),
    ("credit", Hint::Card),
    ("debit", Hint::Card),
    ("visa", Hint::Card),
    ("mastercard", Hint::Card),
    ("master card", Hint::Card),
    ("amex", Hint::Card),
    ("american express", Hint::Card),
    ("discover", Hint::Card),
    ("jcb", Hint::Card),
    ("diners", Hint::Card),
    ("maestro", Hint::Card),
    ("unionpay", Hint::Card),
    ("cc", Hint::Card),
    ("cc#", Hint::Card),
    ("ccn", Hint::Card),
    ("pan", Hint::Card),
    ("payment", Hint::Card),
    ("charge", Hint::Card),
    ("ssn", Hint::Ssn),
    ("ss#", Hint::Ssn),
    ("social security", Hint::Ssn),
    ("soc sec", Hint::Ssn),
    ("social sec", Hint::Ssn),
    ("itin", Hint::Itin),
    ("taxpayer", Hint::Itin),
    ("routing", Hint::Routing),
    ("aba", Hint::Routing),
    ("rtn", Hint::Routing),
    ("transit number", Hint::Routing),
    ("iban", Hint::Iban),
    ("bank account", Hint::Iban),
    ("phone", Hint::Phone),
    ("tel", Hint::Phone),
    ("tel.", Hint::Phone),
    ("telephone", Hint::Phone),
    ("mobile", Hint::Phone),
    ("cell", Hint::Phone),
    ("fax", Hint::Phone),
    ("call", Hint::Phone),
    ("sms", Hint::Phone),
    ("whatsapp", Hint::Phone),
    ("dob", Hint::Dob),
    ("d.o.b", Hint::Dob),
    ("date of birth", Hint::Dob),
    ("birth", Hint::Dob),
    ("birthday", Hint::Dob),
    ("birthdate", Hint::Dob),
    ("born", Hint::Dob),
    ("passport", Hint::Passport),
    ("driver", Hint::DriversLicense),
    ("drivers", Hint::DriversLicense),
    ("driving", Hint::DriversLicense),
    ("license", Hint::DriversLicense),
    ("licence", Hint::DriversLicense),
    ("dl", Hint::DriversLicense),
    ("dl#", Hint::DriversLicense),
    ("ip", Hint::Ip),
    ("client", Hint::Ip),
    ("remote", Hint::Ip),
    ("order", Hint::Negative),
    ("invoice", Hint::Negative),
    ("inv", Hint::Negative),
    ("tracking", Hint::Negative),
    ("track", Hint::Negative),
    ("sku", Hint::Negative),
    ("isbn", Hint::Negative),
    ("serial", Hint::Negative),
    ("ref", Hint::Negative),
    ("reference", Hint::Negative),
    ("transaction", Hint::Negative),
    ("txn", Hint::Negative),
    ("confirmation", Hint::Negative),
    ("shipment", Hint::Negative),
    ("parcel", Hint::Negative),
    ("batch", Hint::Negative),
    ("item", Hint::Negative),
    ("product", Hint::Negative),
    ("part", Hint::Negative),
    ("version", Hint::Negative),
    ("zip", Hint::Negative),
    ("postal", Hint::Negative),
    ("postcode", Hint::Negative),
];

/// Added to the distance of keywords that follow the candidate.
const AFTER_PENALTY: usize = 16;

/// The nearest keyword of each meaning found in a window around a candidate.
#[derive(Clone, Copy, Debug, Default)]
pub struct Nearby {
    hits: [Option<(u16, &'static str)>; 14],
}

impl Nearby {
    fn slot(hint: Hint) -> usize {
        hint as usize
    }

    /// The nearest keyword for `hint`: its distance in bytes from the candidate and the word.
    pub fn get(&self, hint: Hint) -> Option<(u16, &'static str)> {
        self.hits[Self::slot(hint)]
    }

    fn offer(&mut self, hint: Hint, distance: u16, word: &'static str) {
        let slot = &mut self.hits[Self::slot(hint)];
        if slot.is_none_or(|(d, _)| distance < d) {
            *slot = Some((distance, word));
        }
    }
}

/// A compiled keyword matcher.
pub struct Keywords {
    ac: AhoCorasick,
}

impl Keywords {
    /// Builds the matcher over [`KEYWORDS`].
    pub fn new() -> Self {
        // Windows are a few dozen bytes: a prefilter's set-up costs more than it saves.
        let ac = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostLongest)
            .prefilter(false)
            .build(KEYWORDS.iter().map(|(k, _)| k))
            .expect("the keyword list is a small fixed set of literals");
        Self { ac }
    }

    /// Finds keywords in `bytes[from..to]` (lower-cased on the fly), measuring distance to
    /// the candidate that occupies `bytes[cand_start..cand_end]`.
    pub fn scan(
        &self,
        bytes: &[u8],
        from: usize,
        to: usize,
        cand_start: usize,
        cand_end: usize,
    ) -> Nearby {
        let mut nearby = Nearby::default();
        let mut lower = [0u8; 256];
        let to = to.min(from + lower.len());
        let window = &bytes[from..to];
        for (dst, src) in lower.iter_mut().zip(window) {
            *dst = src.to_ascii_lowercase();
        }
        let lower = &lower[..window.len()];
        for m in self.ac.find_iter(lower) {
            let (word, hint) = KEYWORDS[m.pattern().as_usize()];
            let (s, e) = (m.start(), m.end());
            let abs_s = from + s;
            let abs_e = from + e;
            // Inside the candidate itself (e.g. letters of an IBAN) is not context.
            if abs_e > cand_start && abs_s < cand_end {
                continue;
            }
            if s > 0 && lower[s - 1].is_ascii_alphanumeric() {
                continue;
            }
            // Short words must end at a word boundary too (a plural `s` is fine): `part` is not
            // `participant`, `cell` is not `cellar`, `dob` is not `adobe`.
            if word.len() <= 4 && e < lower.len() && lower[e].is_ascii_alphabetic() {
                let plural =
                    lower[e] == b's' && lower.get(e + 1).is_none_or(|c| !c.is_ascii_alphabetic());
                if !plural {
                    continue;
                }
            }
            let before = abs_e <= cand_start;
            // Negative words name the number that follows them (`Order #…`, `SKU …`); after
            // a value they describe the next one.
            if hint == Hint::Negative && !before {
                continue;
            }
            // ...and only within the same sentence: "the product zoom broke. 4956 8538 …"
            // is not a product number.
            if hint == Hint::Negative && ends_sentence(&bytes[abs_e..cand_start]) {
                continue;
            }
            // A keyword after a value is weaker evidence than one before it (`SSN 123-45-6789`
            // is the norm; `123-45-6789 (SSN)` happens): it only wins when nothing precedes.
            let distance = if before {
                cand_start - abs_e
            } else {
                AFTER_PENALTY + abs_s.saturating_sub(cand_end)
            };
            nearby.offer(hint, distance.min(usize::from(u16::MAX)) as u16, word);
        }
        nearby
    }
}

impl Default for Keywords {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether `between` holds the end of a sentence (`. `, `! `, `? `, `;`).
fn ends_sentence(between: &[u8]) -> bool {
    between.contains(&b';')
        || between.windows(2).any(|w| matches!(w[0], b'.' | b'!' | b'?') && w[1] == b' ')
}

/// Maps a column header or key (`Card Number`, `customer_ssn`, `billing.email`) to a hint.
///
/// Returns `None` for names that say nothing about customer data, so that a data row that
/// was mistaken for a header never turns into a reason string.
pub fn hint_for_name(name: &str) -> Option<Hint> {
    let name = name.trim().trim_matches(|c| c == '"' || c == '\'');
    if name.is_empty() || name.len() > 64 {
        return None;
    }
    // Called for the key in front of nearly every candidate value, and the same few column
    // and key names come back all the time: a small direct-mapped cache per thread.
    NAME_CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        let slot = &mut cache[name_slot(name.as_bytes())];
        if let Some(cached) = slot
            && cached.name == name
        {
            return cached.hint;
        }
        let hint = classify_name(name);
        *slot = Some(CachedName { name: name.to_string(), hint });
        hint
    })
}

const NAME_CACHE_SLOTS: usize = 256;

#[derive(Clone)]
struct CachedName {
    name: String,
    hint: Option<Hint>,
}

thread_local! {
    static NAME_CACHE: std::cell::RefCell<Vec<Option<CachedName>>> =
        std::cell::RefCell::new(vec![None; NAME_CACHE_SLOTS]);
}

/// FNV-1a, reduced to a cache slot.
fn name_slot(bytes: &[u8]) -> usize {
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h = (h ^ u32::from(*b)).wrapping_mul(0x0100_0193);
    }
    h as usize % NAME_CACHE_SLOTS
}

fn classify_name(name: &str) -> Option<Hint> {
    let mut lower_buf = [0u8; 64];
    let lower_buf = &mut lower_buf[..name.len()];
    lower_buf.copy_from_slice(name.as_bytes());
    lower_buf.make_ascii_lowercase();
    let lower = std::str::from_utf8(lower_buf).ok()?;
    let mut words_buf = [""; 12];
    let mut n = 0;
    for w in lower.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).take(12) {
        words_buf[n] = w;
        n += 1;
    }
    let words = &words_buf[..n];
    let mut joined_buf = [0u8; 64];
    let mut joined_len = 0;
    for w in words {
        joined_buf[joined_len..joined_len + w.len()].copy_from_slice(w.as_bytes());
        joined_len += w.len();
    }
    let joined = std::str::from_utf8(&joined_buf[..joined_len]).ok()?;
    let last = *words.last()?;
    let has = |w: &str| words.contains(&w);

    // Identifiers of things, not people, first: they veto the rest.
    let negative = [
        "order",
        "invoice",
        "tracking",
        "sku",
        "isbn",
        "serial",
        "reference",
        "ref",
        "transaction",
        "txn",
        "confirmation",
        "shipment",
        "uuid",
        "guid",
        "hash",
        "sha",
        "md5",
        "batch",
        "product",
        "item",
        "amount",
        "price",
        "total",
        "qty",
        "quantity",
        "zip",
        "postal",
        "postcode",
    ];
    if words.iter().any(|w| negative.contains(w))
        || joined.starts_with("order")
        || joined.starts_with("invoice")
        || joined.starts_with("tracking")
    {
        return Some(Hint::Negative);
    }
    if ["expiry", "exp", "expiration", "cvv", "cvc", "brand", "type", "last4"]
        .iter()
        .any(|w| has(w))
    {
        return None;
    }
    if has("email") || has("mail") || joined == "emailaddress" || joined == "email" {
        return Some(Hint::Email);
    }
    if has("ssn") || joined.contains("socialsecurity") || has("sin") {
        return Some(Hint::Ssn);
    }
    if has("itin") || has("tin") || has("taxpayer") {
        return Some(Hint::Itin);
    }
    if has("routing") || has("aba") || has("rtn") {
        return Some(Hint::Routing);
    }
    if has("iban") {
        return Some(Hint::Iban);
    }
    if has("passport") {
        return Some(Hint::Passport);
    }
    if has("dob") || joined.contains("birth") {
        return Some(Hint::Dob);
    }
    if has("driver") || has("drivers") || has("license") || has("licence") || has("dl") {
        return Some(Hint::DriversLicense);
    }
    if has("phone")
        || has("tel")
        || has("telephone")
        || has("mobile")
        || has("cell")
        || has("fax")
        || joined.ends_with("phone")
    {
        return Some(Hint::Phone);
    }
    if has("ip") || joined == "ipaddress" || joined == "remoteaddr" || joined == "clientip" {
        return Some(Hint::Ip);
    }
    if has("cardholder") || joined == "cardholdername" {
        return Some(Hint::Name);
    }
    if has("card")
        || has("cc")
        || has("pan")
        || has("ccnum")
        || joined.contains("creditcard")
        || joined == "ccnumber"
        || joined == "cardnumber"
    {
        return Some(Hint::Card);
    }
    let address_veto =
        ["email", "ip", "mac", "web", "url", "wallet", "id", "city", "state", "country"];
    if (has("street")
        || last.starts_with("address")
        || has("addr")
        || has("address1")
        || has("address2")
        || has("line1"))
        && !words.iter().any(|w| address_veto.contains(w))
    {
        return Some(Hint::Address);
    }
    let person_words = [
        "full",
        "customer",
        "first",
        "last",
        "given",
        "family",
        "contact",
        "billing",
        "shipping",
        "client",
        "person",
        "recipient",
        "sender",
        "patient",
        "member",
        "holder",
        "middle",
    ];
    let name_like =
        last == "name" && (words.len() == 1 || person_words.contains(&words[words.len() - 2]));
    if name_like
        || [
            "fullname",
            "firstname",
            "lastname",
            "surname",
            "forename",
            "givenname",
            "familyname",
            "customername",
        ]
        .contains(&joined)
    {
        return Some(Hint::Name);
    }
    None
}

/// The key a value is written under, reading backwards from `start`: `"ssn": "…"`,
/// `SSN: …`, `ssn=…`, `phone_number = '…'`. Returns the byte range of the key.
pub fn key_before(bytes: &[u8], start: usize) -> Option<(usize, usize)> {
    let mut i = start;
    let floor = start.saturating_sub(64);
    // Opening quote of the value and spaces.
    while i > floor && matches!(bytes[i - 1], b'"' | b'\'' | b' ' | b'\t') {
        i -= 1;
    }
    if i == floor || !matches!(bytes[i - 1], b':' | b'=') {
        return None;
    }
    i -= 1;
    while i > floor && matches!(bytes[i - 1], b'"' | b'\'' | b' ' | b'\t') {
        i -= 1;
    }
    let end = i;
    while i > floor
        && (bytes[i - 1].is_ascii_alphanumeric()
            || matches!(bytes[i - 1], b'_' | b'-' | b'.' | b' ' | b'#'))
    {
        i -= 1;
    }
    // Keep only the last three words of a sentence that happens to end in a colon.
    let key = &bytes[i..end];
    let mut words = 0;
    let mut cut = i;
    for (k, &c) in key.iter().enumerate().rev() {
        if c == b' ' {
            words += 1;
            if words == 3 {
                cut = i + k + 1;
                break;
            }
        }
    }
    (end > cut).then_some((cut, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_hints() {
        assert_eq!(hint_for_name("card_number"), Some(Hint::Card));
        assert_eq!(hint_for_name("Credit Card"), Some(Hint::Card));
        assert_eq!(hint_for_name("card_expiry"), None);
        assert_eq!(hint_for_name("SSN"), Some(Hint::Ssn));
        assert_eq!(hint_for_name("social_security_number"), Some(Hint::Ssn));
        assert_eq!(hint_for_name("email"), Some(Hint::Email));
        assert_eq!(hint_for_name("email_address"), Some(Hint::Email));
        assert_eq!(hint_for_name("ip_address"), Some(Hint::Ip));
        assert_eq!(hint_for_name("address"), Some(Hint::Address));
        assert_eq!(hint_for_name("street_address"), Some(Hint::Address));
        assert_eq!(hint_for_name("name"), Some(Hint::Name));
        assert_eq!(hint_for_name("full_name"), Some(Hint::Name));
        assert_eq!(hint_for_name("customer.name"), Some(Hint::Name));
        assert_eq!(hint_for_name("product_name"), Some(Hint::Negative));
        assert_eq!(hint_for_name("file_name"), None);
        assert_eq!(hint_for_name("username"), None);
        assert_eq!(hint_for_name("order_id"), Some(Hint::Negative));
        assert_eq!(hint_for_name("tracking_number"), Some(Hint::Negative));
        assert_eq!(hint_for_name("routing_number"), Some(Hint::Routing));
        assert_eq!(hint_for_name("dob"), Some(Hint::Dob));
        assert_eq!(hint_for_name("date_of_birth"), Some(Hint::Dob));
        assert_eq!(hint_for_name("phone"), Some(Hint::Phone));
        assert_eq!(hint_for_name("zip"), Some(Hint::Negative));
        assert_eq!(hint_for_name("John Smith"), None);
        assert_eq!(hint_for_name("4111111111111111"), None);
    }

    #[test]
    fn keys_before_values() {
        let text = br#"{"ssn": "123-45-6789"}"#;
        let start = 9;
        let (s, e) = key_before(text, start).unwrap();
        assert_eq!(&text[s..e], b"ssn");
        let text = b"Customer SSN: 123456789";
        let (s, e) = key_before(text, 14).unwrap();
        assert_eq!(&text[s..e], b"Customer SSN");
        let text = b"we agreed to the plan and then my card number: 4111";
        let (s, e) = key_before(text, 47).unwrap();
        assert_eq!(&text[s..e], b"my card number");
        assert!(key_before(b"call 555", 5).is_none());
    }

    #[test]
    fn keywords_respect_word_boundaries() {
        let kw = Keywords::new();
        let text = b"account 4111111111111111";
        let n = kw.scan(text, 0, 8, 8, 24);
        assert!(n.get(Hint::Card).is_none(), "cc inside account");
        let text = b"Order #4539148803436467";
        let n = kw.scan(text, 0, 7, 7, 23);
        assert_eq!(n.get(Hint::Negative).map(|h| h.1), Some("order"));
        let text = b"Visa card: 4539148803436467";
        let n = kw.scan(text, 0, 11, 11, 27);
        assert_eq!(n.get(Hint::Card).map(|h| h.1), Some("card"));
    }
}

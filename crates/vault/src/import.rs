//! Importing an existing customer list (a spreadsheet export): which column holds which
//! field, and each row checked whole before anything is stored. `custody import` reads the
//! file and shows the preview; the rules are here, so every front end maps alike.

use std::collections::BTreeMap;

use crate::{Config, Error, normalize};

/// Common column names for the default fields.
fn synonym(column: &str) -> Option<&'static str> {
    Some(match column {
        "full_name" | "customer" | "customer_name" | "client" | "contact" => "name",
        "e_mail" | "email_address" | "mail" => "email",
        "telephone" | "tel" | "phone_number" | "mobile" | "cell" => "phone",
        "postal_address" | "mailing_address" | "full_address" | "home_address" => "address",
        "street" | "address_1" | "address1" | "address_line_1" | "addr1" | "street_line_1"
        | "street_1" | "billing_address_1" | "shipping_address_1" => "address_street",
        "address_2" | "address2" | "address_line_2" | "addr2" | "apt" | "apartment" | "suite"
        | "unit" | "street_line_2" | "street_2" | "billing_address_2" | "shipping_address_2" => {
            "address_unit"
        }
        "city" | "town" | "billing_city" | "shipping_city" => "address_city",
        "state" | "province" | "region" | "state_province" | "state_or_province"
        | "billing_state" | "shipping_state" | "county_state" => "address_region",
        "zip" | "zip_code" | "zipcode" | "postal_code" | "postcode" | "post_code" | "postal"
        | "billing_zip" | "shipping_zip" | "billing_postcode" | "shipping_postcode" => {
            "address_postal_code"
        }
        "country" | "country_code" | "billing_country" | "shipping_country" => "address_country",
        "dob" | "birthday" | "birth_date" | "date_of_birth" => "date_of_birth",
        "social_security_number" | "ssn" | "social" => "ssn",
        "card" | "credit_card" | "card_no" | "cc_number" | "pan" => "card_number",
        "expiry" | "exp" | "expiration" | "card_exp" => "card_expiry",
        "note" | "comments" | "comment" => "notes",
        _ => return None,
    })
}

fn key(column: &str) -> String {
    column
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '_' })
        .collect::<String>()
        .split('_')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}

/// Which column holds which field (column index → field name): the configuration's field
/// names, their usual synonyms in exports (case, spaces and punctuation ignored), a whole
/// address or its parts, and `maps` (`COLUMN=FIELD`, from `--map`) first.
pub fn map_columns(
    config: &Config,
    collection: &str,
    headers: &[String],
    maps: &[String],
) -> Result<Vec<(usize, String)>, Error> {
    let fields: Vec<&str> = config
        .collections
        .get(collection)
        .filter(|_| !collection.starts_with('_'))
        .ok_or_else(|| {
            Error::Mapping(format!("there is no collection '{collection}' in config.toml"))
        })?
        .fields
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    let compounds: Vec<String> =
        config.collections[collection].fields.iter().filter_map(|f| f.part_of.clone()).collect();
    let mut explicit = BTreeMap::new();
    for m in maps {
        let (column, field) = m
            .rsplit_once('=')
            .ok_or_else(|| Error::Mapping(format!("--map '{m}' is not COLUMN=FIELD")))?;
        if !fields.contains(&field.trim()) && !compounds.iter().any(|c| c == field.trim()) {
            return Err(Error::Mapping(format!(
                "--map '{m}': '{}' is not a field of {collection} ({})",
                field.trim(),
                fields.join(", ")
            )));
        }
        let Some(i) = headers.iter().position(|h| h.trim() == column.trim()) else {
            return Err(Error::Mapping(format!(
                "--map '{m}': the file has no column '{}'",
                column.trim()
            )));
        };
        explicit.insert(i, field.trim().to_string());
    }
    // Address fields: a column may hold the whole address (parsed into its parts), or one
    // part. "Street address" is the street when other columns hold the other parts.
    let has_parts = headers.iter().any(|h| {
        let k = key(h);
        synonym(&k).is_some_and(|s| s.starts_with("address_") && s != "address_street")
    });
    let known = |f: &str| fields.contains(&f) || compounds.iter().any(|c| c == f);
    let mut out = Vec::new();
    for (i, header) in headers.iter().enumerate() {
        let field = explicit.get(&i).cloned().or_else(|| {
            let k = key(header);
            if k == "street_address" {
                let target = if has_parts { "address_street" } else { "address" };
                return known(target).then(|| target.to_string());
            }
            fields
                .iter()
                .find(|f| **f == k)
                .map(|f| (*f).to_string())
                .or_else(|| compounds.iter().find(|c| **c == k).cloned())
                .or_else(|| synonym(&k).filter(|s| known(s)).map(str::to_string))
        });
        if let Some(field) = field {
            if out.iter().any(|(_, f)| *f == field) {
                return Err(Error::Mapping(format!(
                    "two columns map to '{field}': choose one with --map"
                )));
            }
            out.push((i, field));
        }
    }
    if out.is_empty() {
        return Err(Error::Mapping(format!(
            "no column matches a field of {collection} ({}); name them with --map COLUMN=FIELD",
            fields.join(", ")
        )));
    }
    Ok(out)
}

/// One row's values by field, or its problems (field names and rules, never values).
pub fn check_row(
    config: &Config,
    collection: &str,
    map: &[(usize, String)],
    row: &[&str],
) -> Result<BTreeMap<String, String>, Vec<String>> {
    let spec = &config.collections[collection];
    let mut values = BTreeMap::new();
    let mut problems = Vec::new();
    for (i, field) in map {
        let raw = row.get(*i).copied().unwrap_or("").trim();
        if raw.is_empty() {
            continue;
        }
        // A whole address in one column becomes its parts (as well as it can be read).
        let given = crate::address::Given::Text(raw);
        let is_address = !crate::address::part_fields(config, collection, field).is_empty();
        let pairs = match crate::address::expand(config, collection, field, &given) {
            Ok(parts) if !parts.is_empty() => parts,
            // A cell like "," holds no address: nothing to import for it.
            _ if is_address => Vec::new(),
            _ => vec![(field.clone(), raw.to_string())],
        };
        for (field, raw) in pairs {
            let ty = spec.fields.iter().find(|f| f.name == field).expect("mapped fields exist").ty;
            match normalize(&field, ty, &raw) {
                Ok(_) => {
                    values.insert(field, raw);
                }
                Err(e) => problems.push(e.to_string()),
            }
        }
    }
    if problems.is_empty()
        && let Err(e) = crate::address::check_parts(config, collection, &values)
    {
        problems.push(e.to_string());
    }
    for f in spec.fields.iter().filter(|f| f.required && !values.contains_key(&f.name)) {
        if !problems.iter().any(|p| p.contains(&format!("'{}'", f.name))) {
            problems.push(format!("field '{}': is required", f.name));
        }
    }
    if problems.is_empty() { Ok(values) } else { Err(problems) }
}

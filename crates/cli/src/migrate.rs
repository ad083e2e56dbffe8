//! `custody migrate`: brings a data directory made by an earlier custody up to date. Today
//! that is one step: an `address` kept as one line of free text becomes an address in parts
//! (street, unit, city, region, postal code, country), so breach notices can be scoped by
//! where customers live. The configuration is changed (the original kept beside it) and
//! every stored address is read into its parts in one transaction; how many could be read
//! is printed. Running it again does nothing more.

use std::path::Path;

use anyhow::{Context, Result};
use clap::Args;
use custody_vault::{AuditedVault, Config, FieldType, Vault};

use crate::EXIT_OK;
use crate::records::{self, Unlock};

#[derive(Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    unlock: Unlock,
}

/// The collections whose `address` field is still free text, in the configuration's text.
fn text_addresses(config: &Config) -> Vec<String> {
    config
        .collections
        .iter()
        .filter(|(_, c)| c.fields.iter().any(|f| f.name == "address" && f.ty == FieldType::Text))
        .map(|(name, _)| name.clone())
        .collect()
}

/// The configuration text with `type = "text"` of the `address` field of `collection`
/// changed to `type = "address"`; `None` if that line is not found as custody wrote it.
fn rewrite(text: &str, collection: &str) -> Option<String> {
    let header = format!("[[collections.{collection}.fields]]");
    let compact = |line: &str| line.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    // Each `[[collections.NAME.fields]]` block runs to the next `[` line; its `type` line
    // may come before or after its `name` line.
    let starts: Vec<usize> = (0..lines.len()).filter(|&i| lines[i].trim() == header).collect();
    let target = starts.into_iter().find_map(|start| {
        let end = (start + 1..lines.len())
            .find(|&i| lines[i].trim_start().starts_with('['))
            .unwrap_or(lines.len());
        let block = start + 1..end;
        let named = block.clone().any(|i| compact(&lines[i]) == "name=\"address\"");
        let typed = block.clone().find(|&i| compact(&lines[i]) == "type=\"text\"");
        typed.filter(|_| named)
    })?;
    lines[target] = "type = \"address\"".to_string();
    let mut joined = lines.join("\n");
    if text.ends_with('\n') {
        joined.push('\n');
    }
    Some(joined)
}

pub fn run(data_dir: &Path, args: &MigrateArgs) -> Result<u8> {
    let data = custody_store::DataDir::new(data_dir);
    let config = records::config(data_dir)?;
    let pending = text_addresses(&config);
    if pending.is_empty() {
        println!("{} is up to date: nothing to migrate.", data_dir.display());
        return Ok(EXIT_OK);
    }
    let path = data.config();
    let original = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read '{}'", path.display()))?;
    let mut text = original.clone();
    for collection in &pending {
        text = rewrite(&text, collection).with_context(|| {
            format!(
                "the `address` field of '{collection}' in {} is not written as custody wrote it; change its `type = \"text\"` to `type = \"address\"` by hand, then run `custody migrate` again",
                path.display()
            )
        })?;
    }
    let new_config = Config::parse(&text)
        .context("the migrated configuration is not valid (nothing was changed)")?;
    let root = records::unseal(data_dir, &args.unlock)?;
    let location = custody_vault::layout::vault_location(data_dir, &new_config);
    let vault = Vault::open_at(&location, new_config, root)?;
    let ledger =
        custody_vault::layout::open_ledger(data_dir, custody_ledger::LedgerOptions::default())?;
    let mut vault = AuditedVault::new(vault, ledger);
    // The original stays beside the new configuration, for reference.
    let kept = path.with_file_name("config.toml.before-migrate");
    if !kept.exists() {
        crate::init::write_private(&kept, original.as_bytes())?;
    }
    for collection in &pending {
        let done = vault.migrate_to_address(&records::OWNER, collection, "address", "address")?;
        println!(
            "{collection}: {} address(es) moved into parts: {} with region and country, {} with the country only, {} kept whole as the street (region and country unknown: check them with `custody records show`).",
            done.records, done.region_and_country, done.country_only, done.street_only
        );
    }
    // Written after the values moved: if this is interrupted, running it again finishes.
    custody_store::files::replace(&path, text.as_bytes(), 0o600)
        .with_context(|| format!("cannot write '{}'", path.display()))?;
    println!(
        "Done. {} now keeps addresses in parts; the previous configuration is in {}.",
        path.display(),
        kept.display()
    );
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "purposes = []\n\n[[collections.customers.fields]]\nname = \"address\"\ntype = \"text\"\nsensitivity = \"personal\"\n\n[[collections.customers.fields]]\nname = \"notes\"\ntype = \"text\"\nsensitivity = \"sensitive\"\n";

    #[test]
    fn only_the_address_type_line_changes() {
        let new = rewrite(OLD, "customers").unwrap();
        assert_eq!(new, OLD.replacen("type = \"text\"", "type = \"address\"", 1));
        assert_eq!(rewrite(OLD, "orders"), None);
        let odd = OLD.replace(
            "type = \"text\"\nsensitivity = \"personal\"",
            "type = 'text'\nsensitivity = \"personal\"",
        );
        assert_eq!(rewrite(&odd, "customers"), None, "not as custody wrote it: left to the owner");
    }
}

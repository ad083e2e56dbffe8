//! `custody-testkit generate --profile accuracy|throughput --out DIR [--seed N] [--size-mb N]`
//! `custody-testkit package --from CORPUS --out DIR`
//!
//! Writes a corpus with planted customer data and its ground truth; see the library docs.

use std::fmt::Write as _;
use std::process::ExitCode;

use custody_testkit::{Options, Profile, generate};

const USAGE: &str = "\
usage: custody-testkit generate --profile accuracy|throughput --out DIR [--seed N] [--size-mb N] [--force]

  --profile   accuracy: ~200 small files, dense planted values and hard negatives
              throughput: --size-mb MiB of mostly ordinary data, sparse planted values
  --out       output directory (absent or empty; with --force, a previous corpus is replaced)
  --seed      random seed (default 42); the same seed gives identical files
  --size-mb   throughput corpus size in MiB (default 512)
  --force     replace DIR if it holds a previous corpus (it has a truth.jsonl)

Writes DIR/truth.jsonl (one JSON object per planted value) and DIR/negatives.jsonl.

usage: custody-testkit package --from CORPUS --out DIR

Writes the corpus again in every format family custody reads (zip, tar.gz, gz, docx,
pptx, odt, xlsx, ods, PDF, HTML, RTF, eml, mbox, SQLite) and DIR/truth-by-value.jsonl.";

fn parse(args: &[String]) -> Result<Options, String> {
    let mut it = args.iter();
    match it.next().map(String::as_str) {
        Some("generate") => {}
        Some("-h" | "--help") | None => return Err(String::new()),
        Some(other) => return Err(format!("unknown command '{other}'")),
    }
    let mut profile = None;
    let mut out = None;
    let mut seed = Options::DEFAULT_SEED;
    let mut size_mb = Options::DEFAULT_SIZE_MB;
    let mut force = false;
    while let Some(flag) = it.next() {
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (flag.as_str(), None),
        };
        let mut value = |what: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("{name} needs {what}"))
        };
        match name {
            "--profile" => {
                profile = Some(value("a profile")?.parse::<Profile>().map_err(|e| e.to_string())?);
            }
            "--out" => out = Some(value("a directory")?),
            "--seed" => {
                let v = value("a number")?;
                seed = v
                    .parse()
                    .map_err(|_| format!("--seed expects a non-negative integer, got '{v}'"))?;
            }
            "--size-mb" => {
                let v = value("a number")?;
                size_mb =
                    v.parse().ok().filter(|&n: &u64| n > 0).ok_or_else(|| {
                        format!("--size-mb expects a positive integer, got '{v}'")
                    })?;
            }
            "--force" => force = true,
            "-h" | "--help" => return Err(String::new()),
            _ => return Err(format!("unknown option '{flag}'")),
        }
    }
    let profile = profile.ok_or("--profile is required")?;
    let out = out.ok_or("--out is required")?;
    let mut opts = Options::new(profile, out);
    opts.seed = seed;
    opts.size_mb = size_mb;
    opts.overwrite = force;
    Ok(opts)
}

/// `package --from CORPUS --out DIR`.
fn package(args: &[String]) -> ExitCode {
    let (mut from, mut out) = (None, None);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--from" => from = it.next().cloned(),
            "--out" => out = it.next().cloned(),
            other => {
                eprintln!("error: unknown option '{other}'\n\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let (Some(from), Some(out)) = (from, out) else {
        eprintln!("error: --from and --out are required\n\n{USAGE}");
        return ExitCode::from(2);
    };
    match custody_testkit::formats::package(std::path::Path::new(&from), std::path::Path::new(&out))
    {
        Ok(truth) => {
            let mut lines = String::new();
            for p in &truth {
                let _ = writeln!(
                    lines,
                    "{{\"file\":{:?},\"family\":{:?},\"kind\":{:?},\"value\":{:?}}}",
                    p.file, p.family, p.kind, p.value
                );
            }
            if let Err(e) =
                std::fs::write(std::path::Path::new(&out).join("truth-by-value.jsonl"), lines)
            {
                eprintln!("error: cannot write the truth: {e}");
                return ExitCode::FAILURE;
            }
            let families: std::collections::BTreeSet<&str> =
                truth.iter().map(|p| p.family).collect();
            println!("{} planted values in {} format families", truth.len(), families.len());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot package {from} into {out}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("package") {
        return package(&args[1..]);
    }
    let opts = match parse(&args) {
        Ok(o) => o,
        Err(msg) if msg.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("error: {msg}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match generate(&opts) {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot generate into {}: {e}", opts.out.display());
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_a_full_command_line() {
        let o = parse(&args(
            "generate --profile throughput --out /tmp/x --seed 7 --size-mb 64 --force",
        ))
        .unwrap();
        assert_eq!(o.profile, Profile::Throughput);
        assert_eq!(o.out, std::path::PathBuf::from("/tmp/x"));
        assert_eq!((o.seed, o.size_mb, o.overwrite), (7, 64, true));
        let o = parse(&args("generate --profile=accuracy --out=/tmp/y")).unwrap();
        assert_eq!(o.profile, Profile::Accuracy);
        assert_eq!(o.seed, Options::DEFAULT_SEED);
    }

    #[test]
    fn rejects_bad_command_lines() {
        for bad in [
            "generate --out /tmp/x",
            "generate --profile accuracy",
            "generate --profile fast --out /tmp/x",
            "generate --profile accuracy --out /tmp/x --seed -1",
            "generate --profile accuracy --out /tmp/x --size-mb 0",
            "generate --profile accuracy --out /tmp/x --bogus",
            "make --profile accuracy --out /tmp/x",
        ] {
            let err = parse(&args(bad)).unwrap_err();
            assert!(!err.is_empty(), "{bad}");
        }
        assert_eq!(parse(&args("--help")).unwrap_err(), "");
    }
}

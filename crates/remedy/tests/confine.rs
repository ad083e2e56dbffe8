//! Review item 1: a fix acts only on the file that was scanned. Someone who owns a folder
//! inside the scanned tree plants a file named like the owner's `vault.db`, lets the scan
//! read it, then swaps the folder for a symbolic link to the data directory. Before,
//! `fix shred --apply` then zeroed and deleted the real vault. Each action must leave the
//! file outside the tree untouched and say why it did nothing.

use std::fs;
use std::path::{Path, PathBuf};

use custody_detect::DetectorConfig;
use custody_remedy::{Action, Fixer, Gather, Outcome, Target};
use custody_scan::{NoProgress, ScanOptions, Scanner};

const PRECIOUS: &[u8] = b"the owner's real vault: must survive\n";

/// A Luhn-valid Visa number that is not a published test card.
const CARD: &str = "4539 1488 0343 6467";

struct Setup {
    _tmp: tempfile::TempDir,
    share: PathBuf,
    data: PathBuf,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let share = tmp.path().join("share");
    let data = tmp.path().join("data");
    fs::create_dir_all(share.join("planted")).unwrap();
    fs::create_dir_all(&data).unwrap();
    fs::write(data.join("vault.db"), PRECIOUS).unwrap();
    fs::write(share.join("planted/vault.db"), format!("card {CARD}\n")).unwrap();
    let root = custody_crypto::Key::from_bytes([9; 32]);
    custody_remedy::quarantine::set_up(&data, &root).unwrap();
    Setup { _tmp: tmp, share, data }
}

fn scan(share: &Path, action: Action) -> Vec<Target> {
    let options = ScanOptions {
        roots: vec![share.to_path_buf()],
        detector: DetectorConfig::default(),
        threads: 1,
        ..ScanOptions::default()
    };
    let mut gather = Gather::new(&options.roots, Some(action));
    Scanner::new(options).unwrap().run(&mut gather, &NoProgress).unwrap();
    gather.into_targets()
}

fn fixer(s: &Setup, action: Action) -> Fixer {
    let mut fixer = Fixer::new(
        &s.data,
        action,
        DetectorConfig::default(),
        custody_extract::Limits::default(),
        true,
        "2026-12-03T00:00:00Z".into(),
    )
    .unwrap();
    fixer.confine_to(vec![s.share.clone()]);
    fixer
}

/// Swaps the scanned folder for a link to the data directory, as the attacker does.
fn swap_for_link(s: &Setup) {
    fs::rename(s.share.join("planted"), s.share.join("planted.old")).unwrap();
    std::os::unix::fs::symlink(&s.data, s.share.join("planted")).unwrap();
}

fn check_untouched(s: &Setup, outcome: &Outcome) {
    assert!(matches!(outcome, Outcome::Skipped(_)), "{outcome:?}");
    assert_eq!(fs::read(s.data.join("vault.db")).unwrap(), PRECIOUS, "the real vault changed");
    let names: Vec<String> = fs::read_dir(&s.data)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "keys" && n != "quarantine")
        .collect();
    assert_eq!(names, vec!["vault.db".to_string()], "nothing was added beside it");
}

#[test]
fn review_1_a_folder_swapped_for_a_link_after_the_scan_is_not_followed() {
    for action in [Action::Shred, Action::Quarantine, Action::Redact] {
        let s = setup();
        let targets = scan(&s.share, action);
        assert_eq!(targets.len(), 1, "{action:?}: the planted file is found");
        swap_for_link(&s);
        let done = fixer(&s, action).fix(action, &targets[0]);
        check_untouched(&s, &done.outcome);
        if let Outcome::Skipped(why) = &done.outcome {
            assert!(why.contains("replaced by a link"), "{action:?}: {why}");
        }
    }
}

#[test]
fn review_1_a_file_replaced_after_the_scan_is_not_acted_on() {
    for action in [Action::Shred, Action::Quarantine, Action::Redact] {
        let s = setup();
        let targets = scan(&s.share, action);
        // Another file under the same name (a hard link to the vault, or a new file).
        let planted = s.share.join("planted/vault.db");
        fs::remove_file(&planted).unwrap();
        fs::write(&planted, format!("card {CARD}\nand more\n")).unwrap();
        let done = fixer(&s, action).fix(action, &targets[0]);
        assert!(matches!(done.outcome, Outcome::Skipped(_)), "{action:?}: {:?}", done.outcome);
        assert!(planted.exists(), "{action:?}: the new file is left alone");
        // And the file itself swapped for a link: refused, the link's target untouched.
        fs::remove_file(&planted).unwrap();
        std::os::unix::fs::symlink(s.data.join("vault.db"), &planted).unwrap();
        let done = fixer(&s, action).fix(action, &targets[0]);
        check_untouched(&s, &done.outcome);
    }
}

#[test]
fn review_1_the_scanned_file_is_still_fixed() {
    for action in [Action::Shred, Action::Quarantine, Action::Redact] {
        let s = setup();
        let targets = scan(&s.share, action);
        let done = fixer(&s, action).fix(action, &targets[0]);
        assert!(matches!(done.outcome, Outcome::Done), "{action:?}: {:?}", done.outcome);
        let planted = s.share.join("planted/vault.db");
        match action {
            Action::Redact => {
                let text = fs::read_to_string(&planted).unwrap();
                assert!(!text.contains(CARD) && text.contains("6467"), "{text}");
            }
            _ => assert!(!planted.exists(), "{action:?}"),
        }
        assert_eq!(fs::read(s.data.join("vault.db")).unwrap(), PRECIOUS);
    }
}

#[test]
fn review_1_nothing_outside_the_bases_is_acted_on() {
    let s = setup();
    let targets = scan(&s.share, Action::Shred);
    let mut fixer = fixer(&s, Action::Shred);
    fixer.confine_to(vec![s.share.join("elsewhere")]);
    let done = fixer.fix(Action::Shred, &targets[0]);
    assert!(matches!(done.outcome, Outcome::Skipped(_)), "{:?}", done.outcome);
    assert!(s.share.join("planted/vault.db").exists());
}

//! Archives and compressed streams: zip (and the Office/OpenDocument files that are zips),
//! tar, gzip, zstd.

use std::io::{self, Read, Seek};

use zip::ZipArchive;
use zip::result::ZipError;

use crate::budget::Limited;
use crate::{Cx, Format, Skipped, join, office};

/// A zip, or a file that is one (docx, xlsx, pptx, odt, ods): checked against the limits
/// from its central directory before anything is inflated, then read member by member.
pub(crate) fn zip_family<R: Read + Seek>(
    cx: &mut Cx<'_, '_>,
    location: &str,
    format: Format,
    reader: &mut R,
    depth: u32,
) -> Result<(), Skipped> {
    let mut archive = match ZipArchive::new(reader) {
        Ok(a) => a,
        Err(ZipError::UnsupportedArchive(_)) => {
            return Err(Skipped::Unsupported("a zip feature custody does not read"));
        }
        Err(_) => return Err(Skipped::Corrupt("not a readable zip archive")),
    };
    let limits = &cx.budget.limits;
    if archive.len() as u64 > limits.max_members {
        return Err(Skipped::TooManyMembers { limit: limits.max_members });
    }
    // The directory itself: declared sizes, and whether entries share bytes (the
    // overlapping-entry bomb, where thousands of entries inflate the same data).
    let mut declared: u64 = 0;
    let mut spans = Vec::with_capacity(archive.len());
    for i in 0..archive.len() {
        let Ok(entry) = archive.by_index_raw(i) else {
            return Err(Skipped::Corrupt("a zip entry's header is damaged"));
        };
        declared = declared.saturating_add(entry.size());
        if let Some(start) = entry.data_start() {
            spans.push((start, start.saturating_add(entry.compressed_size())));
        }
    }
    spans.sort_unstable();
    if spans.windows(2).any(|w| w[1].0 < w[0].1) || cx.budget.declared_bomb(declared) {
        return Err(Skipped::Bomb);
    }
    let names: Vec<String> =
        archive.file_names().filter_map(|n| n.ok().map(std::borrow::Cow::into_owned)).collect();
    let format = match format {
        Format::Zip => office::zip_flavour(&names, &mut archive).unwrap_or(Format::Zip),
        other => other,
    };
    if format != Format::Zip {
        return office::document(cx, location, format, archive);
    }
    for i in 0..archive.len() {
        let (member_name, size, compressed, encrypted, is_dir) = match archive.by_index_raw(i) {
            Ok(e) => (
                e.name().map_or_else(|_| format!("member{}", i + 1), std::borrow::Cow::into_owned),
                e.size(),
                e.compressed_size(),
                e.encrypted(),
                e.is_dir(),
            ),
            Err(_) => return Err(Skipped::Corrupt("a zip entry's header is damaged")),
        };
        if is_dir {
            continue;
        }
        let here = join(location, &member_name);
        if encrypted {
            cx.budget.count_member()?;
            cx.skip(&here, Skipped::Encrypted);
            continue;
        }
        // Members are streamed where their format allows; the file-wide limits apply.
        let max = cx.budget.limits.max_total;
        if size > max {
            cx.budget.count_member()?;
            cx.skip(&here, Skipped::TooLarge { limit: max });
            continue;
        }
        let file = match archive.by_index(i) {
            Ok(f) => f,
            Err(ZipError::UnsupportedArchive(_)) => {
                cx.budget.count_member()?;
                cx.skip(&here, Skipped::Unsupported("a compression method custody does not read"));
                continue;
            }
            Err(_) => {
                cx.budget.count_member()?;
                cx.skip(&here, Skipped::Corrupt("a zip member could not be unpacked"));
                continue;
            }
        };
        let mut limited = Limited::new(file, cx.budget, max, Some(compressed));
        cx.member(&here, &member_name, &mut limited, depth)?;
    }
    Ok(())
}

/// gzip, zstd and tar streams (and their combinations, such as `.tar.gz`).
pub(crate) fn stream(
    cx: &mut Cx<'_, '_>,
    location: &str,
    name: &str,
    format: Format,
    reader: &mut dyn Read,
    depth: u32,
) -> Result<(), Skipped> {
    let max = cx.budget.limits.max_total;
    match format {
        Format::Gzip | Format::Zstd => {
            // The same file, decompressed: no new level in the location.
            let inner = inner_name(name);
            let mut decoded: Box<dyn Read> = if format == Format::Gzip {
                Box::new(flate2::read::MultiGzDecoder::new(reader))
            } else {
                match zstd::stream::read::Decoder::new(reader) {
                    Ok(d) => Box::new(d),
                    Err(_) => return Err(Skipped::Corrupt("not a readable zstd stream")),
                }
            };
            let mut limited = Limited::new(&mut decoded, cx.budget, max, None);
            cx.sniffed(location, &inner, &mut limited, depth)
        }
        Format::Tar => {
            let tripped = std::rc::Rc::new(std::cell::Cell::new(false));
            let guarded = TarGuard::new(reader, std::rc::Rc::clone(&tripped));
            let mut archive = tar::Archive::new(guarded);
            let Ok(entries) = archive.entries() else {
                return Err(Skipped::Corrupt("not a readable tar archive"));
            };
            for entry in entries {
                let Ok(entry) = entry else {
                    if tripped.get() {
                        cx.visitor.skipped(
                            location,
                            Skipped::Oversized("a tar name or extended header over 1 MiB"),
                        );
                        return Ok(());
                    }
                    // A damaged header ends the archive: tar has no directory to resync on.
                    return cx.settle(location, true, "the tar archive is damaged part-way");
                };
                if !entry.header().entry_type().is_file() {
                    continue;
                }
                let member_name =
                    entry.path().map_or_else(|_| "?".into(), |p| p.to_string_lossy().into_owned());
                let here = join(location, &member_name);
                let mut limited = Limited::new(entry, cx.budget, max, None);
                cx.member(&here, &member_name, &mut limited, depth)?;
            }
            Ok(())
        }
        _ => unreachable!("stream() is only called for gzip, zstd and tar"),
    }
}

/// The largest long name, long link or PAX header block a tar archive may carry (the tar
/// crate reads these whole into memory; real ones are a few hundred bytes).
const MAX_TAR_META: u64 = 1 << 20;

/// Passes a tar stream through to the tar crate, following its 512-byte headers, and fails
/// the read when a GNU long-name/long-link or PAX header announces more than
/// [`MAX_TAR_META`] bytes — before the crate would allocate them (a compressed tar can
/// announce gigabytes of "name"). A header whose checksum does not verify at the expected
/// place means the stream is not followed any more (sparse files, damage): the guard then
/// passes everything through rather than refuse a good archive.
struct TarGuard<'r> {
    inner: &'r mut dyn Read,
    tripped: std::rc::Rc<std::cell::Cell<bool>>,
    pos: u64,
    next_header: Option<u64>,
    header: [u8; 512],
}

impl<'r> TarGuard<'r> {
    fn new(inner: &'r mut dyn Read, tripped: std::rc::Rc<std::cell::Cell<bool>>) -> Self {
        Self { inner, tripped, pos: 0, next_header: Some(0), header: [0; 512] }
    }

    /// Looks at a complete header; returns where the next one starts, or `None` to stop
    /// following. Errs when a metadata entry is too large.
    fn header_done(&self, at: u64) -> io::Result<Option<u64>> {
        let h = &self.header;
        if h.iter().all(|&b| b == 0) {
            return Ok(Some(at + 512)); // end-of-archive blocks
        }
        let stored = octal(&h[148..156]);
        let sum: u64 = h
            .iter()
            .enumerate()
            .map(|(i, &b)| if (148..156).contains(&i) { 32 } else { u64::from(b) })
            .sum();
        let (Some(stored), Some(size)) = (stored, size_field(&h[124..136])) else {
            return Ok(None);
        };
        if stored != sum {
            return Ok(None);
        }
        if matches!(h[156], b'L' | b'K' | b'x' | b'g') && size > MAX_TAR_META {
            self.tripped.set(true);
            return Err(io::Error::new(io::ErrorKind::InvalidData, "tar metadata too large"));
        }
        if h[156] == b'S' {
            return Ok(None); // GNU sparse: extension blocks follow; stop following
        }
        Ok(Some(at + 512 + size.div_ceil(512) * 512))
    }
}

impl Read for TarGuard<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let start = self.pos;
        self.pos += n as u64;
        while let Some(at) = self.next_header {
            if at >= self.pos || at + 512 <= start {
                // Not in this read (or a header that began before this read: handled by
                // copying as reads arrive, below).
                if at + 512 <= start {
                    self.next_header = None; // never seen whole: stop following
                }
                break;
            }
            // Copy the part of the header that is in this read.
            let from = at.max(start);
            let to = (at + 512).min(self.pos);
            let src = &buf[(from - start) as usize..(to - start) as usize];
            self.header[(from - at) as usize..(to - at) as usize].copy_from_slice(src);
            if to < at + 512 {
                break; // the rest comes with the next read
            }
            self.next_header = self.header_done(at)?;
        }
        Ok(n)
    }
}

fn octal(field: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(field).ok()?;
    let s = s.trim_matches(|c: char| c == '\0' || c == ' ');
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(s, 8).ok()
}

/// A header's size: octal, or GNU base-256 (high bit set) for large files.
fn size_field(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 != 0 {
        let mut v: u64 = u64::from(field[0] & 0x7f);
        for &b in &field[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(v);
    }
    octal(field)
}

/// The name of what a compressed file holds (`backup.tar.gz` → `backup.tar`,
/// `x.tgz` → `x.tar`).
fn inner_name(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    for (ext, replace) in
        [(".tgz", ".tar"), (".tzst", ".tar"), (".gz", ""), (".zst", ""), (".zstd", "")]
    {
        if lower.ends_with(ext) {
            return format!("{}{replace}", &name[..name.len() - ext.len()]);
        }
    }
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::inner_name;

    #[test]
    fn compressed_names() {
        assert_eq!(inner_name("backup.tar.gz"), "backup.tar");
        assert_eq!(inner_name("x.TGZ"), "x.tar");
        assert_eq!(inner_name("log.zst"), "log");
        assert_eq!(inner_name("plain"), "plain");
    }
}

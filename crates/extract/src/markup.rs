//! HTML and RTF to plain text: small, forgiving converters (hostile input just yields
//! odd text, never an error).

/// The visible text of an HTML document: tags removed (block tags end a line), script and
/// style content dropped, entities decoded; `mailto:` and `tel:` links kept, since they
/// name customers too.
pub(crate) fn html_text(html: &[u8]) -> String {
    let html = String::from_utf8_lossy(html);
    let bytes = html.as_bytes();
    // Lower-cased once (the same length: only ASCII changes), to find closing tags.
    let lower = html.to_ascii_lowercase();
    let mut out = String::with_capacity(html.len() / 2);
    let mut i = 0;
    let mut text_from = 0;
    while i < bytes.len() {
        if bytes[i] != b'<' {
            i += 1;
            continue;
        }
        decode_entities(&html[text_from..i], &mut out);
        if html[i..].starts_with("<!--") {
            i = html[i..].find("-->").map_or(bytes.len(), |p| i + p + 3);
            text_from = i;
            continue;
        }
        // The tag's text: up to its `>`, or to the end of an unclosed one.
        let (tag, end) = match html[i..].find('>') {
            Some(p) => (&html[i + 1..i + p], i + p + 1),
            None => (&html[i + 1..], bytes.len()),
        };
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase();
        for attr in ["href=\"mailto:", "href=\"tel:", "href='mailto:", "href='tel:"] {
            if let Some(p) = lower[i + 1..i + 1 + tag.len()].find(attr) {
                let rest = &tag[p + attr.len()..];
                let value = rest.split(['"', '\'', '?']).next().unwrap_or("");
                out.push(' ');
                decode_entities(value, &mut out);
                out.push(' ');
            }
        }
        i = end;
        if (name == "script" || name == "style") && !tag.starts_with('/') {
            let close = format!("</{name}");
            i = lower[i..].find(&close).map_or(bytes.len(), |p| i + p);
        } else if is_block(&name) {
            out.push('\n');
        } else if matches!(name.as_str(), "td" | "th") {
            out.push('\t');
        } else {
            out.push(' ');
        }
        text_from = i;
    }
    if text_from < bytes.len() {
        decode_entities(&html[text_from..], &mut out);
    }
    out
}

fn is_block(name: &str) -> bool {
    matches!(
        name,
        "p" | "br"
            | "div"
            | "tr"
            | "li"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "table"
            | "ul"
            | "ol"
            | "section"
            | "article"
            | "header"
            | "footer"
            | "address"
            | "pre"
            | "blockquote"
            | "hr"
            | "title"
            | "body"
    )
}

/// Appends `text` with HTML entities decoded (the common named ones and all numeric ones).
fn decode_entities(text: &str, out: &mut String) {
    let mut rest = text;
    while let Some(p) = rest.find('&') {
        out.push_str(&rest[..p]);
        rest = &rest[p..];
        let end =
            rest[1..].find(|c: char| c == ';' || c.is_whitespace() || c == '&').map(|e| e + 1);
        let decoded = end.filter(|e| rest.as_bytes().get(*e) == Some(&b';')).and_then(|e| {
            let name = &rest[1..e];
            let ch = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some(' '),
                "commat" => Some('@'),
                "period" => Some('.'),
                "hyphen" | "dash" => Some('-'),
                _ => name
                    .strip_prefix("#x")
                    .or_else(|| name.strip_prefix("#X"))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            ch.map(|c| (c, e + 1))
        });
        if let Some((c, len)) = decoded {
            out.push(c);
            rest = &rest[len..];
        } else {
            out.push('&');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
}

/// The text of an RTF document: control words dropped (`\par` and `\line` end a line,
/// `\tab` is a tab), `\'hh` and `\uN` escapes decoded, and the groups that hold no text
/// (font and colour tables, pictures, `\*` destinations) skipped.
pub(crate) fn rtf_text(rtf: &[u8]) -> String {
    let mut out = String::with_capacity(rtf.len() / 2);
    // Per group: whether its text is skipped.
    let mut skip_stack: Vec<bool> = vec![false];
    let mut uc_skip = 0usize; // fallback characters after \uN still to skip
    let mut i = 0;
    let skipping = |s: &Vec<bool>| s.last().copied().unwrap_or(false);
    while i < rtf.len() {
        let b = rtf[i];
        match b {
            b'{' => {
                let inherited = skipping(&skip_stack);
                skip_stack.push(inherited);
                i += 1;
                if rtf[i..].starts_with(b"\\*")
                    && let Some(top) = skip_stack.last_mut()
                {
                    *top = true;
                }
            }
            b'}' => {
                if skip_stack.len() > 1 {
                    skip_stack.pop();
                }
                i += 1;
            }
            b'\\' => {
                i += 1;
                let Some(&next) = rtf.get(i) else { break };
                if next == b'\'' {
                    let hex = rtf.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
                    if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok())
                        && !skipping(&skip_stack)
                    {
                        if uc_skip > 0 {
                            uc_skip -= 1;
                        } else {
                            out.push(char::from(v)); // Windows-1252 ≈ Latin-1
                        }
                    }
                    i += 3;
                    continue;
                }
                if !next.is_ascii_alphabetic() {
                    // A control symbol: \\ \{ \} are literal, \~ a space, others nothing.
                    if !skipping(&skip_stack)
                        && matches!(next, b'\\' | b'{' | b'}' | b'~' | b'-' | b'_')
                    {
                        out.push(match next {
                            b'~' => ' ',
                            b'_' => '-',
                            b'-' => '\u{AD}',
                            c => char::from(c),
                        });
                    }
                    i += 1;
                    continue;
                }
                let start = i;
                while i < rtf.len() && rtf[i].is_ascii_alphabetic() {
                    i += 1;
                }
                let word = &rtf[start..i];
                let num_start = i;
                if i < rtf.len() && (rtf[i] == b'-' || rtf[i].is_ascii_digit()) {
                    i += 1;
                    while i < rtf.len() && rtf[i].is_ascii_digit() {
                        i += 1;
                    }
                }
                let param: Option<i32> =
                    std::str::from_utf8(&rtf[num_start..i]).ok().and_then(|n| n.parse().ok());
                if rtf.get(i) == Some(&b' ') {
                    i += 1;
                }
                let skip = skipping(&skip_stack);
                match word {
                    b"fonttbl" | b"colortbl" | b"stylesheet" | b"pict" | b"object" | b"info"
                    | b"themedata" | b"datastore" | b"listtable" | b"header" | b"footer" => {
                        // Headers and footers hold text; the rest does not.
                        if !matches!(word, b"header" | b"footer")
                            && let Some(top) = skip_stack.last_mut()
                        {
                            *top = true;
                        }
                    }
                    b"par" | b"line" | b"row" | b"sect" | b"page" if !skip => out.push('\n'),
                    b"tab" | b"cell" if !skip => out.push('\t'),
                    b"u" if !skip => {
                        if let Some(n) = param {
                            let code = if n < 0 { n + 65_536 } else { n };
                            out.extend(char::from_u32(code as u32));
                            uc_skip = 1;
                        }
                    }
                    _ => {}
                }
            }
            b'\r' | b'\n' => i += 1,
            _ => {
                if !skipping(&skip_stack) {
                    if uc_skip > 0 {
                        uc_skip -= 1;
                    } else {
                        out.push(char::from(b));
                    }
                }
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_text_without_tags_scripts_or_entities() {
        let html = b"<html><head><style>p{color:red}</style><script>var ssn='x';</script></head>\
            <body><p>Card&nbsp;4111&#32;1111 1111 1111</p><a href=\"mailto:jane@example.com\">mail</a>\
            <!-- 123-45-6789 --><td>a</td><td>b&amp;c</td></body></html>";
        let text = html_text(html);
        assert!(text.contains("Card 4111 1111 1111 1111"), "{text}");
        assert!(text.contains("jane@example.com"));
        assert!(text.contains("b&c"));
        assert!(!text.contains("color") && !text.contains("var ssn") && !text.contains("123-45"));
    }

    #[test]
    fn rtf_text_without_control_words() {
        let rtf = br"{\rtf1\ansi{\fonttbl{\f0 Arial;}}{\*\generator Word;}\f0 SSN: 123-45-6789\par Caf\'e9 \u8364? ok\tab x}";
        let text = rtf_text(rtf);
        assert_eq!(text, "SSN: 123-45-6789\nCaf\u{e9} \u{20ac} ok\tx");
    }

    #[test]
    fn hostile_markup_does_not_panic() {
        for input in [
            &b"<"[..],
            b"<script",
            b"&#xFFFFFFFF;",
            b"{\\",
            b"\\'",
            b"{\\u-",
            b"}}}}{",
            b"<p>hi<b\xff",
            "<a \u{e9}".as_bytes(),
        ] {
            let _ = html_text(input);
            let _ = rtf_text(input);
        }
    }
}

//! The text encodings a file's references are read in: UTF-8, and for
//! stylesheets UTF-16, told by its byte order mark or, without one, by an
//! `@charset "utf-16..."` rule written in UTF-16. A rewritten file is
//! written back in the encoding it was read in (BOM included), so its
//! bytes differ from the source's only in the references.

use super::Syntax;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextEncoding {
    Utf8,
    Utf16 { big_endian: bool, bom: bool },
}

impl TextEncoding {
    /// Its name, as an `@charset` rule would spell it.
    pub fn name(self) -> &'static str {
        match self {
            TextEncoding::Utf8 => "UTF-8",
            TextEncoding::Utf16 {
                big_endian: false, ..
            } => "UTF-16LE",
            TextEncoding::Utf16 {
                big_endian: true, ..
            } => "UTF-16BE",
        }
    }
}

/// `@charset "` in UTF-16LE: the start of a stylesheet without a BOM that
/// says it is UTF-16.
const CHARSET_LE: &[u8] = b"@\0c\0h\0a\0r\0s\0e\0t\0 \0\"\0";
const CHARSET_BE: &[u8] = b"\0@\0c\0h\0a\0r\0s\0e\0t\0 \0\"";

/// The text of a file of this syntax, and the encoding it was in; the bytes
/// back when they are no text the scanners can read.
pub fn decode(syntax: Syntax, bytes: Vec<u8>) -> Result<(String, TextEncoding), Vec<u8>> {
    // UTF-16 of ASCII text is valid UTF-8 too (with a NUL every other
    // byte), so its marks are looked for first.
    let utf16 = match bytes.get(..2) {
        _ if syntax != Syntax::Css => None,
        Some([0xFF, 0xFE]) => Some((false, true)),
        Some([0xFE, 0xFF]) => Some((true, true)),
        _ if bytes.starts_with(CHARSET_LE) => Some((false, false)),
        _ if bytes.starts_with(CHARSET_BE) => Some((true, false)),
        _ => None,
    };
    let Some((big_endian, bom)) = utf16 else {
        return String::from_utf8(bytes)
            .map(|text| (text, TextEncoding::Utf8))
            .map_err(|e| e.into_bytes());
    };
    let body = if bom { &bytes[2..] } else { &bytes[..] };
    if body.len() % 2 != 0 {
        return Err(bytes);
    }
    let units = body.chunks_exact(2).map(|c| {
        let pair = [c[0], c[1]];
        if big_endian {
            u16::from_be_bytes(pair)
        } else {
            u16::from_le_bytes(pair)
        }
    });
    let Ok(text) = char::decode_utf16(units).collect::<Result<String, _>>() else {
        // An unpaired surrogate could not be written back as it was.
        return Err(bytes);
    };
    if !bom && !starts_with_utf16_charset(&text) {
        return Err(bytes);
    }
    Ok((text, TextEncoding::Utf16 { big_endian, bom }))
}

fn starts_with_utf16_charset(text: &str) -> bool {
    text.get(.."@charset \"utf-16".len())
        .is_some_and(|s| s.eq_ignore_ascii_case("@charset \"utf-16"))
}

/// `text` in `encoding`, as [`decode`] read it: `encode(decode(b)) == b`.
pub fn encode(text: String, encoding: TextEncoding) -> Vec<u8> {
    match encoding {
        TextEncoding::Utf8 => text.into_bytes(),
        TextEncoding::Utf16 { big_endian, bom } => {
            let mut out = Vec::with_capacity(2 + text.len() * 2);
            let mut push = |u: u16| {
                out.extend_from_slice(&if big_endian {
                    u.to_be_bytes()
                } else {
                    u.to_le_bytes()
                })
            };
            if bom {
                push(0xFEFF);
            }
            for u in text.encode_utf16() {
                push(u);
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16(text: &str, big_endian: bool, bom: bool) -> Vec<u8> {
        encode(text.to_string(), TextEncoding::Utf16 { big_endian, bom })
    }

    #[test]
    fn utf16_stylesheets_are_read_by_bom_or_charset_and_written_back_as_they_were() {
        let css = "a { background: url(\"bg.png\"); content: \"\u{1F600} é\"; }\n";
        for big_endian in [false, true] {
            let bytes = utf16(css, big_endian, true);
            assert_eq!(
                &bytes[..2],
                if big_endian {
                    [0xFE, 0xFF]
                } else {
                    [0xFF, 0xFE]
                }
            );
            let (text, enc) = decode(Syntax::Css, bytes.clone()).unwrap();
            assert_eq!(text, css);
            assert_eq!(encode(text, enc), bytes);

            let with_charset = format!("@charset \"UTF-16\";\n{css}");
            let bytes = utf16(&with_charset, big_endian, false);
            let (text, enc) = decode(Syntax::Css, bytes.clone()).unwrap();
            assert_eq!(text, with_charset);
            assert_eq!(
                enc,
                TextEncoding::Utf16 {
                    big_endian,
                    bom: false
                }
            );
            assert_eq!(encode(text, enc), bytes);
        }
    }

    #[test]
    fn other_bytes_are_no_text() {
        // UTF-16 without BOM or charset, Latin-1, an odd length, an unpaired
        // surrogate, and UTF-16 in a script.
        let no_marker = utf16("a { background: url(bé.png) }", false, false);
        let mut odd = utf16("a{}", false, true);
        odd.push(b'x');
        let mut lone = utf16("a{}", false, true);
        lone.extend_from_slice(&0xD800u16.to_le_bytes());
        for bytes in [no_marker, b"a { content: \"\xe9\" }".to_vec(), odd, lone] {
            assert!(decode(Syntax::Css, bytes).is_err());
        }
        assert!(decode(Syntax::Js, utf16("x", false, true)).is_err());
        assert_eq!(
            decode(Syntax::Css, b"a{}".to_vec()).unwrap(),
            ("a{}".to_string(), TextEncoding::Utf8)
        );
    }
}

//! Writing S3 XML: text escaping, the `encoding-type=url` form of list values, and the element
//! writer every response document is built with.
//!
//! Invariant: every document written is well-formed XML 1.0: element names are trusted constants
//! and text goes through [`escape`], which also replaces characters XML 1.0 cannot carry. With
//! `encoding-type=url` list values are percent-encoded ([`list_value`]) instead, never a mix
//! within one response.

use std::borrow::Cow;

use crate::http::percent::url_form_encode;

/// The S3 document namespace.
pub(crate) const S3_XMLNS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";
const XML_DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

/// Escapes text for XML element content (not attribute values: quotes are left as they are):
/// `< > &` become entities (quick-xml's `partial_escape`), CR, LF and TAB become character
/// references (as S3 does, so they survive parsers' newline normalisation), and characters XML 1.0
/// cannot carry at all (other C0 controls, U+FFFE, U+FFFF) become U+FFFD. Keys holding such
/// characters round-trip only with `encoding-type=url`.
pub(crate) fn escape(s: &str) -> Cow<'_, str> {
    let escaped = quick_xml::escape::partial_escape(s);
    // Fast path: no control characters and no U+FFFE/U+FFFF (whose UTF-8 starts with 0xEF).
    if !escaped.bytes().any(|b| b < 0x20 || b == 0xEF) {
        return escaped;
    }
    if !escaped.chars().any(needs_char_fixup) {
        return escaped;
    }
    let mut out = String::with_capacity(escaped.len() + 16);
    for c in escaped.chars() {
        match c {
            '\r' => out.push_str("&#13;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            c if is_xml10_char(c) => out.push(c),
            _ => out.push(char::REPLACEMENT_CHARACTER),
        }
    }
    Cow::Owned(out)
}

fn needs_char_fixup(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\t') || !is_xml10_char(c)
}

/// XML 1.0 `Char` production (surrogates cannot occur in a Rust `char`).
fn is_xml10_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// A list value as sent: with `encoding-type=url` percent-encoded by
/// [`url_form_encode`] (every byte but `A-Z a-z 0-9 - _ . ~ /` as `%XX`, uppercase hex, which
/// botocore's `unquote_plus` restores exactly), raw (to be escaped) otherwise.
pub(crate) fn list_value(s: &str, url_encoding: bool) -> Cow<'_, str> {
    if url_encoding {
        url_form_encode(s)
    } else {
        Cow::Borrowed(s)
    }
}

/// `"etag"`: adds the quotes S3 shows around ETags unless already there.
pub(crate) fn quoted_etag(etag: &str) -> Cow<'_, str> {
    if etag.len() >= 2 && etag.starts_with('"') && etag.ends_with('"') {
        Cow::Borrowed(etag)
    } else {
        Cow::Owned(format!("\"{etag}\""))
    }
}

/// `true` / `false`, as S3 writes booleans.
pub(crate) fn bool_text(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

/// Builds one XML document: the declaration, then elements written in order. Element names are
/// trusted constants; text is escaped.
#[derive(Debug)]
pub(crate) struct XmlWriter {
    out: String,
    depth: usize,
}

impl Default for XmlWriter {
    fn default() -> Self {
        XmlWriter::new()
    }
}

impl XmlWriter {
    /// A document holding only `<?xml version="1.0" encoding="UTF-8"?>\n`.
    pub(crate) fn new() -> XmlWriter {
        let mut out = String::with_capacity(1024);
        out.push_str(XML_DECLARATION);
        XmlWriter { out, depth: 0 }
    }

    /// `<name>`
    pub(crate) fn open(&mut self, name: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        self.depth += 1;
        self
    }

    /// `<name xmlns="http://s3.amazonaws.com/doc/2006-03-01/">`, for root elements.
    pub(crate) fn open_ns(&mut self, name: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push_str(" xmlns=\"");
        self.out.push_str(S3_XMLNS);
        self.out.push_str("\">");
        self.depth += 1;
        self
    }

    /// `</name>`
    pub(crate) fn close(&mut self, name: &str) -> &mut Self {
        debug_assert!(self.depth > 0, "close({name}) without open");
        self.depth = self.depth.saturating_sub(1);
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    /// `<name>text</name>` with `text` escaped.
    pub(crate) fn elem(&mut self, name: &str, text: &str) -> &mut Self {
        self.open(name).text(text).close(name)
    }

    /// `text`, escaped, inside the element open now.
    pub(crate) fn text(&mut self, text: &str) -> &mut Self {
        self.out.push_str(&escape(text));
        self
    }

    /// Appends trusted, constant markup (e.g. an element with attributes); never client text.
    pub(crate) fn raw(&mut self, markup: &'static str) -> &mut Self {
        self.out.push_str(markup);
        self
    }

    /// The finished document.
    pub(crate) fn finish(self) -> String {
        debug_assert_eq!(self.depth, 0, "unclosed elements in XML document");
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DECL: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

    /// botocore's `unquote_plus`, for round-trip checks.
    fn unquote_plus(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 2;
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8(out).unwrap()
    }

    // --- escaping -----------------------------------------------------------------------------

    #[test]
    fn escape_markup_characters() {
        assert_eq!(escape("a<b>c&d'e\"f"), "a&lt;b&gt;c&amp;d'e\"f");
        assert!(matches!(
            escape("plain/ü/\u{F000}/\u{EFFF}"),
            Cow::Borrowed(_)
        ));
        assert_eq!(escape(""), "");
    }

    #[test]
    fn escape_whitespace_controls_as_char_refs() {
        assert_eq!(escape("a\rb\nc\td"), "a&#13;b&#10;c&#9;d");
    }

    #[test]
    fn escape_replaces_characters_xml_cannot_carry() {
        assert_eq!(
            escape("a\u{0}b\u{1}c\u{1F}d"),
            "a\u{FFFD}b\u{FFFD}c\u{FFFD}d"
        );
        assert_eq!(escape("x\u{FFFE}\u{FFFF}&"), "x\u{FFFD}\u{FFFD}&amp;");
        assert_eq!(
            escape("\u{7F}\u{FFFD}\u{10FFFF}"),
            "\u{7F}\u{FFFD}\u{10FFFF}"
        );
        for b in 0u8..0x80 {
            let s = char::from(b).to_string();
            let e = escape(&s);
            assert!(e.chars().all(|c| c >= ' '), "{b:#x} -> {e:?}");
        }
    }

    /// The `encoding-type=url` form of a value.
    fn url_encode(s: &str) -> Cow<'_, str> {
        list_value(s, true)
    }

    #[test]
    fn list_values_are_raw_without_url_encoding() {
        assert!(matches!(
            list_value("a dir/ü+x=1&y.txt", false),
            Cow::Borrowed("a dir/ü+x=1&y.txt")
        ));
    }

    #[test]
    fn url_encode_is_exact_under_unquote_plus() {
        assert_eq!(
            url_encode("a dir/ü+x=1&y.txt"),
            "a%20dir/%C3%BC%2Bx%3D1%26y.txt"
        );
        assert_eq!(url_encode("Az09-_.~/"), "Az09-_.~/");
        assert!(matches!(url_encode("dir/file.txt"), Cow::Borrowed(_)));
        assert_eq!(url_encode("%+ \u{1}\r"), "%25%2B%20%01%0D");
        for key in [
            "a dir/ü+x=1&y.txt",
            "100% + plus",
            "\u{1}\u{1F}\u{7F}\r\n\t",
            "\u{10FFFF}\u{FFFE}",
            "~!@#$^*()[]{}|\\;:'\",<>?`",
        ] {
            let encoded = url_encode(key);
            assert!(encoded.bytes().all(|b| b.is_ascii_graphic()));
            assert_eq!(
                escape(&encoded),
                encoded,
                "encoded keys need no XML escaping"
            );
            assert_eq!(unquote_plus(&encoded), key);
        }
    }

    // --- writer ------------------------------------------------------------------------------

    #[test]
    fn writer_builds_documents() {
        let mut w = XmlWriter::new();
        w.open_ns("Root")
            .open("A")
            .elem("B", "x<y")
            .close("A")
            .elem("C", "")
            .open("D")
            .text("a&b")
            .close("D");
        w.close("Root");
        assert_eq!(
            w.finish(),
            format!(
                "{DECL}<Root xmlns=\"{S3_XMLNS}\"><A><B>x&lt;y</B></A><C></C><D>a&amp;b</D></Root>"
            )
        );
        assert_eq!(XmlWriter::default().finish(), DECL);
    }
}

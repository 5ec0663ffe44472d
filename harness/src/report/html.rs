//! Escaping: text and attribute values for HTML and SVG, and JSON that is
//! safe inside a `<script>` element.

use std::borrow::Cow;

/// `text` with `&`, `<`, `>`, `"` and `'` replaced by their character
/// references: safe as element text and as a quoted attribute value.
pub(super) fn escape(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `value` as JSON that can sit inside `<script type="application/json">`:
/// `<`, `>` and `&` are written as `\u` escapes (valid JSON, and the same
/// string once parsed), so no `</script>` or `<!--` can appear.
pub(super) fn json_for_script(value: &serde_json::Value) -> String {
    let json = value.to_string();
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            c => out.push(c),
        }
    }
    out
}

/// The first `max` characters of `text`, and how many bytes were left off.
pub(super) fn clip(text: &str, max: usize) -> (&str, usize) {
    match text.char_indices().nth(max) {
        Some((end, _)) => (&text[..end], text.len() - end),
        None => (text, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_replaces_exactly_the_five_characters() {
        assert_eq!(escape("plain text, £50 ✓"), "plain text, £50 ✓");
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
        assert_eq!(
            escape(r#"<a href="x">Tom & 'Jerry'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;"
        );
        assert_eq!(escape("&amp;"), "&amp;amp;");
    }

    #[test]
    fn script_json_cannot_close_the_script_and_parses_back_the_same() {
        let value = serde_json::json!({"text": "</script><!-- & -->", "n": 1});
        let json = json_for_script(&value);
        assert!(!json.contains('<') && !json.contains('>') && !json.contains('&'));
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn clip_cuts_on_a_character_boundary() {
        assert_eq!(clip("abc", 5), ("abc", 0));
        assert_eq!(clip("abcdef", 3), ("abc", 3));
        assert_eq!(clip("££££", 2), ("££", 4));
    }
}

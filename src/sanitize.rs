//! Escapes text that came from an image or the file system (descriptor lines, parent hints,
//! file and folder names, imported VM names) before it reaches a terminal, so that hostile
//! text cannot move the cursor, rewrite the screen or hide itself.
//!
//! [`sanitize`] escapes a value (newlines included, so a name cannot fake a line of its own);
//! the terminal writer of the text renderer (`render::text::Terminal`, built on
//! [`is_dangerous`]) applies the same rule to every text output and every stderr line. JSON
//! and CSV carry the real text and never pass through either.

/// Replaces control, bidi-override and zero-width characters by `\u{..}` escapes.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_dangerous(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether `c` could act on a terminal: a control character, a bidi override or isolate, or a
/// zero-width character; or a Unicode noncharacter of U+FDD0..U+FDEF, which the text
/// renderer uses internally to mark colour (`render::text::paint`): escaped in text from an
/// image, a name cannot colour the table it is printed in.
pub fn is_dangerous(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}'
            | '\u{fdd0}'..='\u{fdef}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_terminal_controls_and_bidi() {
        assert_eq!(sanitize("a\x1b[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(sanitize("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(sanitize("plain name.vmdk"), "plain name.vmdk");
        assert_eq!(sanitize("a\nb"), "a\\u{a}b");
        assert_eq!(sanitize("a\u{fdd0}b"), "a\\u{fdd0}b");
    }
}

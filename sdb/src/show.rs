//! How bytes are printed: escaped (printable ASCII as is, `\xNN` otherwise) or as hex, in text
//! and in JSON.

/// Bytes for a human: escaped, or hex with `--hex`.
pub fn bytes(b: &[u8], hex: bool) -> String {
    if hex {
        return b.iter().map(|x| format!("{x:02x}")).collect();
    }
    let mut s = String::with_capacity(b.len());
    for &c in b {
        match c {
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s
}

/// Parses a key given on the command line: as hex with `--hex`, else with `\xNN` escapes.
pub fn parse(arg: &str, hex: bool) -> Result<Vec<u8>, String> {
    if hex {
        if !arg.len().is_multiple_of(2) {
            return Err(format!("{arg:?} is not hex: odd length"));
        }
        return (0..arg.len())
            .step_by(2)
            .map(|i| {
                u8::from_str_radix(&arg[i..i + 2], 16)
                    .map_err(|_| format!("{arg:?} is not hex at character {i}"))
            })
            .collect();
    }
    let b = arg.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') && i + 4 <= b.len() {
            let h = std::str::from_utf8(&b[i + 2..i + 4]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(h, 16) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    Ok(out)
}

/// A key range `a..b`, `a..`, `..b` or `..` (bounds parsed as [`parse`]).
/// A key range's bounds: from (included) and to (excluded), each optional.
pub type Bounds = (Option<Vec<u8>>, Option<Vec<u8>>);

pub fn range(arg: &str, hex: bool) -> Result<Bounds, String> {
    let (a, b) = arg
        .split_once("..")
        .ok_or_else(|| format!("{arg:?} is not a range: expected a..b, a.., ..b or .."))?;
    let bound = |s: &str| -> Result<Option<Vec<u8>>, String> {
        if s.is_empty() {
            Ok(None)
        } else {
            parse(s, hex).map(Some)
        }
    };
    Ok((bound(a)?, bound(b)?))
}

/// Whether `key` lies in `[from, to)`.
pub fn in_range(key: &[u8], from: &Option<Vec<u8>>, to: &Option<Vec<u8>>) -> bool {
    from.as_deref().is_none_or(|f| key >= f) && to.as_deref().is_none_or(|t| key < t)
}

/// A size in bytes for a human.
pub fn size(n: u64) -> String {
    sedimentdb::internals::human_bytes(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_round_trip() {
        let raw = b"a\\b\x00\xff\"z".to_vec();
        let shown = bytes(&raw, false);
        assert_eq!(shown, "a\\\\b\\x00\\xff\\\"z");
        assert_eq!(parse("a\\\\b\\x00\\xff\"z", false).unwrap(), raw);
        assert_eq!(parse(&bytes(&raw, true), true).unwrap(), raw);
        assert!(parse("abc", true).is_err());
        assert_eq!(range("a..", false).unwrap(), (Some(b"a".to_vec()), None));
        assert!(range("ab", false).is_err());
    }
}

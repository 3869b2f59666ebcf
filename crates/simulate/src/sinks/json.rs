//! Hand-written JSON for the NDJSON sink: rows are written straight from cells into a reused
//! buffer, without building a `serde_json::Value` per row.

use crate::Cell;
use crate::time;
use std::io::Write;

/// Bytes a JSON string cannot hold as they are: `"`, `\` and control characters.
const ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = true;
        b += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// Whether any of the 8 bytes in `w` is one [`ESCAPE`] holds (exact: the borrow tricks only
/// flag bytes below 0x80, and every byte that needs escaping is).
#[inline]
fn word_needs_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let control = w.wrapping_sub(ONES * 0x20) & !w;
    let q = w ^ (ONES * u64::from(b'"'));
    let quote = q.wrapping_sub(ONES) & !q;
    let b = w ^ (ONES * u64::from(b'\\'));
    let backslash = b.wrapping_sub(ONES) & !b;
    (control | quote | backslash) & HIGH != 0
}

/// Appends `s` as a JSON string literal: runs without escapes are copied whole, found eight
/// bytes at a time.
pub fn push_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if let Some(w) = bytes.get(i..i + 8) {
            let w = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
            if !word_needs_escape(w) {
                i += 8;
                continue;
            }
        }
        let b = bytes[i];
        i += 1;
        if !ESCAPE[usize::from(b)] {
            continue;
        }
        out.extend_from_slice(&bytes[start..i - 1]);
        start = i;
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 15)]);
            }
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Appends `x` in decimal.
pub fn push_int(out: &mut Vec<u8>, x: i64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut v = x.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if x < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&buf[i..]);
}

/// Appends a cell as a JSON value (datetimes as ISO-8601 strings with 7 fractional digits).
pub fn push_cell(out: &mut Vec<u8>, c: &Cell<'_>, clock: &mut Clock) {
    match *c {
        Cell::Null => out.extend_from_slice(b"null"),
        Cell::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
        Cell::Int(x) => push_int(out, i64::from(x)),
        Cell::Long(x) => push_int(out, x),
        Cell::Real(x) if x.is_finite() => {
            let _ = write!(out, "{x}");
        }
        Cell::Real(_) => out.extend_from_slice(b"null"),
        Cell::Str(s) => push_str(out, s),
        Cell::Time(ns) => clock.push(out, ns),
    }
}

/// Writes datetimes as [`time::iso`] does, keeping the date text of the last day seen (rows
/// come in time order, so it rarely changes).
pub struct Clock {
    day: i64,
    date: [u8; 11],
}

impl Default for Clock {
    fn default() -> Clock {
        Clock {
            day: i64::MIN,
            date: [0; 11],
        }
    }
}

impl Clock {
    /// Appends `ns` as a quoted `2026-07-18T12:59:31.2914446Z`.
    pub fn push(&mut self, out: &mut Vec<u8>, ns: i64) {
        let secs = ns.div_euclid(time::SECOND);
        let day = secs.div_euclid(86_400);
        if day != self.day {
            let mut b = [0u8; time::ISO_LEN];
            time::iso(ns, &mut b);
            self.date.copy_from_slice(&b[..11]);
            self.day = day;
        }
        let sod = secs.rem_euclid(86_400) as u32;
        let frac = (ns.rem_euclid(time::SECOND) / time::TICK) as u32;
        let mut t = *b"\"YYYY-MM-DDT00:00:00.0000000Z\"";
        t[1..12].copy_from_slice(&self.date);
        let two = |t: &mut [u8; 30], at: usize, v: u32| {
            t[at] = b'0' + (v / 10) as u8;
            t[at + 1] = b'0' + (v % 10) as u8;
        };
        two(&mut t, 12, sod / 3600);
        two(&mut t, 15, sod / 60 % 60);
        two(&mut t, 18, sod % 60);
        let mut f = frac;
        for i in (21..28).rev() {
            t[i] = b'0' + (f % 10) as u8;
            f /= 10;
        }
        out.extend_from_slice(&t);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn strings_escape_like_serde() {
        for s in [
            "plain",
            r#"C:\Windows\"quoted""#,
            "tab\tnew\nline\u{1}",
            "ünïcödé",
            "",
            "\\",
            "end\"",
        ] {
            let mut out = Vec::new();
            super::push_str(&mut out, s);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(s).unwrap()
            );
        }
        // Control characters other than \n \r \t as \u00XX (serde writes \b and \f).
        let mut out = Vec::new();
        super::push_str(&mut out, "a\u{8}\u{1f}");
        assert_eq!(out, b"\"a\\u0008\\u001f\"");
    }

    #[test]
    fn clock_writes_what_iso_writes() {
        let mut clock = super::Clock::default();
        for ns in [
            0,
            1_784_505_600_000_000_000,
            1_784_505_600_000_000_100,
            1_784_591_999_999_999_900,
            1_784_592_000_000_000_000,
            1_793_491_200_191_012_100,
            -1_000_000_000,
        ] {
            let mut out = Vec::new();
            clock.push(&mut out, ns);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                format!("\"{}\"", crate::time::iso_string(ns))
            );
        }
    }

    #[test]
    fn long_strings_escape_like_serde() {
        let mut s = String::new();
        for i in 0..300u32 {
            s.push(char::from_u32(i % 130).unwrap_or('x'));
            s.push_str("abcdefghé");
        }
        let mut out = Vec::new();
        super::push_str(&mut out, &s);
        let expected = serde_json::to_string(&s)
            .unwrap()
            .replace("\\b", "\\u0008")
            .replace("\\f", "\\u000c");
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn integers_print_like_display() {
        for x in [0, 7, -7, 10, 1234567890123, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            super::push_int(&mut out, x);
            assert_eq!(String::from_utf8(out).unwrap(), x.to_string());
        }
    }
}

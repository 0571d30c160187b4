//! Python's text renderings of numbers and strings, which pystachio output depends on.

/// Appends the decimal digits of an integer, without going through `fmt`.
pub fn push_int(out: &mut String, i: i64) {
    out.push_str(itoa::Buffer::new().format(i));
}

/// Appends Python `repr(float)` of `f`.
pub fn push_float(out: &mut String, f: f64) {
    if f.fract() == 0.0 && f.abs() < 1e16 && f != 0.0 {
        push_int(out, f as i64);
        out.push_str(".0");
    } else {
        out.push_str(&py_float(f));
    }
}

/// Python `repr(float)`: shortest round-trip digits, `1e+16`, `1e-05`, `1.0`, `nan`, `inf`.
pub fn py_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    // `{:e}` gives the shortest round-trip digits as d.ddddde[-]x.
    let sci = format!("{:e}", f.abs());
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if f < 0.0 { "-" } else { "" };
    if !(-4..16).contains(&exp) {
        let (head, tail) = digits.split_at(1);
        let m = if tail.is_empty() {
            head.to_string()
        } else {
            format!("{head}.{tail}")
        };
        let es = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{m}e{es}{:02}", exp.abs());
    }
    let n = digits.len() as i32;
    if exp < 0 {
        let zeros = "0".repeat((-exp - 1) as usize);
        format!("{sign}0.{zeros}{digits}")
    } else if exp + 1 >= n {
        let zeros = "0".repeat((exp + 1 - n) as usize);
        format!("{sign}{digits}{zeros}.0")
    } else {
        let (a, b) = digits.split_at((exp + 1) as usize);
        format!("{sign}{a}.{b}")
    }
}

/// Python `repr(str)`: single quotes unless the text has a `'` and no `"`.
pub fn py_repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => {
                let v = c as u32;
                if v <= 0xff {
                    out.push_str(&format!("\\x{v:02x}"));
                } else if v <= 0xffff {
                    out.push_str(&format!("\\u{v:04x}"));
                } else {
                    out.push_str(&format!("\\U{v:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python `int(text)` for the forms pystachio meets: trimmed, optional sign, ASCII digits with
/// single underscores between them. Values beyond 64 bits are reported as `None` too.
pub fn py_parse_int(s: &str) -> Option<i64> {
    let t = s.trim();
    let (neg, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let clean = strip_underscores(body)?;
    if clean.is_empty() || !clean.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: i128 = clean.parse().ok()?;
    let v = if neg { -v } else { v };
    i64::try_from(v).ok()
}

/// Python `int(text)` for integers of any size: the grammar of [`py_parse_int`] without the
/// 64-bit limit.
pub fn py_parse_bigint(s: &str) -> Option<num_bigint::BigInt> {
    let t = s.trim();
    let (neg, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let clean = strip_underscores(body)?;
    if clean.is_empty() || !clean.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v = num_bigint::BigInt::parse_bytes(clean.as_bytes(), 10)?;
    Some(if neg { -v } else { v })
}

fn strip_underscores(s: &str) -> Option<String> {
    if s.starts_with('_') || s.ends_with('_') || s.contains("__") {
        return None;
    }
    Some(s.replace('_', ""))
}

/// Python `float(text)`: trimmed, `nan`/`inf`/`infinity` in any case, underscores between digits.
pub fn py_parse_float(s: &str) -> Option<f64> {
    let t = s.trim();
    let (sign, body) = match t.as_bytes().first() {
        Some(b'-') => (-1.0, &t[1..]),
        Some(b'+') => (1.0, &t[1..]),
        _ => (1.0, t),
    };
    let lower = body.to_ascii_lowercase();
    match lower.as_str() {
        "nan" => return Some(f64::NAN),
        "inf" | "infinity" => return Some(sign * f64::INFINITY),
        _ => {}
    }
    if body.contains('_') {
        let ok = body
            .as_bytes()
            .windows(3)
            .all(|w| w[1] != b'_' || (w[0].is_ascii_digit() && w[2].is_ascii_digit()))
            && !body.starts_with('_')
            && !body.ends_with('_');
        if !ok {
            return None;
        }
    }
    let clean = body.replace('_', "");
    if clean.is_empty()
        || !clean
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    clean.parse::<f64>().ok().map(|v| sign * v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_like_python() {
        for (f, s) in [
            (1.0, "1.0"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e22, "1e+22"),
            (-0.0, "-0.0"),
            (123.456, "123.456"),
            (1.5e300, "1.5e+300"),
            (2.5e-7, "2.5e-07"),
            (15.0, "15.0"),
        ] {
            assert_eq!(py_float(f), s);
        }
    }

    #[test]
    fn integers_append_their_digits() {
        let mut out = String::from("x");
        for i in [0, 7, -7, 1_000_000, i64::MIN, i64::MAX] {
            push_int(&mut out, i);
            out.push(' ');
        }
        assert_eq!(
            out,
            "x0 7 -7 1000000 -9223372036854775808 9223372036854775807 "
        );
        let mut f = String::new();
        push_float(&mut f, 1e15);
        assert_eq!(f, "1000000000000000.0");
    }

    #[test]
    fn string_repr() {
        assert_eq!(py_repr_str("{{x}}"), "'{{x}}'");
        assert_eq!(py_repr_str("{{a}}'s"), "\"{{a}}'s\"");
        assert_eq!(py_repr_str("a'\"b"), "'a\\'\"b'");
        assert_eq!(py_repr_str("a\nb"), "'a\\nb'");
    }

    #[test]
    fn numbers_parse_like_python() {
        assert_eq!(py_parse_int(" +1 "), Some(1));
        assert_eq!(py_parse_int("1_000"), Some(1000));
        assert_eq!(py_parse_int("1.0"), None);
        assert_eq!(py_parse_int("0x10"), None);
        assert_eq!(py_parse_int(""), None);
        assert_eq!(py_parse_float(" 1e5 "), Some(1e5));
        assert!(py_parse_float("nan").is_some_and(f64::is_nan));
        assert_eq!(py_parse_float("-Infinity"), Some(f64::NEG_INFINITY));
        assert_eq!(py_parse_float("1_0.5"), Some(10.5));
        assert_eq!(py_parse_float("abc"), None);
    }
}

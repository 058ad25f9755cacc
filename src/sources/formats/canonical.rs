//! The canonical JSON line, read by hand: `{"room":"…","sensor":"…","ts":…,"value":…}`.
//!
//! Nearly every line of a JSON recording, and every message `publish` and `simulate` write, has
//! this shape, and reading it byte by byte costs a fraction of a general JSON parser. The scanner
//! answers only where it is sure to answer as the general parser (`json.rs`, serde_json) does,
//! and returns `None` for anything else, which then takes the general path and gets its worded
//! error: a key other than the four, a key twice or missing, an escape or a control character in
//! a string, `ts` not a plain non-negative integer of at most 15 digits, `value` not a plain
//! decimal of at most 15 digits (no exponent), an empty room or sensor, a value out of range.
//!
//! Why the value is the same bits as serde_json's: a decimal of at most 15 digits is an integer
//! `d < 2^53` over `10^k` with `k <= 15`; both are exact doubles, and one IEEE division of exact
//! operands is correctly rounded. serde_json computes exactly that division on its default path,
//! and the correctly rounded value on its `float_roundtrip` path. A unit test and the
//! `json_fast_path` fuzz target hold the scanner to the general parser on every input.

use roomflow_dataflows::{Fixed, Name, Reading};

use super::MAX_TS;

/// Most digits of `ts` or `value` the scanner reads; longer numbers go to the general path.
const MAX_DIGITS: usize = 15;

/// `10^k` for `k` up to the fixed-point scale's digits.
const POWERS_OF_TEN_U64: [u64; 7] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000];

/// `10^k` for `k` up to [`MAX_DIGITS`], each exact as a double.
const POWERS_OF_TEN: [f64; MAX_DIGITS + 1] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// The reading of a canonical line, or `None` when the general parser must decide.
///
/// It reads bytes, so that a line need not be checked as UTF-8 first: outside its strings it
/// accepts only ASCII, and it checks the strings themselves, so a line it reads is UTF-8.
pub(super) fn scan_canonical(line: &[u8]) -> Option<Reading> {
    scan_in_order(line).or_else(|| scan_any_order(line))
}

/// The line as recorders write it: the four keys in order, with one space or none after each
/// `:` and `,` (Python's `json.dumps` writes the spaces; `publish`, `simulate` and serde_json do
/// not). One comparison per literal instead of a key lookup and four whitespace skips per field;
/// anything else (other spacing, another order, a failure anywhere) is left to
/// [`scan_any_order`], which accepts a superset of these lines and reads them the same way.
fn scan_in_order(line: &[u8]) -> Option<Reading> {
    let mut scanner = Scanner { bytes: line, at: 0 };
    scanner.literal(b"{\"room\":")?;
    scanner.space();
    let room = scanner.string()?;
    scanner.separator(b"\"sensor\":")?;
    let sensor = scanner.string()?;
    scanner.separator(b"\"ts\":")?;
    let ts = scanner.integer()?;
    scanner.separator(b"\"value\":")?;
    let value = scanner.decimal()?;
    scanner.literal(b"}")?;
    if scanner.at != line.len() {
        return None;
    }
    reading(room, sensor, ts, value)
}

/// The four keys in any order, with JSON's whitespace anywhere between tokens.
fn scan_any_order(line: &[u8]) -> Option<Reading> {
    let mut scanner = Scanner { bytes: line, at: 0 };
    scanner.skip_whitespace();
    scanner.expect(b'{')?;
    let (mut room, mut sensor, mut ts, mut value) = (None, None, None, None);
    loop {
        scanner.skip_whitespace();
        let key = scanner.key()?;
        scanner.skip_whitespace();
        scanner.expect(b':')?;
        scanner.skip_whitespace();
        match key {
            Key::Room if room.is_none() => room = Some(scanner.string()?),
            Key::Sensor if sensor.is_none() => sensor = Some(scanner.string()?),
            Key::Ts if ts.is_none() => ts = Some(scanner.integer()?),
            Key::Value if value.is_none() => value = Some(scanner.decimal()?),
            _ => return None,
        }
        scanner.skip_whitespace();
        match scanner.next()? {
            b',' => continue,
            b'}' => break,
            _ => return None,
        }
    }
    scanner.skip_whitespace();
    if scanner.at != scanner.bytes.len() {
        return None;
    }
    reading(room?, sensor?, ts?, value?)
}

/// The reading of a line's four fields, or `None` where the general parser must word an error.
fn reading(room: &str, sensor: &str, ts: i64, value: Decimal) -> Option<Reading> {
    if room.is_empty() || sensor.is_empty() || ts > MAX_TS {
        return None;
    }
    Some(Reading {
        room: Name::from(room),
        sensor: Name::from(sensor),
        ts,
        value: value.to_fixed()?,
    })
}

/// The four keys of a reading.
#[derive(Clone, Copy)]
enum Key {
    Room,
    Sensor,
    Ts,
    Value,
}

/// A position in a line's bytes.
struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    fn next(&mut self) -> Option<u8> {
        let byte = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(byte)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.next()? == byte).then_some(())
    }

    /// Exactly the bytes of `literal`.
    fn literal(&mut self, literal: &[u8]) -> Option<()> {
        let rest = self.bytes.get(self.at..)?;
        rest.starts_with(literal).then(|| self.at += literal.len())
    }

    /// At most one space.
    fn space(&mut self) {
        if self.peek() == Some(b' ') {
            self.at += 1;
        }
    }

    /// `,`, a space or none, `key`, a space or none.
    fn separator(&mut self, key: &[u8]) -> Option<()> {
        self.literal(b",")?;
        self.space();
        self.literal(key)?;
        self.space();
        Some(())
    }

    /// JSON's whitespace, as serde_json skips it.
    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// One of the four keys, quotes included; `None` for any other key or an escape in it.
    fn key(&mut self) -> Option<Key> {
        let rest = &self.bytes[self.at..];
        let (key, length) = match rest.get(1)? {
            b'r' if rest.starts_with(b"\"room\"") => (Key::Room, 6),
            b's' if rest.starts_with(b"\"sensor\"") => (Key::Sensor, 8),
            b't' if rest.starts_with(b"\"ts\"") => (Key::Ts, 4),
            b'v' if rest.starts_with(b"\"value\"") => (Key::Value, 7),
            _ => return None,
        };
        self.at += length;
        Some(key)
    }

    /// A string without escapes or control characters, borrowed from the line. Names are a few
    /// bytes long: a plain loop beats a vectorized search's setup.
    fn string(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let rest = &self.bytes[self.at..];
        let mut length = 0;
        let mut ascii = true;
        loop {
            match *rest.get(length)? {
                b'"' => break,
                b'\\' | 0..0x20 => return None,
                byte => ascii &= byte < 0x80,
            }
            length += 1;
        }
        let content = &rest[..length];
        self.at += length + 1;
        if ascii {
            // SAFETY: every byte of `content` was just seen to be below 0x80: ASCII is UTF-8.
            // (The general check costs more than the rest of the scan for these short names.)
            Some(unsafe { std::str::from_utf8_unchecked(content) })
        } else {
            std::str::from_utf8(content).ok()
        }
    }

    /// Up to [`MAX_DIGITS`] digits as JSON writes an integer (no leading zero), and how many.
    fn digits(&mut self) -> Option<(u64, usize)> {
        let rest = &self.bytes[self.at..];
        let (number, count) = leading_number(rest, 0, MAX_DIGITS)?;
        if count == 0 || (count > 1 && rest[0] == b'0') {
            return None;
        }
        self.at += count;
        Some((number, count))
    }

    /// A non-negative integer with no fraction or exponent.
    fn integer(&mut self) -> Option<i64> {
        let (number, _) = self.digits()?;
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        i64::try_from(number).ok()
    }

    /// A decimal `-?int(.frac)?` of at most [`MAX_DIGITS`] digits, without exponent.
    fn decimal(&mut self) -> Option<Decimal> {
        let negative = self.peek() == Some(b'-');
        if negative {
            self.at += 1;
        }
        let (integer, integer_digits) = self.digits()?;
        let (mut significand, mut fraction_digits) = (integer, 0);
        if self.peek() == Some(b'.') {
            self.at += 1;
            (significand, fraction_digits) = leading_number(
                &self.bytes[self.at..],
                significand,
                MAX_DIGITS - integer_digits,
            )?;
            if fraction_digits == 0 {
                return None;
            }
            self.at += fraction_digits;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            return None;
        }
        Some(Decimal {
            negative,
            significand,
            fraction_digits,
        })
    }
}

/// A decimal as written: `-`, its digits as an integer, how many of them follow the point.
#[derive(Clone, Copy, Debug)]
struct Decimal {
    negative: bool,
    significand: u64,
    fraction_digits: usize,
}

/// Fixed-point values up to this many units are computed from a decimal's digits exactly (see
/// [`Decimal::to_fixed`]); 2^40 units is a value of about 1.1 million.
const EXACT_UNITS: u64 = 1 << 40;

impl Decimal {
    /// The double nearest to the decimal, as the general parser reads it.
    fn to_f64(self) -> f64 {
        let magnitude = self.significand as f64 / POWERS_OF_TEN[self.fraction_digits];
        if self.negative {
            -magnitude
        } else {
            magnitude
        }
    }

    /// `Fixed::from_f64(self.to_f64())`, without the division where that is the decimal's own
    /// value in millionths: with at most 6 fraction digits and under [`EXACT_UNITS`], the double
    /// times 10^6 is within 2^40 * 2^-51 of that integer, far less than the half that rounding
    /// would need to go elsewhere.
    fn to_fixed(self) -> Option<Fixed> {
        let scale = Fixed::SCALE_DIGITS as usize;
        if self.fraction_digits <= scale {
            let units = self
                .significand
                .checked_mul(POWERS_OF_TEN_U64[scale - self.fraction_digits])
                .filter(|&units| units < EXACT_UNITS);
            if let Some(units) = units {
                let units = units as i64;
                return Some(Fixed(if self.negative { -units } else { units }));
            }
        }
        Fixed::from_f64(self.to_f64())
    }
}

/// The digits `bytes` starts with, appended to `number`, and how many there are; `None` if more
/// than `most` (at most [`MAX_DIGITS`] in all: no overflow).
fn leading_number(bytes: &[u8], mut number: u64, most: usize) -> Option<(u64, usize)> {
    let mut count = 0;
    while count < bytes.len() && bytes[count].is_ascii_digit() {
        if count == most {
            return None;
        }
        number = number * 10 + u64::from(bytes[count] - b'0');
        count += 1;
    }
    Some((number, count))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::formats::json::parse_json_general;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    /// Where the scanner answers, the general parser gives the same reading.
    fn agrees(line: &str) -> bool {
        match scan_canonical(line.as_bytes()) {
            Some(reading) => {
                assert_eq!(Ok(reading), parse_json_general(line), "{line:?}");
                true
            }
            None => false,
        }
    }

    #[test]
    fn reads_the_lines_publish_simulate_and_python_write() {
        for line in [
            r#"{"room":"r007","sensor":"temperature","ts":1700000000000,"value":21.53}"#,
            r#"{"room": "413", "sensor": "co2", "ts": 1377299107000, "value": 488.0}"#,
            r#"{"value": -1.5, "ts": 0, "sensor": "co2", "room": "a"}"#,
            r#"{"room":"x","sensor":"co2","ts":5,"value":7}"#,
            r#"{"room":"x","sensor":"co2","ts":5,"value":-0}"#,
            r#"{"room":"Zimmer ü 3","sensor":"🌡","ts":253402300799999,"value":0.000001}"#,
            "\t{ \"room\" : \"a\" ,\n\"sensor\":\"b\",\"ts\":1,\"value\":999999999.999999 } ",
        ] {
            assert!(agrees(line), "not scanned: {line}");
        }
        // The ways publish, simulate and Python write it take the in-order path; others do not.
        for line in [
            &br#"{"room":"r007","sensor":"temperature","ts":1700000000000,"value":21.53}"#[..],
            br#"{"room": "413", "sensor": "co2", "ts": 1377299107000, "value": 488.0}"#,
        ] {
            assert!(scan_in_order(line).is_some());
            assert_eq!(scan_in_order(line), scan_any_order(line));
        }
        for line in [
            &br#"{"room":  "413", "sensor": "co2", "ts": 1, "value": 488.0}"#[..],
            br#"{"room":"a","sensor":"b","ts":1,"value":2} "#,
            br#"{"sensor":"b","room":"a","ts":1,"value":2}"#,
        ] {
            assert_eq!(scan_in_order(line), None);
            assert!(scan_any_order(line).is_some());
        }
    }

    #[test]
    fn leaves_everything_else_to_the_general_parser() {
        for line in [
            r#"{"room":"a\"b","sensor":"t","ts":1,"value":1}"#,
            "{\"room\":\"a\u{1}\",\"sensor\":\"t\",\"ts\":1,\"value\":1}",
            r#"{"room":"a","room":"b","sensor":"t","ts":1,"value":1}"#,
            r#"{"room":"a","sensor":"t","ts":1,"value":1,"unit":"C"}"#,
            r#"{"room":413,"sensor":"t","ts":1,"value":1}"#,
            r#"{"room":"","sensor":"t","ts":1,"value":1}"#,
            r#"{"room":"a","sensor":"t","ts":"2013-08-23T23:05:07Z","value":1}"#,
            r#"{"room":"a","sensor":"t","ts":01,"value":1}"#,
            r#"{"room":"a","sensor":"t","ts":-1,"value":1}"#,
            r#"{"room":"a","sensor":"t","ts":1.0,"value":1}"#,
            r#"{"room":"a","sensor":"t","ts":253402300800000,"value":1}"#,
            r#"{"room":"a","sensor":"t","ts":1,"value":1e3}"#,
            r#"{"room":"a","sensor":"t","ts":1,"value":1.}"#,
            r#"{"room":"a","sensor":"t","ts":1,"value":.5}"#,
            r#"{"room":"a","sensor":"t","ts":1,"value":1.0000000000000001}"#,
            r#"{"room":"a","sensor":"t","ts":1,"value":"n/a"}"#,
            r#"{"room":"a","sensor":"t","ts":1,"value":1e13}"#,
            r#"{"room":"a","sensor":"t","ts":1,"value":10000000000000}"#,
            r#"{"room":"a","sensor":"t","ts":1}"#,
            r#"{"room":"a","sensor":"t","ts":1,"value":1} x"#,
            r#"{"room":"a","sensor":"t","ts":1,"value":1,}"#,
            r#"{"room":"a","sensor":"t","ts":1 "value":1}"#,
            r#"["room","a"]"#,
            "",
        ] {
            assert_eq!(scan_canonical(line.as_bytes()), None, "scanned: {line}");
        }
    }

    /// Around the largest fixed-point value taken from the digits: the same as from the double.
    #[test]
    fn fixed_values_from_digits_are_those_of_the_doubles() {
        for text in [
            "1099511.627775",
            "1099511.627776",
            "1099511.627777",
            "-1099511.627776",
            "1099511.6277765",
            "999999999999999",
            "0.0000005",
            "-0.0000005",
            "0.000001",
            "-0",
            "21.53",
        ] {
            let mut scanner = Scanner {
                bytes: text.as_bytes(),
                at: 0,
            };
            let decimal = scanner.decimal().expect("a plain decimal");
            let exact: f64 = text.parse().unwrap();
            assert_eq!(decimal.to_fixed(), Fixed::from_f64(exact), "{text}");
        }
    }

    /// Random decimals of up to 15 digits: the scanner's double is the correctly rounded one,
    /// which is also what serde_json gives (with `float_roundtrip`, as the tests build it).
    #[test]
    fn values_are_the_correctly_rounded_doubles() {
        let mut rng = SmallRng::seed_from_u64(17);
        for _ in 0..200_000 {
            let digits = rng.gen_range(1..=15);
            let fraction = rng.gen_range(0..digits);
            let mut text: String = (0..digits)
                .map(|_| char::from(b'0' + rng.gen_range(0..10)))
                .collect();
            // No leading zeros in the integer part.
            let integer_part = (digits - fraction).max(1);
            let trimmed = text[..integer_part].trim_start_matches('0');
            let integer = if trimmed.is_empty() { "0" } else { trimmed };
            text = if fraction > 0 {
                format!("{integer}.{}", &text[integer_part..])
            } else {
                integer.to_string()
            };
            if rng.gen_bool(0.5) {
                text.insert(0, '-');
            }
            let mut scanner = Scanner {
                bytes: text.as_bytes(),
                at: 0,
            };
            let decimal = scanner.decimal().expect("a plain decimal");
            let scanned = decimal.to_f64();
            let exact: f64 = text.parse().unwrap();
            let serde: f64 = serde_json::from_str(&text).unwrap();
            assert_eq!(scanned.to_bits(), exact.to_bits(), "{text}");
            assert_eq!(scanned.to_bits(), serde.to_bits(), "{text}");
            assert_eq!(
                decimal.to_fixed(),
                Fixed::from_f64(exact),
                "{text}: the fixed-point value the double gives"
            );
        }
    }

    /// Canonical lines broken at random (bytes replaced, dropped, doubled, inserted from JSON's
    /// alphabet): wherever the scanner still answers, it answers as the general parser.
    #[test]
    fn mutated_lines_scan_as_the_general_parser_reads_them() {
        let alphabet = br#"{}[]":,.-+eE0123456789 \tabnrstu"#;
        let mut rng = SmallRng::seed_from_u64(5);
        let (mut scanned, mut in_order, mut total) = (0, 0, 0);
        for _ in 0..100_000 {
            let value = format!("{:.*}", rng.gen_range(0..7), rng.gen_range(-100.0..1000.0));
            let mut line = format!(
                r#"{{"room":"r{}","sensor":"{}","ts":{},"value":{value}}}"#,
                rng.gen_range(0..1000),
                ["temperature", "co2", "humidity"][rng.gen_range(0..3)],
                rng.gen_range(0..2_000_000_000_000i64),
            );
            if rng.gen_bool(0.5) {
                // As Python's json.dumps writes it.
                line = line.replace("\":", "\": ").replace(",\"", ", \"");
            }
            let mut line = line.into_bytes();
            for _ in 0..rng.gen_range(0..3) {
                let at = rng.gen_range(0..line.len());
                match rng.gen_range(0..4) {
                    0 => line[at] = alphabet[rng.gen_range(0..alphabet.len())],
                    1 => {
                        line.remove(at);
                    }
                    2 => line.insert(at, line[at]),
                    _ => line.insert(at, alphabet[rng.gen_range(0..alphabet.len())]),
                }
                if line.is_empty() {
                    break;
                }
            }
            let line = String::from_utf8(line).expect("ASCII");
            total += 1;
            scanned += usize::from(agrees(&line));
            if let Some(reading) = scan_in_order(line.as_bytes()) {
                in_order += 1;
                assert_eq!(Some(reading), scan_any_order(line.as_bytes()), "{line:?}");
            }
        }
        // The in-order path reads the unbroken lines, and only lines the other path reads alike.
        assert!(
            in_order > total / 4 && in_order <= scanned,
            "{in_order} of {scanned}"
        );
        // Both paths are exercised: most lines survive their mutations, many do not.
        assert!(
            scanned > total / 4 && scanned < total,
            "{scanned} of {total}"
        );
    }
}

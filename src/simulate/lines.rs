//! The bytes of a simulated line: the canonical JSON line with a two-decimal value, and the
//! malformed lines that replace some of them.

use std::io::{self, Write};

/// Replaces `line` by a canonical line: `prefix`, then `ts` and the value with two decimals.
pub(super) fn write_line(
    line: &mut Vec<u8>,
    prefix: &[u8],
    ts: i64,
    hundredths: i64,
) -> io::Result<()> {
    line.clear();
    line.extend_from_slice(prefix);
    let sign = if hundredths < 0 { "-" } else { "" };
    let magnitude = hundredths.unsigned_abs();
    writeln!(
        line,
        r#"{ts}, "value": {sign}{}.{:02}}}"#,
        magnitude / 100,
        magnitude % 100
    )
}

/// Replaces the well-formed `line` by malformed line number `nth`, rotating through the ways real
/// producers get it wrong.
pub(super) fn malform(
    line: &mut Vec<u8>,
    nth: u64,
    room: &str,
    sensor: &str,
    ts: i64,
) -> io::Result<()> {
    match nth % 5 {
        0 => {
            // Cut off mid-write: any proper prefix of an object is unterminated.
            line.truncate((line.len() - 1) / 2);
            line.push(b'\n');
            Ok(())
        }
        1 => {
            line.clear();
            writeln!(
                line,
                r#"{{"room": "{room}", "sensor": "{sensor}", "ts": {ts}}}"#
            )
        }
        2 => {
            line.clear();
            writeln!(
                line,
                r#"{{"room": "{room}", "sensor": "{sensor}", "ts": {ts}, "value": "n/a"}}"#
            )
        }
        3 => {
            line.clear();
            writeln!(
                line,
                r#"{{"room": "{room}", "sensor": "{sensor}", "ts": "yesterday", "value": 0.00}}"#
            )
        }
        _ => {
            line.clear();
            writeln!(
                line,
                r#"{{"room": {{}}, "sensor": "{sensor}", "ts": {ts}, "value": 0.00}}"#
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::simulate::tests::{orderly, parse, run};
    use crate::simulate::{SimulateOptions, SimulateSummary};

    #[test]
    fn malformed_lines_rotate_through_five_kinds() {
        let options = SimulateOptions {
            malformed_ratio: 1.0,
            ..orderly(1, 6)
        };
        let (shards, summary) = run(&options, 1);
        let reasons: Vec<String> = parse(&shards[0])
            .into_iter()
            .map(Result::unwrap_err)
            .collect();
        assert!(
            reasons[0].starts_with("invalid JSON: EOF while parsing"),
            "{}",
            reasons[0]
        );
        assert_eq!(
            reasons[1..5],
            [
                "missing field `value`",
                "`value` must be a number, found string `n/a`",
                "unparseable date `yesterday`",
                "`room` must be a string or an integer, found an object",
            ]
        );
        assert!(
            reasons[5].starts_with("invalid JSON: EOF while parsing"),
            "{}",
            reasons[5]
        );
        assert_eq!(
            summary,
            SimulateSummary {
                lines: 6,
                malformed: 6,
                out_of_order: 0,
                late: 0,
            }
        );
    }
}

//! A room's charts, drawn on the server as SVG with plotters: a sensor's window averages over the
//! retained windows, and the room's temperature deltas. One marker per point, so a chart shows
//! (and a test can count) exactly the windows the dashboard holds.

use plotters::prelude::*;

/// A chart's size in pixels; the page scales it to its column.
const SIZE: (u32, u32) = (720, 260);

const LINE: RGBColor = RGBColor(37, 99, 235);
const RISE: RGBColor = RGBColor(220, 38, 38);
const FALL: RGBColor = RGBColor(37, 99, 235);
const FLAT: RGBColor = RGBColor(107, 114, 128);

/// A line chart of `points` (epoch ms, value), a marker on each.
pub fn line(points: &[(i64, f64)]) -> Result<String, String> {
    let points = &plotted(points);
    draw(points, |chart| {
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                LINE.stroke_width(2),
            ))
            .map_err(|error| error.to_string())?;
        chart
            .draw_series(
                points
                    .iter()
                    .map(|point| Circle::new(*point, 3, LINE.filled())),
            )
            .map_err(|error| error.to_string())?;
        Ok(())
    })
}

/// The temperature deltas (epoch ms, delta), a marker each: red above zero, blue below, grey at.
pub fn deltas(points: &[(i64, f64)]) -> Result<String, String> {
    let points = &plotted(points);
    draw(points, |chart| {
        let x_range = chart.x_range();
        chart
            .draw_series(LineSeries::new(
                [(x_range.start, 0.0), (x_range.end, 0.0)],
                BLACK.mix(0.4),
            ))
            .map_err(|error| error.to_string())?;
        chart
            .draw_series(points.iter().map(|point| {
                let color = match point.1 {
                    rise if rise > 0.0 => RISE,
                    fall if fall < 0.0 => FALL,
                    _ => FLAT,
                };
                Circle::new(*point, 3, color.filled())
            }))
            .map_err(|error| error.to_string())?;
        Ok(())
    })
}

type Chart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// The largest magnitude a value is drawn at: a chart is a picture (the exact values are in the
/// API), and any message on alpha may carry any number.
const MAX_DRAWN: f64 = 1e15;

/// The last instant a time axis shows: the end of year 9999, as event times are checked on input.
const MAX_TIME_MS: f64 = 253_402_300_799_999.0;

/// `points` as drawn: times within 1970..9999, values within ±[`MAX_DRAWN`], so the axes'
/// arithmetic stays finite whatever arrived.
fn plotted(points: &[(i64, f64)]) -> Vec<(f64, f64)> {
    points
        .iter()
        .map(|(ms, value)| {
            let value = if value.is_nan() { 0.0 } else { *value };
            (
                (*ms as f64).clamp(0.0, MAX_TIME_MS),
                value.clamp(-MAX_DRAWN, MAX_DRAWN),
            )
        })
        .collect()
}

fn draw(
    points: &[(f64, f64)],
    series: impl FnOnce(&mut Chart<'_, '_>) -> Result<(), String>,
) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|error| error.to_string())?;
        let (x_range, y_range) = ranges(points);
        let span = (x_range.end - x_range.start) as i64;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(28)
            .y_label_area_size(56)
            .build_cartesian_2d(x_range, y_range)
            .map_err(|error| error.to_string())?;
        chart
            .configure_mesh()
            .x_labels(6)
            .y_labels(5)
            .label_style(("sans-serif", 13))
            .x_label_formatter(&|ms| time_label(*ms as i64, span))
            .y_label_formatter(&|value| format!("{value:.2}"))
            .light_line_style(BLACK.mix(0.05))
            .bold_line_style(BLACK.mix(0.12))
            .draw()
            .map_err(|error| error.to_string())?;
        series(&mut chart)?;
        root.present().map_err(|error| error.to_string())?;
    }
    Ok(svg)
}

/// The axes' ranges: the points' extent, padded so no marker sits on the frame, and something
/// sensible for one point or none.
fn ranges(points: &[(f64, f64)]) -> (std::ops::Range<f64>, std::ops::Range<f64>) {
    let (mut x_min, mut x_max) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut y_min, mut y_max) = (f64::INFINITY, f64::NEG_INFINITY);
    for (x, y) in points {
        x_min = x_min.min(*x);
        x_max = x_max.max(*x);
        y_min = y_min.min(*y);
        y_max = y_max.max(*y);
    }
    if points.is_empty() {
        return (0.0..60_000.0, 0.0..1.0);
    }
    let x_pad = ((x_max - x_min) / 20.0).max(30_000.0);
    let y_pad = ((y_max - y_min) * 0.1).max(0.05 * y_max.abs().max(1.0));
    (
        (x_min - x_pad)..(x_max + x_pad),
        (y_min - y_pad)..(y_max + y_pad),
    )
}

/// An axis label for `ms` (UTC): the time of day, with the date when the chart spans days.
fn time_label(ms: i64, span: i64) -> String {
    let Some(time) = chrono::DateTime::from_timestamp_millis(ms) else {
        return ms.to_string();
    };
    if span > 86_400_000 {
        time.format("%m-%d %H:%M").to_string()
    } else {
        time.format("%H:%M").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_chart_has_one_marker_per_point() {
        let points = [(0, 21.0), (60_000, 21.5), (120_000, 20.75)];
        let svg = line(&points).unwrap();
        assert!(svg.starts_with("<svg"));
        assert_eq!(svg.matches("<circle").count(), 3);
        // The time axis is labelled in UTC.
        assert!(svg.contains("\n00:01\n"), "{svg}");
    }

    #[test]
    fn deltas_are_coloured_by_sign() {
        let svg = deltas(&[(0, 0.5), (60_000, -0.25)]).unwrap();
        assert_eq!(svg.matches("<circle").count(), 2);
        assert_eq!(svg.matches("#DC2626").count(), 1, "{svg}");
    }

    #[test]
    fn no_point_or_one_point_still_draws() {
        assert_eq!(line(&[]).unwrap().matches("<circle").count(), 0);
        assert_eq!(line(&[(5, 1.0)]).unwrap().matches("<circle").count(), 1);
    }

    #[test]
    fn any_values_alpha_can_carry_still_draw() {
        let cases: [&[(i64, f64)]; 5] = [
            &[(i64::MIN, 1.0), (i64::MAX, 2.0)],
            &[(0, f64::MAX), (60_000, f64::MIN)],
            &[(0, 1e-300), (1, -1e-300)],
            &[(5, 0.0), (5, 0.0)],
            &[(-86_400_000_000_000, 1.0), (86_400_000_000_000, 1.0)],
        ];
        for points in cases {
            let svg = line(points).unwrap_or_else(|error| panic!("{points:?}: {error}"));
            assert_eq!(svg.matches("<circle").count(), points.len(), "{points:?}");
            deltas(points).unwrap();
        }
    }
}

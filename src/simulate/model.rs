//! How a room's sensors behave: each room's climate and use, the random walk of every sensor
//! value towards what the time of day and the day of the week call for, and the spacing of a
//! stream's readings.

use rand::rngs::SmallRng;
use rand::Rng;
use std::f64::consts::PI;

/// What makes rooms differ: their usual climate and how much they are used.
pub(super) struct RoomModel {
    temperature: f64,
    humidity: f64,
    /// CO2 (ppm) that people add when the room is occupied.
    occupants_co2: f64,
    /// Light (lux) through the windows at noon.
    daylight: f64,
    /// Light (lux) of the lamps, on while the room is occupied.
    lamps: f64,
}

impl RoomModel {
    pub(super) fn new(rng: &mut SmallRng) -> RoomModel {
        RoomModel {
            temperature: rng.gen_range(20.5..24.5),
            humidity: rng.gen_range(38.0..52.0),
            occupants_co2: rng.gen_range(200.0..700.0),
            daylight: rng.gen_range(100.0..350.0),
            lamps: rng.gen_range(250.0..400.0),
        }
    }

    pub(super) fn initial(&self, kind: usize, rng: &mut SmallRng) -> f64 {
        match kind {
            0 => self.temperature + rng.gen_range(-0.5..0.5),
            1 => self.humidity,
            2 => 420.0 + rng.gen_range(0.0..30.0),
            _ => 0.0,
        }
    }

    /// The value a sensor reads at `ts` after reading `value` about 5 s before: a random walk
    /// pulled towards what the time of day calls for.
    pub(super) fn next(&self, kind: usize, value: f64, ts: i64, rng: &mut SmallRng) -> f64 {
        let day = ts.div_euclid(86_400_000);
        let hour = ts.rem_euclid(86_400_000) as f64 / 3_600_000.0;
        // 1970-01-01 was a Thursday: (day + 3) % 7 counts from Monday.
        let occupied = (day + 3).rem_euclid(7) < 5 && (8.0..18.0).contains(&hour);
        let occupancy = if occupied { 1.0 } else { 0.0 };
        match kind {
            0 => {
                let target = self.temperature + occupancy;
                (value + 0.01 * (target - value) + rng.gen_range(-0.03..0.03)).clamp(19.0, 26.0)
            }
            1 => (value + 0.01 * (self.humidity - value) + rng.gen_range(-0.1..0.1))
                .clamp(30.0, 60.0),
            2 => {
                let target = 420.0 + occupancy * self.occupants_co2;
                (value + 0.01 * (target - value) + rng.gen_range(-3.0..3.0)).clamp(400.0, 1200.0)
            }
            _ => {
                let sun = (PI * (hour - 6.0) / 12.0).sin().max(0.0);
                let target = sun * self.daylight + occupancy * self.lamps;
                (target + rng.gen_range(-10.0..10.0)).clamp(0.0, 800.0)
            }
        }
    }
}

/// Milliseconds until a stream's next reading: mostly about 5 s, sometimes anywhere in 3–9 s.
pub(super) fn interval_ms(rng: &mut SmallRng) -> i64 {
    if rng.gen_bool(0.9) {
        rng.gen_range(4_000..=6_000)
    } else {
        rng.gen_range(3_000..=9_000)
    }
}

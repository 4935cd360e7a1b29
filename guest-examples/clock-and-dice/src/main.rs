//! A program whose output changes on every run: the time, how long a sleep
//! took, dice thrown, a hash map's order. Under `live-wasm --deterministic` it
//! prints the same bytes on every save, until an edit changes what it prints.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn main() {
    println!("Clock and dice");

    // The wall clock (WASI `clock_time_get`, realtime).
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    println!("now: {}", utc(now));

    // A sleep (`poll_oneoff`), measured on the monotonic clock.
    let start = Instant::now();
    std::thread::sleep(Duration::from_millis(200));
    println!("slept: {:?}", start.elapsed());

    // Randomness (`random_get`): std seeds every hash map's hasher with it.
    let dice = RandomState::new();
    let throws: Vec<u64> = (0..5).map(|throw| dice.hash_one(throw) % 6 + 1).collect();
    println!("dice: {throws:?}");
    let fruit: HashMap<&str, usize> = ["apple", "banana", "cherry", "damson", "elder"]
        .into_iter()
        .zip(1..)
        .collect();
    println!("hash map order: {:?}", fruit.keys().collect::<Vec<_>>());
}

/// `since_epoch` as a UTC date and time, to the nanosecond.
fn utc(since_epoch: Duration) -> String {
    let seconds = since_epoch.as_secs();
    let (days, of_day) = (seconds / 86_400, seconds % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let shifted = days + 719_468;
    let era = shifted / 146_097;
    let of_era = shifted % 146_097;
    let year_of_era = (of_era - of_era / 1_460 + of_era / 36_524 - of_era / 146_096) / 365;
    let day_of_year = of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    format!(
        "{year}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:09} UTC",
        of_day / 3_600,
        of_day / 60 % 60,
        of_day % 60,
        since_epoch.subsec_nanos()
    )
}

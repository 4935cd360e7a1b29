//! Function names as their language writes them: Rust's `_ZN…17h<hash>E`
//! and `_R…`, C++'s `_Z…`, demangled for a trap's frames (`super::outcome`),
//! bounded, since the name section is the guest's to write.

use std::fmt::Write as _;

/// The longest name demangled, in bytes: the name section is the guest's to
/// write, and no compiler's symbol is this long.
const MAX_MANGLED: usize = 4096;

/// The longest name a demangler may write, in bytes: a short symbol can name
/// a huge one (C++'s substitutions nest: 260 bytes made 240 MB in 6 s), and a
/// line is cut past this when shown anyway.
const MAX_DEMANGLED: usize = 4096;

/// `name` as its language writes it: `hello_live::main`, `geo::Shape::area(int)`
/// (Rust's hash dropped), cut after [`MAX_DEMANGLED`] bytes; any other name as
/// it is.
pub(super) fn demangle(name: &str) -> String {
    if name.len() > MAX_MANGLED {
        return name.to_owned();
    }
    let mut out = Bounded::default();
    let written = if let Ok(rust) = rustc_demangle::try_demangle(name) {
        // `{:#}` leaves out the hash.
        write!(out, "{rust:#}")
    } else if name.starts_with("_Z")
        && let Ok(symbol) = cpp_demangle::Symbol::new(name)
    {
        symbol.structured_demangle(&mut out, &cpp_demangle::DemangleOptions::default())
    } else {
        return name.to_owned();
    };
    match written {
        Ok(()) => out.text,
        Err(_) if out.full => out.text + "…",
        Err(_) => name.to_owned(),
    }
}

/// A demangler's output, up to [`MAX_DEMANGLED`] bytes: past them, the
/// write fails and the demangler stops.
#[derive(Default)]
struct Bounded {
    text: String,
    full: bool,
}

impl std::fmt::Write for Bounded {
    fn write_str(&mut self, piece: &str) -> std::fmt::Result {
        let room = MAX_DEMANGLED - self.text.len();
        if piece.len() <= room {
            self.text.push_str(piece);
            return Ok(());
        }
        let cut = (0..=room)
            .rev()
            .find(|at| piece.is_char_boundary(*at))
            .unwrap_or(0);
        self.text.push_str(&piece[..cut]);
        self.full = true;
        Err(std::fmt::Error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_and_cpp_symbols_read_as_their_languages_write_them() {
        assert_eq!(
            demangle("_ZN10hello_live4main17hcdda25da4266c98fE"),
            "hello_live::main"
        );
        assert_eq!(
            demangle("_RNvNtCset5xJoy1xWQ_3std7process5abort"),
            "std::process::abort"
        );
        assert_eq!(
            demangle("_ZN3std2rt10lang_start28_$u7b$$u7b$closure$u7d$$u7d$17hc47bc9f035078f2aE"),
            "std::rt::lang_start::{{closure}}"
        );
        assert_eq!(demangle("_ZN3geo5Shape4areaEi"), "geo::Shape::area(int)");
        assert_eq!(
            demangle("_ZNK3geo6Circle4areaEv"),
            "geo::Circle::area() const"
        );
        for plain in ["main", "_start", "func[3]", "_Z", "_Zzz", "$divide"] {
            assert_eq!(demangle(plain), plain);
        }
        let long = format!("_ZN{}E", "1a".repeat(MAX_MANGLED));
        assert_eq!(demangle(&long), long);
    }

    #[test]
    fn a_name_that_expands_without_end_is_cut_at_once() {
        // `std::pair<S, S>` of the last substitution, 40 times: 2^40 `a`s.
        let mut name = String::from("_Z1f1aSt4pairIS_S_E");
        for level in 1..=40u32 {
            // The index in base 36, upper case: `S1_`, ..., `SZ_`, `S10_`.
            let digit = |n: u32| {
                char::from_digit(n, 36)
                    .expect("a digit")
                    .to_ascii_uppercase()
            };
            let index = match level / 36 {
                0 => digit(level).to_string(),
                high => format!("{}{}", digit(high), digit(level % 36)),
            };
            name.push_str(&format!("S0_IS{index}_S{index}_E"));
        }
        let started = std::time::Instant::now();
        let shown = demangle(&name);
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert!(shown.starts_with("f(a, std::pair<a, a>, "), "{shown}");
        assert!(shown.ends_with('…') && shown.len() <= MAX_DEMANGLED + 3);
    }
}

//! The escape sequences a guest's output may send to a terminal: colours, and
//! nothing that reaches beyond its own text.
//!
//! A terminal obeys what it is sent: `ESC ] 52` writes the clipboard, `ESC [ 2J`
//! clears the screen, cursor moves redraw what is already there, `DCS`, `APC`
//! and `PM` strings drive features of their own. A guest's text, tabs, line
//! ends, carriage returns and backspaces pass, and so do colours (SGR,
//! `ESC [ ... m`); every other sequence, other control character and C1
//! control is dropped. A state machine, after the ECMA-48 parser terminals
//! use, so that a sequence split across writes is still recognised.

/// The longest SGR sequence kept (`ESC [ 38;2;255;255;255;48;2;255;255;255m`
/// is 38 bytes): a longer one is dropped, so a guest cannot make us hold much.
const LONGEST_SGR: usize = 256;

const ESC: u8 = 0x1b;
/// CAN and SUB end any sequence.
const CAN: u8 = 0x18;
const SUB: u8 = 0x1a;
const BEL: u8 = 0x07;
/// The UTF-8 lead byte of U+0080..U+00BF, which holds the C1 controls.
const C1_LEAD: u8 = 0xc2;

/// Where in a sequence the last byte left us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Text.
    Ground,
    /// After `ESC`.
    Escape,
    /// After `ESC` and intermediate bytes (`ESC ( B`, `ESC # 8`).
    EscapeIntermediate,
    /// Inside `ESC [`: kept in `held` until its final byte says what it is.
    Csi,
    /// Inside an `ESC [` too long to be kept: dropped.
    CsiDropped,
    /// Inside a string (OSC, DCS, SOS, PM, APC), up to `ST` or `BEL`.
    String,
    /// After `0xC2`: a C1 control or a character from Latin-1.
    C1Lead,
}

/// Filters what a guest writes to a terminal. One per stream, kept across
/// writes: a sequence may be split between two.
#[derive(Debug)]
pub(super) struct Escapes {
    state: State,
    /// The CSI sequence so far, `ESC [` included.
    held: Vec<u8>,
    /// UTF-8 continuation bytes the current character still has to come.
    continuation: u8,
}

impl Default for Escapes {
    fn default() -> Self {
        Self {
            state: State::Ground,
            held: Vec::new(),
            continuation: 0,
        }
    }
}

impl Escapes {
    /// Appends to `out` what of `input` may reach the terminal.
    pub(super) fn filter(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len());
        for &byte in input {
            self.byte(byte, out);
        }
    }

    fn byte(&mut self, byte: u8, out: &mut Vec<u8>) {
        match self.state {
            State::Ground => self.ground(byte, out),
            State::C1Lead => {
                self.state = State::Ground;
                // U+0080..U+009F are the C1 controls (U+009B is a CSI).
                if !(0x80..=0x9f).contains(&byte) {
                    out.push(C1_LEAD);
                    self.continuation = 1;
                    self.ground(byte, out);
                }
            }
            State::Escape => match byte {
                b'[' => {
                    self.held.clear();
                    self.held.extend_from_slice(&[ESC, b'[']);
                    self.state = State::Csi;
                }
                b']' | b'P' | b'X' | b'^' | b'_' => self.state = State::String,
                0x20..=0x2f => self.state = State::EscapeIntermediate,
                ESC => {}
                _ => self.end_sequence(byte, out),
            },
            State::EscapeIntermediate => match byte {
                0x20..=0x2f => {}
                _ => self.end_sequence(byte, out),
            },
            State::Csi => match byte {
                0x20..=0x3f if self.held.len() < LONGEST_SGR => self.held.push(byte),
                0x20..=0x3f => self.state = State::CsiDropped,
                b'm' if self.held[2..]
                    .iter()
                    .all(|&b| b.is_ascii_digit() || b == b';' || b == b':') =>
                {
                    out.extend_from_slice(&self.held);
                    out.push(b'm');
                    self.state = State::Ground;
                }
                _ => self.end_sequence(byte, out),
            },
            State::CsiDropped => match byte {
                0x20..=0x3f => {}
                _ => self.end_sequence(byte, out),
            },
            State::String => match byte {
                // `ESC \` (ST) ends the string; the `\` is then dropped as
                // the end of a two-byte escape.
                ESC => self.state = State::Escape,
                BEL | CAN | SUB => self.state = State::Ground,
                _ => {}
            },
        }
    }

    /// A byte inside an escape sequence that is not one of its parameters: a
    /// final byte ends it (dropped), `ESC` starts another, CAN and SUB cancel
    /// it, other controls are dropped, and a byte past ASCII ends it and is
    /// text again.
    fn end_sequence(&mut self, byte: u8, out: &mut Vec<u8>) {
        match byte {
            0x40..=0x7e | 0x30..=0x3f | CAN | SUB => self.state = State::Ground,
            ESC => self.state = State::Escape,
            0x80..=0xff => {
                self.state = State::Ground;
                self.ground(byte, out);
            }
            _ => {}
        }
    }

    fn ground(&mut self, byte: u8, out: &mut Vec<u8>) {
        match byte {
            b'\t' | b'\n' | b'\r' | 0x08 | 0x20..=0x7e => {
                self.continuation = 0;
                out.push(byte);
            }
            ESC => {
                self.continuation = 0;
                self.state = State::Escape;
            }
            // Other C0 controls (BEL, SO switching the character set, ...) and DEL.
            0x00..=0x1f | 0x7f => self.continuation = 0,
            0x80..=0xbf if self.continuation > 0 => {
                self.continuation -= 1;
                out.push(byte);
            }
            // A C1 control as one byte: 0x9B is a CSI to a terminal in 8-bit mode.
            0x80..=0x9f => {}
            // A stray continuation byte: the terminal shows a replacement.
            0xa0..=0xbf => out.push(byte),
            C1_LEAD => self.state = State::C1Lead,
            0xc0..=0xff => {
                self.continuation = match byte {
                    0xc0..=0xdf => 1,
                    0xe0..=0xef => 2,
                    _ => 3,
                };
                out.push(byte);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What reaches the terminal of `input`, written in pieces of `size` bytes.
    fn filtered(input: &[u8], size: usize) -> Vec<u8> {
        let mut escapes = Escapes::default();
        let mut out = Vec::new();
        for piece in input.chunks(size) {
            escapes.filter(piece, &mut out);
        }
        out
    }

    /// The same at every split: a sequence split across writes is the same.
    fn shown(input: &str) -> String {
        let whole = filtered(input.as_bytes(), input.len().max(1));
        for size in 1..input.len() {
            assert_eq!(
                filtered(input.as_bytes(), size),
                whole,
                "split every {size}"
            );
        }
        String::from_utf8(whole).expect("UTF-8 in, UTF-8 out")
    }

    #[test]
    fn text_and_colours_pass() {
        let text = "plain\ttext é ü 日本 🦀\r\nprogress\u{8}\u{8}\n";
        assert_eq!(shown(text), text);
        let colours = "\u{1b}[31mred\u{1b}[0m \u{1b}[1;38;2;255;0;0mtrue\u{1b}[m \u{1b}[38:5:9mx";
        assert_eq!(shown(colours), colours);
        // Latin-1 from U+00A0, whose lead byte is that of the C1 controls.
        assert_eq!(shown("\u{a0}°±ÿ"), "\u{a0}°±ÿ");
    }

    #[test]
    fn other_sequences_are_dropped_whole() {
        // OSC 52 (clipboard), ended by BEL or by ST.
        assert_eq!(shown("a\u{1b}]52;c;SGVsbG8=\u{7}b"), "ab");
        assert_eq!(shown("a\u{1b}]0;title\u{1b}\\b"), "ab");
        // Screen clear, cursor moves, a private mode, a long CSI.
        assert_eq!(shown("a\u{1b}[2J\u{1b}[H\u{1b}[10;20Hb"), "ab");
        assert_eq!(shown("a\u{1b}[?1049h\u{1b}[?25lb"), "ab");
        assert_eq!(shown("a\u{1b}[>4;2mb"), "ab");
        let long = format!("a\u{1b}[{}mb", "1;".repeat(200));
        assert_eq!(shown(&long), "ab");
        // DCS, APC, PM, SOS strings; a full reset; a charset switch; DECALN.
        assert_eq!(shown("a\u{1b}P+q544e\u{1b}\\b"), "ab");
        assert_eq!(shown("a\u{1b}_Gf=100;AAAA\u{1b}\\b"), "ab");
        assert_eq!(shown("a\u{1b}^private\u{1b}\\b\u{1b}Xsos\u{1b}\\c"), "abc");
        assert_eq!(shown("a\u{1b}cb\u{1b}(0c\u{1b}#8d"), "abcd");
        // CAN cancels; ESC starts over; a sequence ends at non-ASCII text.
        assert_eq!(shown("a\u{1b}[12\u{18}b\u{1b}\u{1b}[31mc"), "ab\u{1b}[31mc");
        assert_eq!(shown("a\u{1b}[é"), "aé");
    }

    #[test]
    fn control_characters_are_dropped() {
        assert_eq!(shown("a\u{7}\u{e}\u{f}\u{0}\u{7f}b"), "ab");
        // C1 controls, as UTF-8 (U+009B is a CSI, U+009D an OSC) ...
        assert_eq!(shown("a\u{9b}2Jb\u{9d}52;c;x\u{7}"), "a2Jb52;c;x");
        // ... and as single bytes, while continuation bytes in that range pass.
        assert_eq!(filtered(b"a\x9b2Jb", 8), b"a2Jb");
        assert_eq!(shown("ā ő ǅ"), "ā ő ǅ");
    }
}

//! A WASI guest of the sandbox tests (built for wasm32-wasip1 and -wasip2):
//! each argument asks it to try one thing, and it prints one line saying
//! whether it could.
//!
//! `env` (how many variables it sees), `stdin` (a line of it),
//! `connect:HOST:PORT`, `lookup:HOST`, and on files: `read:PATH`,
//! `write:PATH`, `create:PATH` (a new file), `append:PATH`, `truncate:PATH`,
//! `times:PATH` (set its modification time), `mkdir:PATH`, `rmdir:PATH`,
//! `unlink:PATH`, `rename:FROM>TO`, `hardlink:FROM>TO`,
//! `list:DIR` (how many entries), `stat:PATH` (its size).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};

fn main() {
    for ask in std::env::args().skip(1) {
        let (what, arg) = ask.split_once(':').unwrap_or((&ask, ""));
        let (from, to) = arg.split_once('>').unwrap_or((arg, ""));
        let done = |()| "done".to_owned();
        let outcome = match what {
            "env" => Ok(format!("{} variables", std::env::vars().count())),
            "read" => fs::read_to_string(arg).map(|text| text.trim().to_owned()),
            "write" => fs::write(arg, "written by the guest").map(|()| "written".to_owned()),
            "create" => OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(arg)
                .map(|_| "created".to_owned()),
            "append" => OpenOptions::new()
                .append(true)
                .open(arg)
                .and_then(|mut file| file.write_all(b"+"))
                .map(done),
            "truncate" => OpenOptions::new()
                .write(true)
                .open(arg)
                .and_then(|file| file.set_len(0))
                .map(done),
            "times" => OpenOptions::new()
                .write(true)
                .open(arg)
                .and_then(|file| file.set_modified(std::time::UNIX_EPOCH))
                .map(done),
            "mkdir" => fs::create_dir(arg).map(done),
            "rmdir" => fs::remove_dir(arg).map(done),
            "unlink" => fs::remove_file(arg).map(done),
            "rename" => fs::rename(from, to).map(done),
            "hardlink" => fs::hard_link(from, to).map(done),
            "list" => fs::read_dir(arg).map(|entries| format!("{} entries", entries.count())),
            "stat" => fs::metadata(arg).map(|meta| format!("{} bytes", meta.len())),
            "connect" => TcpStream::connect(arg).map(|_| "connected".to_owned()),
            "stdin" => {
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .map(|_| line.trim().to_owned())
            }
            "lookup" => (arg, 80)
                .to_socket_addrs()
                .map(|addrs| format!("{} addresses", addrs.count())),
            _ => Err(std::io::Error::other("unknown ask")),
        };
        match outcome {
            Ok(ok) => println!("{ask}: OK {ok}"),
            Err(err) => println!("{ask}: ERR {}", err.kind()),
        }
    }
}

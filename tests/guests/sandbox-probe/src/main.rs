//! A WASI 0.2 guest of the sandbox tests: each argument asks it to try one
//! thing, and it prints one line saying whether it could.
//!
//! `env` (how many variables it sees), `read:PATH`, `write:PATH`,
//! `connect:HOST:PORT`, `lookup:HOST`, `stdin` (a line of it).

use std::net::{TcpStream, ToSocketAddrs};

fn main() {
    for ask in std::env::args().skip(1) {
        let (what, arg) = ask.split_once(':').unwrap_or((&ask, ""));
        let outcome = match what {
            "env" => Ok(format!("{} variables", std::env::vars().count())),
            "read" => std::fs::read_to_string(arg).map(|text| text.trim().to_owned()),
            "write" => std::fs::write(arg, "written by the guest").map(|()| "written".to_owned()),
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

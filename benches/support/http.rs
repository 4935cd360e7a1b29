//! HTTP for the serve bench: a minimal HTTP/1.1 client on std's `TcpStream`
//! (keep-alive, `Content-Length` and chunked bodies), and the floor of a served
//! save loop (see [`serve_floor_if_asked`]).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, RwLock};
use std::thread;
use std::time::Duration;

/// How long a request may take, connecting or answering, before it counts as failed.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// What one request got.
pub enum Outcome {
    /// A whole response: its status and body.
    Response(u16, Vec<u8>),
    /// No whole response: why (refused, reset, timed out, malformed).
    Failed(String),
}

/// One keep-alive connection to `addr`, made again after it fails.
pub struct Client {
    addr: SocketAddr,
    connection: Option<BufReader<TcpStream>>,
    /// How many reused connections were found closed before any byte of a
    /// response, the request then sent again on a new connection as HTTP
    /// clients do for a GET (counted apart: not a failed request).
    pub closed_while_idle: u64,
}

impl Client {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            connection: None,
            closed_while_idle: 0,
        }
    }

    /// Drops the connection: the next request makes a new one.
    pub fn disconnect(&mut self) {
        self.connection = None;
    }

    /// `GET /`. A request on a reused connection that finds it closed before
    /// any byte of its response is sent once more on a new connection.
    pub fn get(&mut self) -> Outcome {
        let reused = self.connection.is_some();
        match self.try_get() {
            Err(Attempt::ClosedBeforeResponse) if reused => {
                self.closed_while_idle += 1;
                self.connection = None;
                match self.try_get() {
                    Ok((status, body)) => Outcome::Response(status, body),
                    Err(why) => Outcome::Failed(why.to_string()),
                }
            }
            Ok((status, body)) => Outcome::Response(status, body),
            Err(why) => Outcome::Failed(why.to_string()),
        }
    }

    fn try_get(&mut self) -> Result<(u16, Vec<u8>), Attempt> {
        let result = self.exchange();
        if result.is_err() {
            self.connection = None;
        }
        result
    }

    fn exchange(&mut self) -> Result<(u16, Vec<u8>), Attempt> {
        if self.connection.is_none() {
            let stream = TcpStream::connect_timeout(&self.addr, REQUEST_TIMEOUT)
                .map_err(|err| Attempt::Other(format!("connect: {err}")))?;
            let _ = stream.set_nodelay(true);
            let _ = stream.set_read_timeout(Some(REQUEST_TIMEOUT));
            let _ = stream.set_write_timeout(Some(REQUEST_TIMEOUT));
            self.connection = Some(BufReader::new(stream));
        }
        let reader = self.connection.as_mut().expect("connected above");
        reader
            .get_mut()
            .write_all(b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\naccept: */*\r\n\r\n")
            .map_err(|_| Attempt::ClosedBeforeResponse)?;
        let (status, body, close) = read_response(reader)?;
        if close {
            self.connection = None;
        }
        Ok((status, body))
    }
}

/// Why one attempt failed.
enum Attempt {
    /// Nothing of a response came: the connection was closed or reset.
    ClosedBeforeResponse,
    Other(String),
}

impl std::fmt::Display for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Attempt::ClosedBeforeResponse => f.write_str("connection closed before a response"),
            Attempt::Other(why) => f.write_str(why),
        }
    }
}

/// Reads one response: its status, its body, and whether the server closes
/// the connection after it.
fn read_response(reader: &mut BufReader<TcpStream>) -> Result<(u16, Vec<u8>, bool), Attempt> {
    let mut line = String::new();
    match reader.read_line(&mut line) {
        Ok(0) | Err(_) => return Err(Attempt::ClosedBeforeResponse),
        Ok(_) => {}
    }
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| Attempt::Other(format!("bad status line {line:?}")))?;
    let broken = |err: std::io::Error| Attempt::Other(format!("reading the response: {err}"));
    let mut length = None;
    let mut chunked = false;
    let mut close = line.starts_with("HTTP/1.0");
    loop {
        line.clear();
        if reader.read_line(&mut line).map_err(broken)? == 0 {
            return Err(Attempt::Other("connection closed in the headers".into()));
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse::<usize>().ok(),
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "connection" => close = value.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            reader.read_line(&mut line).map_err(broken)?;
            let size_text = line.trim_end().split(';').next().unwrap_or_default();
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| Attempt::Other(format!("bad chunk size {line:?}")))?;
            if size == 0 {
                // Trailers, then the empty line.
                loop {
                    line.clear();
                    if reader.read_line(&mut line).map_err(broken)? == 0
                        || line.trim_end().is_empty()
                    {
                        break;
                    }
                }
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..]).map_err(broken)?;
            let mut crlf = [0u8; 2];
            reader.read_exact(&mut crlf).map_err(broken)?;
        }
    } else if let Some(length) = length {
        body.resize(length, 0);
        reader.read_exact(&mut body).map_err(broken)?;
    } else {
        reader.read_to_end(&mut body).map_err(broken)?;
        close = true;
    }
    Ok((status, body, close))
}

/// A free port on 127.0.0.1 (bound, then let go: the server binds it next).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// The argument that turns the bench executable into the floor server.
const SERVE_FLOOR: &str = "--serve-floor";

/// The floor server for `file`, on 127.0.0.1:`port` (run in the file's folder).
pub fn floor_command(file: &Path, port: u16) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("the bench's own path"));
    command.arg(SERVE_FLOOR).arg(file).arg(port.to_string());
    command
}

/// When the bench was started as the floor server, serves until killed.
///
/// The floor of a served save loop: nothing is compiled or started. One thread
/// blocks on inotify and, when the file is saved, reads it and keeps the text
/// around its version marker as the body; every connection has a thread that
/// answers each request with the body as it is. What is left of a save's time
/// is inotify's wake-up, one read of the file, and the poller's round trip.
pub fn serve_floor_if_asked() {
    let args: Vec<String> = std::env::args().collect();
    let Some(at) = args.iter().position(|arg| arg == SERVE_FLOOR) else {
        return;
    };
    let file = Path::new(args.get(at + 1).expect("--serve-floor FILE PORT")).to_owned();
    let port: u16 = args
        .get(at + 2)
        .and_then(|port| port.parse().ok())
        .expect("--serve-floor FILE PORT");
    let body = Arc::new(RwLock::new(floor_body(&file)));
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the floor's port");
    {
        let body = Arc::clone(&body);
        thread::spawn(move || {
            super::floor::watch_saves(&file, || {
                *body.write().expect("the body's lock") = floor_body(&file);
            })
        });
    }
    for stream in listener.incoming().flatten() {
        let body = Arc::clone(&body);
        thread::spawn(move || floor_connection(stream, &body));
    }
    std::process::exit(0);
}

/// The file's version marker (`version 000042`) and a newline.
fn floor_body(file: &Path) -> Vec<u8> {
    let bytes = std::fs::read(file).unwrap_or_default();
    let at = bytes
        .windows(MARKER.len())
        .position(|window| window == MARKER)
        .unwrap_or(bytes.len());
    let mut body = bytes[at..(at + MARKER.len() + 6).min(bytes.len())].to_vec();
    body.push(b'\n');
    body
}

/// What precedes the six digits of a version in the handler and its responses.
pub const MARKER: &[u8] = b"version ";

/// Answers each request on `stream` with the body as it is then.
fn floor_connection(stream: TcpStream, body: &RwLock<Vec<u8>>) {
    let _ = stream.set_nodelay(true);
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        // The request line and headers, up to the empty line (GETs: no body).
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) if line.trim_end().is_empty() => break,
                Ok(_) => {}
            }
        }
        let body = body.read().expect("the body's lock").clone();
        let mut response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        response.extend_from_slice(&body);
        if writer.write_all(&response).is_err() {
            return;
        }
    }
}

//! The loader's end of the direct line from a run on the cluster: a TCP
//! listener on this machine whose address and a one-time token go into the
//! job's entrypoint. The job's driver connects, says `LOADER-RAY/1 TOKEN`,
//! and then sends what it writes to the job's log, so the loader sees it
//! as it is written instead of when Ray's log stream gets to it (a second
//! or two later). Where the cluster cannot reach this machine nothing
//! connects, and the log alone serves: the two carry the same lines.
//!
//! The address is the one this machine reaches the Jobs API from (the
//! local end of a connection to it), which is the interface facing the
//! cluster; for a cluster on loopback, loopback.

use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The first line a driver sends, before its token.
pub const PROTOCOL: &str = "LOADER-RAY/1";

/// How long a connection may take to say who it is.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the listening thread looks whether it is still wanted.
const CHECK_EVERY: Duration = Duration::from_millis(20);

/// How long finding the address toward the cluster may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where to listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAt {
    /// On the address this machine reaches the Jobs API from, any port.
    Auto,
    /// On this address (port 0: any).
    At(SocketAddr),
    /// Nowhere: the run is read from the job's log only.
    Off,
}

impl std::str::FromStr for ListenAt {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "auto" => Ok(ListenAt::Auto),
            "off" => Ok(ListenAt::Off),
            other => other
                .parse::<SocketAddr>()
                .or_else(|_| other.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 0)))
                .map(ListenAt::At)
                .map_err(|_| format!("{other:?} is not `auto`, `off`, an IP address or IP:PORT")),
        }
    }
}

/// Why no listener could be set up (the run is then read from the log).
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("cannot find this machine's address toward {address}: {reason}")]
    NoRoute { address: String, reason: String },
    #[error("cannot listen on {address}: {reason}")]
    Bind { address: SocketAddr, reason: String },
}

/// A line that came over the direct line, or its end.
#[derive(Debug, PartialEq, Eq)]
pub enum Direct {
    Line(String),
    /// The connection closed or broke (after which the log serves).
    Ended(String),
}

/// A bound listener, not yet serving.
#[derive(Debug)]
pub struct Listener {
    listener: TcpListener,
    address: SocketAddr,
    token: String,
}

impl Listener {
    /// Listens where `at` says, for a cluster whose Jobs API is at
    /// `jobs_api` (`http://host:port`); `None` for [`ListenAt::Off`].
    pub fn bind(at: &ListenAt, jobs_api: &str) -> Result<Option<Self>, ListenError> {
        let address = match at {
            ListenAt::Off => return Ok(None),
            ListenAt::At(address) => *address,
            ListenAt::Auto => SocketAddr::new(address_toward(jobs_api)?, 0),
        };
        let bind_error = |e: std::io::Error| ListenError::Bind {
            address,
            reason: e.to_string(),
        };
        let listener = TcpListener::bind(address).map_err(bind_error)?;
        let address = listener.local_addr().map_err(bind_error)?;
        listener.set_nonblocking(true).map_err(bind_error)?;
        Ok(Some(Listener {
            listener,
            address,
            token: new_token(),
        }))
    }

    /// `HOST:PORT` for the driver to connect to.
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// Serves on this thread until `done`: takes the first connection that
    /// says the token, and hands each of its lines to `lines`, then its
    /// end. Other connections are closed unread.
    pub fn serve(self, lines: &Sender<Direct>, done: &AtomicBool) {
        let hello = format!("{PROTOCOL} {}", self.token);
        let stream = loop {
            if done.load(Ordering::SeqCst) {
                return;
            }
            match self.listener.accept() {
                Ok((stream, peer)) => match greeted(stream, &hello) {
                    Some(reader) => {
                        tracing::debug!("ray: the driver connected from {peer}; events come straight from it");
                        break reader;
                    }
                    None => tracing::debug!("ray: a connection from {peer} did not say the run's token; closed"),
                },
                Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(CHECK_EVERY),
                Err(e) => {
                    let _ = lines.send(Direct::Ended(format!("cannot accept: {e}")));
                    return;
                }
            }
        };
        relay_lines(stream, lines, done);
    }

    /// Serves on a thread of its own until `done` is set.
    pub fn spawn(self, lines: Sender<Direct>, done: Arc<AtomicBool>) {
        std::thread::spawn(move || self.serve(&lines, &done));
    }
}

/// The connection, past its greeting, if it said `hello`.
fn greeted(stream: TcpStream, hello: &str) -> Option<BufReader<TcpStream>> {
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(HELLO_TIMEOUT)).ok()?;
    let mut reader = BufReader::new(stream);
    let mut first = Vec::new();
    // A greeting is short: a peer that sends more without a line break is
    // not a driver.
    (&mut reader)
        .take(hello.len() as u64 + 2)
        .read_until(b'\n', &mut first)
        .ok()?;
    (first.strip_suffix(b"\n") == Some(hello.as_bytes())).then_some(reader)
}

/// Hands each line of `reader` to `lines` until it ends or `done`.
fn relay_lines(mut reader: BufReader<TcpStream>, lines: &Sender<Direct>, done: &AtomicBool) {
    if let Err(e) = reader.get_ref().set_read_timeout(Some(CHECK_EVERY * 10)) {
        let _ = lines.send(Direct::Ended(e.to_string()));
        return;
    }
    let mut line = Vec::new();
    let end = loop {
        if done.load(Ordering::SeqCst) {
            return;
        }
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break "closed".to_owned(),
            Ok(_) if line.ends_with(b"\n") => {
                line.pop();
                let text = String::from_utf8_lossy(&line).into_owned();
                line.clear();
                if lines.send(Direct::Line(text)).is_err() {
                    return;
                }
            }
            Ok(_) => break "closed inside a line".to_owned(),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(e) => break e.to_string(),
        }
    };
    let _ = lines.send(Direct::Ended(end));
}

/// The local address of a connection to `jobs_api`'s host and port.
fn address_toward(jobs_api: &str) -> Result<IpAddr, ListenError> {
    let failed = |reason: String| ListenError::NoRoute {
        address: jobs_api.to_owned(),
        reason,
    };
    let rest = jobs_api.split_once("://").map_or(jobs_api, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or_default();
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_owned()
    } else if jobs_api.starts_with("https://") {
        format!("{authority}:443")
    } else {
        format!("{authority}:80")
    };
    let started = Instant::now();
    let mut last = "it resolves to no address".to_owned();
    for address in with_port.to_socket_addrs().map_err(|e| failed(e.to_string()))? {
        let left = PROBE_TIMEOUT
            .saturating_sub(started.elapsed())
            .max(Duration::from_millis(100));
        match TcpStream::connect_timeout(&address, left) {
            Ok(stream) => return stream.local_addr().map(|a| a.ip()).map_err(|e| failed(e.to_string())),
            Err(e) => last = format!("{address}: {e}"),
        }
    }
    Err(failed(last))
}

/// 128 random bits as hex, from the system's generator.
fn new_token() -> String {
    use std::io::Read as _;
    let mut bytes = [0u8; 16];
    let filled = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if filled.is_err() {
        // No /dev/urandom: the time and process id still make the token
        // unguessable to anyone who does not watch this process.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        bytes = (nanos ^ (u128::from(std::process::id()) << 64)).to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::mpsc;

    /// A listener on loopback serving on its own thread: its address,
    /// token, what it receives, and the flag that ends it.
    fn listening() -> (String, String, mpsc::Receiver<Direct>, Arc<AtomicBool>) {
        let at = ListenAt::At("127.0.0.1:0".parse().unwrap());
        let listener = Listener::bind(&at, "http://127.0.0.1:1").unwrap().unwrap();
        let (address, token) = (listener.address(), listener.token().to_owned());
        let (sender, receiver) = mpsc::channel();
        let done = Arc::new(AtomicBool::new(false));
        listener.spawn(sender, done.clone());
        (address, token, receiver, done)
    }

    #[test]
    fn the_connection_that_says_the_token_is_relayed_line_by_line_and_others_are_closed() {
        let (address, token, received, done) = listening();
        let mut stranger = TcpStream::connect(&address).unwrap();
        stranger.write_all(b"LOADER-RAY/1 wrong\n{\"forged\":1}\n").unwrap();
        let mut driver = TcpStream::connect(&address).unwrap();
        write!(driver, "{PROTOCOL} {token}\nfirst\nsecond ").unwrap();
        driver.flush().unwrap();
        let wait = Duration::from_secs(10);
        assert_eq!(received.recv_timeout(wait).unwrap(), Direct::Line("first".into()));
        driver.write_all(b"half\n").unwrap();
        assert_eq!(received.recv_timeout(wait).unwrap(), Direct::Line("second half".into()));
        drop(driver);
        assert!(matches!(received.recv_timeout(wait).unwrap(), Direct::Ended(_)));
        done.store(true, Ordering::SeqCst);
        assert!(
            received.recv_timeout(Duration::from_millis(300)).is_err(),
            "nothing from the stranger"
        );
    }

    #[test]
    fn a_listener_stops_when_no_longer_wanted_and_tokens_differ() {
        let (_, first, received, done) = listening();
        let (_, second, _, other) = listening();
        assert_ne!(first, second);
        assert_eq!(first.len(), 32);
        done.store(true, Ordering::SeqCst);
        other.store(true, Ordering::SeqCst);
        assert!(matches!(
            received.recv_timeout(Duration::from_secs(5)),
            Err(mpsc::RecvTimeoutError::Disconnected)
        ));
    }

    #[test]
    fn listen_addresses_parse_and_auto_finds_the_interface_toward_the_cluster() {
        assert_eq!("off".parse::<ListenAt>(), Ok(ListenAt::Off));
        assert_eq!("auto".parse::<ListenAt>(), Ok(ListenAt::Auto));
        assert_eq!(
            "127.0.0.1".parse::<ListenAt>(),
            Ok(ListenAt::At("127.0.0.1:0".parse().unwrap()))
        );
        assert_eq!(
            "127.0.0.1:9".parse::<ListenAt>(),
            Ok(ListenAt::At("127.0.0.1:9".parse().unwrap()))
        );
        assert!("nowhere".parse::<ListenAt>().is_err());
        let api = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", api.local_addr().unwrap());
        let listener = Listener::bind(&ListenAt::Auto, &url).unwrap().unwrap();
        assert!(listener.address().starts_with("127.0.0.1:"), "{}", listener.address());
        assert!(Listener::bind(&ListenAt::Off, &url).unwrap().is_none());
    }
}

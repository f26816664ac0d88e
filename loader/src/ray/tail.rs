//! The live stream of a Ray job's log: the Jobs API's WebSocket
//! (`GET /api/jobs/{id}/logs/tail`, what `ray job logs --follow` reads).
//! It sends what the job prints from the log's first byte on, as it is
//! written, and closes once the job has ended and everything is sent, so
//! following a job costs each byte of its log once, where polling
//! `/logs` fetches the whole log every time.
//!
//! Plain `http://` addresses only (as the rest of the Jobs API client);
//! for any other the caller polls instead.

use std::io::ErrorKind;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Error, Message, WebSocket};

/// How long connecting and the WebSocket handshake may take.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// The shortest wait [`LogTail::next_within`] passes to the socket (a zero
/// read timeout would mean no timeout at all).
const MIN_WAIT: Duration = Duration::from_millis(1);

/// Why a log stream could not be opened (the caller polls instead).
#[derive(Debug, thiserror::Error)]
pub enum TailError {
    #[error("the log stream is followed over plain http only, not {0}")]
    NotPlainHttp(String),
    #[error("cannot connect to {authority}: {reason}")]
    Connect { authority: String, reason: String },
    #[error("no log stream at {url}: {reason}")]
    Handshake { url: String, reason: String },
}

/// An open log stream of one job.
pub struct LogTail {
    socket: WebSocket<TcpStream>,
}

/// What one read of the stream gave.
#[derive(Debug, PartialEq, Eq)]
pub enum TailRead {
    /// The next piece of the log (a few lines, or part of a long one).
    Text(String),
    /// Nothing arrived within the wait.
    Quiet,
    /// The cluster closed the stream: the job has ended and its whole log
    /// was sent.
    Closed,
    /// The connection failed before the cluster closed it: what arrived is
    /// a prefix of the log, the rest has to be fetched another way.
    Broken(String),
}

impl LogTail {
    /// Opens the stream at `path` of the Jobs API at `address`
    /// (`http://host:port`, possibly with a base path).
    pub fn open(address: &str, path: &str) -> Result<Self, TailError> {
        let authority_and_base = address
            .strip_prefix("http://")
            .ok_or_else(|| TailError::NotPlainHttp(address.to_owned()))?;
        let authority = authority_and_base.split('/').next().unwrap_or_default();
        let stream = connect(authority)?;
        stream
            .set_read_timeout(Some(OPEN_TIMEOUT))
            .and_then(|()| stream.set_write_timeout(Some(OPEN_TIMEOUT)))
            .map_err(|e| TailError::Connect {
                authority: authority.to_owned(),
                reason: e.to_string(),
            })?;
        // A log line can be as large as an event the plugin reported, and
        // the cluster sends a line in one message: no size limit here (the
        // line has to be held to be read in any case).
        let config = WebSocketConfig::default().max_message_size(None).max_frame_size(None);
        let url = format!("ws://{authority_and_base}{path}");
        let (socket, _) = tungstenite::client::client_with_config(url.as_str(), stream, Some(config)).map_err(|e| {
            TailError::Handshake {
                reason: e.to_string(),
                url,
            }
        })?;
        Ok(LogTail { socket })
    }

    /// The next piece of the log, waiting at most `wait` for it.
    pub fn next_within(&mut self, wait: Duration) -> TailRead {
        if let Err(e) = self.socket.get_mut().set_read_timeout(Some(wait.max(MIN_WAIT))) {
            return TailRead::Broken(e.to_string());
        }
        loop {
            match self.socket.read() {
                Ok(Message::Text(text)) => return TailRead::Text(text.as_str().to_owned()),
                Ok(Message::Binary(bytes)) => return TailRead::Text(String::from_utf8_lossy(&bytes).into_owned()),
                Ok(Message::Close(frame)) => {
                    // Sends the reply tungstenite queued (the closing handshake).
                    let _ = self.socket.flush();
                    return match frame {
                        None => TailRead::Closed,
                        Some(frame) if frame.code == CloseCode::Normal => TailRead::Closed,
                        // The cluster's end of the stream failed (it cannot
                        // read the log, say): what came is not the whole log.
                        Some(frame) => TailRead::Broken(format!("closed with {} {}", frame.code, frame.reason)),
                    };
                }
                Err(Error::ConnectionClosed | Error::AlreadyClosed) => return TailRead::Closed,
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => continue,
                Err(Error::Io(e))
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) =>
                {
                    return TailRead::Quiet
                }
                Err(e) => return TailRead::Broken(e.to_string()),
            }
        }
    }
}

/// A TCP connection to `authority` (`host:port`, or `host` for port 80 as
/// in an `http` URL), trying each address it resolves to.
fn connect(authority: &str) -> Result<TcpStream, TailError> {
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| port.parse::<u16>().is_ok());
    let authority = if has_port {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let failed = |reason: String| TailError::Connect {
        authority: authority.clone(),
        reason,
    };
    let addresses = authority.to_socket_addrs().map_err(|e| failed(e.to_string()))?;
    let mut last_error = "it resolves to no address".to_owned();
    for address in addresses {
        match TcpStream::connect_timeout(&address, OPEN_TIMEOUT) {
            Ok(stream) => return Ok(stream),
            Err(e) => last_error = format!("{address}: {e}"),
        }
    }
    Err(failed(last_error))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    /// A one-connection WebSocket server on loopback that runs `serve` on
    /// the accepted socket; returns its address.
    fn server(serve: impl FnOnce(WebSocket<TcpStream>) + Send + 'static) -> (String, thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let handle = thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            serve(tungstenite::accept(stream).unwrap());
        });
        (address, handle)
    }

    #[test]
    fn pieces_arrive_in_order_then_the_close_says_the_log_is_whole() {
        let (address, server) = server(|mut ws| {
            ws.send(Message::text("first line\nsecond ")).unwrap();
            ws.send(Message::text("half\n")).unwrap();
            ws.close(None).unwrap();
            while ws.read().is_ok() {}
        });
        let mut tail = LogTail::open(&address, "/api/jobs/x/logs/tail").unwrap();
        let mut reads = Vec::new();
        loop {
            let read = tail.next_within(Duration::from_secs(5));
            let done = matches!(read, TailRead::Closed | TailRead::Broken(_));
            reads.push(read);
            if done {
                break;
            }
        }
        drop(tail);
        server.join().unwrap();
        assert_eq!(
            reads,
            [
                TailRead::Text("first line\nsecond ".into()),
                TailRead::Text("half\n".into()),
                TailRead::Closed
            ]
        );
    }

    #[test]
    fn a_silent_stream_is_quiet_within_the_wait_and_a_piece_sent_later_still_arrives() {
        let (address, server) = server(|mut ws| {
            thread::sleep(Duration::from_millis(300));
            ws.send(Message::text("late\n")).unwrap();
            ws.close(None).unwrap();
            while ws.read().is_ok() {}
        });
        let mut tail = LogTail::open(&address, "/tail").unwrap();
        assert_eq!(tail.next_within(Duration::from_millis(20)), TailRead::Quiet);
        let mut read = TailRead::Quiet;
        while read == TailRead::Quiet {
            read = tail.next_within(Duration::from_millis(50));
        }
        assert_eq!(read, TailRead::Text("late\n".into()));
        assert_eq!(tail.next_within(Duration::from_secs(5)), TailRead::Closed);
        drop(tail);
        server.join().unwrap();
    }

    #[test]
    fn a_connection_dropped_without_a_close_is_broken_not_the_end_of_the_log() {
        let (address, server) = server(|mut ws| {
            ws.send(Message::text("partial")).unwrap();
            ws.flush().unwrap();
        });
        let mut tail = LogTail::open(&address, "/tail").unwrap();
        server.join().unwrap();
        assert_eq!(
            tail.next_within(Duration::from_secs(5)),
            TailRead::Text("partial".into())
        );
        assert!(matches!(tail.next_within(Duration::from_secs(5)), TailRead::Broken(_)));
    }

    #[test]
    fn a_close_for_an_error_is_broken_not_the_end_of_the_log() {
        let (address, server) = server(|mut ws| {
            ws.send(Message::text("partial")).unwrap();
            let frame = tungstenite::protocol::CloseFrame {
                code: CloseCode::Error,
                reason: "cannot decode the log".into(),
            };
            ws.close(Some(frame)).unwrap();
            while ws.read().is_ok() {}
        });
        let mut tail = LogTail::open(&address, "/tail").unwrap();
        assert_eq!(
            tail.next_within(Duration::from_secs(5)),
            TailRead::Text("partial".into())
        );
        match tail.next_within(Duration::from_secs(5)) {
            TailRead::Broken(reason) => assert!(reason.contains("cannot decode the log"), "{reason}"),
            other => panic!("{other:?}"),
        }
        drop(tail);
        server.join().unwrap();
    }

    #[test]
    fn an_address_that_is_not_plain_http_or_has_no_stream_is_refused() {
        let https = LogTail::open("https://127.0.0.1:1", "/tail").err().unwrap().to_string();
        assert!(https.contains("plain http"), "{https}");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let not_websocket = thread::spawn(move || {
            use std::io::{Read, Write};
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request).unwrap();
            stream
                .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                .unwrap();
        });
        let refused = LogTail::open(&address, "/tail").err().unwrap().to_string();
        not_websocket.join().unwrap();
        assert!(refused.contains("no log stream"), "{refused}");
    }
}

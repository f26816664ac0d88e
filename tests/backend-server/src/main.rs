//! `backend-server [PORT] [TOKEN]`: serves the test backend on 127.0.0.1
//! until killed, for trying `loader run --backend` by hand.

fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let token = args.next();
    let server = backend_server::TestBackend::start_on(port, token.as_deref()).expect("cannot listen on 127.0.0.1");
    println!("listening on {}", server.url());
    loop {
        std::thread::sleep(std::time::Duration::from_secs(5));
        let (logs, jobs) = (server.logs().len(), server.job_ids().len());
        println!("{} requests, {logs} log entries, {jobs} jobs", server.requests().len());
    }
}

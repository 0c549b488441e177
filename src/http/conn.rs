//! Connections: the accept loop and the per-connection deadlines Vault gets from Go's
//! `http.Server` (`http_read_header_timeout`, `http_read_timeout`, `http_write_timeout`,
//! `http_idle_timeout`). Without them a client could hold sockets open for ever with idle
//! keep-alive connections or half-sent requests, and lock every other client out.
//!
//! The deadlines live in a thin wrapper around the TCP stream ([`Deadlines`]), told by the
//! request service when a request starts and when its response is done ([`ConnState`]):
//! - no request in progress: the next request's headers must start within the idle timeout and
//!   be complete within the header timeout of their first byte (of the accept, for the first
//!   request, which also covers the TLS handshake);
//! - a request in progress: its body must arrive within the read timeout of the request's start
//!   ([`DeadlineBody`]), and the response must be produced and written within the write timeout.
//!
//! A deadline that passes makes the stream fail with `TimedOut`, and hyper closes the connection.
//!
//! Request headers are bounded as Go bounds them ([`MAX_HEADER_BYTES`]).
//! On a TLS listener, a client speaking plain HTTP gets Go's `400 Bad Request` and
//! `Client sent an HTTP request to an HTTPS server.` instead of a TLS alert
//! ([`refuse_plain_http`]).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::ConnectInfo;
use http_body_util::BodyExt;
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

use crate::config::HttpTimeouts;

/// How long the accept loop pauses after an error such as `EMFILE` before trying again: 5 ms,
/// doubling while the errors last, at most 1 s (as Go's `http.Server`).
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The most bytes of request line and headers read before a request is answered with
/// `431 Request Header Fields Too Large`: Go's `DefaultMaxHeaderBytes` (1 MiB) plus the 4 KiB
/// slack Go's `http.Server` allows, as in Vault. hyper refuses a head once its read buffer
/// reaches this size; reads of at most [`HEAD_READ_CHUNK`] while a head arrives keep the buffer
/// from overshooting (over TLS, by at most one TLS record). A head under this size is served, one
/// over it by a chunk is refused. (A URL over 65534 bytes is refused sooner, with
/// `414 URI Too Long`: the `http` crate cannot represent a longer one.)
const MAX_HEADER_BYTES: usize = (1 << 20) + 4096;

/// Largest read from the socket while a request head is arriving (see [`MAX_HEADER_BYTES`]).
const HEAD_READ_CHUNK: usize = 4096;

/// How long in-flight requests may run on after shutdown is asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Serves `app` on `listener` (over TLS with `tls`) until `shutdown`, then lets in-flight
/// requests finish (for at most 30 s).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    timeouts: HttpTimeouts,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    // hyper answers 431 once the request line and headers outgrow its read buffer (HTTP/1.1)
    // or the header list limit (HTTP/2).
    builder.http1().max_buf_size(MAX_HEADER_BYTES);
    builder
        .http2()
        .max_header_list_size(u32::try_from(MAX_HEADER_BYTES).unwrap_or(u32::MAX));
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    let mut backoff = Duration::ZERO;
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Per-connection failures need no pause; running out of file descriptors
                    // (EMFILE/ENFILE) or memory does: back off and keep serving.
                    if !matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::Interrupted
                    ) {
                        backoff = (backoff * 2).clamp(ACCEPT_BACKOFF_MIN, ACCEPT_BACKOFF_MAX);
                        tracing::warn!(error = %e, "accepting a connection failed; retrying in {backoff:?}");
                        tokio::select! {
                            () = &mut shutdown => break,
                            () = tokio::time::sleep(backoff) => {}
                        }
                    }
                    continue;
                }
            },
        };
        backoff = Duration::ZERO;
        let _ = stream.set_nodelay(true);
        let state = Arc::new(ConnState::new(timeouts));
        let io = Deadlines::new(stream, state.clone());
        let service = service(app.clone(), peer, state);
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => {
                    let conn = builder.serve_connection(TokioIo::new(io), service);
                    let _ = watcher.watch(conn.into_owned()).await;
                }
                Some(acceptor) => {
                    let Some(io) = refuse_plain_http(io).await else {
                        return;
                    };
                    let Ok(stream) = acceptor.accept(io).await else {
                        return;
                    };
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    let _ = watcher.watch(conn.into_owned()).await;
                }
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
}

/// Go's answer to plain HTTP on a TLS listener (Vault's): a bare HTTP/1.0 400, then close.
const PLAIN_HTTP_ANSWER: &[u8] =
    b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

/// What the first five bytes of a plain HTTP request to a TLS listener look like: Go's five
/// (`GET /`, `HEAD `, `POST `, `PUT /`, `OPTIO`) and the other methods Vault clients send.
const PLAIN_HTTP_STARTS: [&[u8; 5]; 8] = [
    b"GET /", b"HEAD ", b"POST ", b"PUT /", b"OPTIO", b"DELET", b"LIST ", b"PATCH",
];

/// How long the refused connection's unread request may keep arriving before the socket is
/// closed (closing with unread data resets the connection, and the client could lose the 400).
const PLAIN_HTTP_DRAIN: Duration = Duration::from_secs(1);

/// Reads the first five bytes of a TLS connection (a TLS record header). When they are the start
/// of a plain HTTP request, answers as Go's `http.Server` does and returns `None`; otherwise
/// returns the stream with those bytes put back for the handshake. `None` too when the client
/// closes (or the header timeout passes) before five bytes.
async fn refuse_plain_http<S>(mut io: S) -> Option<Rewind<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = [0u8; 5];
    io.read_exact(&mut head).await.ok()?;
    if !PLAIN_HTTP_STARTS.contains(&&head) {
        return Some(Rewind {
            head,
            pos: 0,
            inner: io,
        });
    }
    if io.write_all(PLAIN_HTTP_ANSWER).await.is_ok() && io.shutdown().await.is_ok() {
        let mut sink = [0u8; 4096];
        let drain = async { while matches!(io.read(&mut sink).await, Ok(n) if n > 0) {} };
        let _ = tokio::time::timeout(PLAIN_HTTP_DRAIN, drain).await;
    }
    None
}

/// A stream with bytes already read from it put back in front.
struct Rewind<S> {
    head: [u8; 5],
    pos: usize,
    inner: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(rest) = this.head.get(this.pos..).filter(|r| !r.is_empty()) {
            let n = rest.len().min(buf.remaining());
            buf.put_slice(rest.get(..n).unwrap_or_default());
            this.pos += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

type ServiceFuture =
    Pin<Box<dyn Future<Output = io::Result<hyper::Response<ResponseBody>>> + Send>>;
type ResponseBody = http_body_util::combinators::MapFrame<
    Body,
    Box<dyn FnMut(Frame<Bytes>) -> Frame<Bytes> + Send + Sync>,
>;

/// The per-connection request service: the router, with the peer address, the body deadline,
/// the write deadline and the in-flight bookkeeping around each request.
fn service(
    app: Router,
    peer: SocketAddr,
    state: Arc<ConnState>,
) -> impl hyper::service::Service<
    hyper::Request<hyper::body::Incoming>,
    Response = hyper::Response<ResponseBody>,
    Error = io::Error,
    Future = ServiceFuture,
> + Clone {
    hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let (guard, body_deadline) = state.request_started();
        let write_timeout = state.timeouts.write;
        let mut req = req.map(|b| Body::new(DeadlineBody::new(b, body_deadline)));
        req.extensions_mut().insert(ConnectInfo(peer));
        let app = app.clone();
        Box::pin(async move {
            let call = app.oneshot(req);
            let resp = match write_timeout {
                None => call.await,
                Some(limit) => match tokio::time::timeout(limit, call).await {
                    Ok(resp) => resp,
                    Err(_) => return Err(io::ErrorKind::TimedOut.into()),
                },
            };
            let Ok(resp) = resp;
            // The guard lives as long as the response body, so the request counts as in
            // progress until hyper has written (or dropped) the whole response.
            let keep: Box<dyn FnMut(Frame<Bytes>) -> Frame<Bytes> + Send + Sync> =
                Box::new(move |frame| {
                    let _ = &guard;
                    frame
                });
            Ok(resp.map(|b| b.map_frame(keep)))
        }) as ServiceFuture
    })
}

/// What the stream wrapper needs to know about the requests on its connection.
pub(crate) struct ConnState {
    timeouts: HttpTimeouts,
    phase: Mutex<Phase>,
}

struct Phase {
    /// Requests whose responses are not yet fully written.
    in_flight: usize,
    /// Whether a request has completed (the next one is a keep-alive request).
    served: bool,
    /// When the connection was accepted, or last became idle.
    since: Instant,
    /// The first byte received while idle: the next request's start.
    first_byte: Option<Instant>,
    /// When the current request's response must be written by.
    write_deadline: Option<Instant>,
    /// The reader to wake when the connection becomes idle, so it arms the idle deadline.
    idle_waker: Option<Waker>,
}

impl ConnState {
    pub(crate) fn new(timeouts: HttpTimeouts) -> Self {
        ConnState {
            timeouts,
            phase: Mutex::new(Phase {
                in_flight: 0,
                served: false,
                since: Instant::now(),
                first_byte: None,
                write_deadline: None,
                idle_waker: None,
            }),
        }
    }

    fn phase(&self) -> MutexGuard<'_, Phase> {
        self.phase
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Bytes arrived.
    fn received(&self) {
        let mut p = self.phase();
        if p.in_flight == 0 && p.first_byte.is_none() {
            p.first_byte = Some(Instant::now());
        }
    }

    /// Whether no request is in progress, so what arrives is the next request's head.
    fn reading_head(&self) -> bool {
        self.phase().in_flight == 0
    }

    /// A request's headers were read: returns the in-flight guard and the body's deadline.
    fn request_started(self: &Arc<Self>) -> (InFlight, Option<Instant>) {
        let now = Instant::now();
        let mut p = self.phase();
        let start = if p.served {
            p.first_byte.unwrap_or(now)
        } else {
            p.since
        };
        p.in_flight += 1;
        p.first_byte = None;
        p.write_deadline = self.timeouts.write.map(|d| now + d);
        let body_deadline = self.timeouts.read.map(|d| start + d);
        (InFlight(self.clone()), body_deadline)
    }

    /// When a pending read must give up; `None` while a request is in progress (its body has
    /// its own deadline) or when no timeout applies.
    fn read_deadline(&self, waker: &Waker) -> Option<Instant> {
        let mut p = self.phase();
        if p.in_flight > 0 {
            p.idle_waker = Some(waker.clone());
            return None;
        }
        let t = &self.timeouts;
        match (p.served, p.first_byte) {
            (false, _) => t.read_header.map(|d| p.since + d),
            (true, None) => t.idle.map(|d| p.since + d),
            (true, Some(first)) => t.read_header.map(|d| first + d),
        }
    }

    fn write_deadline(&self) -> Option<Instant> {
        self.phase().write_deadline
    }
}

/// Marks a request as in progress until dropped.
struct InFlight(Arc<ConnState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut p = self.0.phase();
        p.in_flight = p.in_flight.saturating_sub(1);
        if p.in_flight == 0 {
            p.served = true;
            p.since = Instant::now();
            p.first_byte = None;
            p.write_deadline = None;
            if let Some(w) = p.idle_waker.take() {
                w.wake();
            }
        }
    }
}

/// A timer that can be moved to a new deadline; allocated on first use.
#[derive(Default)]
struct Timer {
    sleep: Option<Pin<Box<Sleep>>>,
    at: Option<Instant>,
}

impl Timer {
    /// `Ready(TimedOut)` once `deadline` has passed; `Pending` otherwise (or without a deadline).
    fn poll(&mut self, deadline: Option<Instant>, cx: &mut Context<'_>) -> Poll<io::Error> {
        let Some(deadline) = deadline else {
            return Poll::Pending;
        };
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if self.at != Some(deadline) {
            sleep.as_mut().reset(deadline);
            self.at = Some(deadline);
        }
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(io::ErrorKind::TimedOut.into()),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A stream that fails with `TimedOut` when a read or write deadline of [`ConnState`] passes.
pub(crate) struct Deadlines<S> {
    io: S,
    state: Arc<ConnState>,
    read_timer: Timer,
    write_timer: Timer,
}

impl<S> Deadlines<S> {
    pub(crate) fn new(io: S, state: Arc<ConnState>) -> Self {
        Deadlines {
            io,
            state,
            read_timer: Timer::default(),
            write_timer: Timer::default(),
        }
    }

    fn poll_write_deadline<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let deadline = self.state.write_deadline();
        self.write_timer.poll(deadline, cx).map(Err)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Deadlines<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() > HEAD_READ_CHUNK && this.state.reading_head() {
            // Small reads while a request head arrives keep hyper's buffer, and so the header
            // limit, within one chunk of `MAX_HEADER_BYTES`.
            let mut chunk = [0u8; HEAD_READ_CHUNK];
            let mut small = ReadBuf::new(&mut chunk);
            return match Pin::new(&mut this.io).poll_read(cx, &mut small) {
                Poll::Ready(Ok(())) => {
                    if !small.filled().is_empty() {
                        buf.put_slice(small.filled());
                        this.state.received();
                    }
                    Poll::Ready(Ok(()))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => {
                    let deadline = this.state.read_deadline(cx.waker());
                    this.read_timer.poll(deadline, cx).map(Err)
                }
            };
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.state.received();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let deadline = this.state.read_deadline(cx.waker());
                this.read_timer.poll(deadline, cx).map(Err)
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Deadlines<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_write(cx, buf) {
            Poll::Pending => this.poll_write_deadline(cx),
            ready => ready,
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_write_vectored(cx, bufs) {
            Poll::Pending => this.poll_write_deadline(cx),
            ready => ready,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_flush(cx) {
            Poll::Pending => this.poll_write_deadline(cx),
            ready => ready,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// A request body that fails with `TimedOut` when it has not fully arrived by its deadline.
struct DeadlineBody {
    inner: hyper::body::Incoming,
    deadline: Option<Instant>,
    timer: Timer,
}

impl DeadlineBody {
    fn new(inner: hyper::body::Incoming, deadline: Option<Instant>) -> Self {
        DeadlineBody {
            inner,
            deadline,
            timer: Timer::default(),
        }
    }
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => match this.timer.poll(this.deadline, cx) {
                Poll::Ready(e) => Poll::Ready(Some(Err(e.into()))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// Raises the soft limit on open files to the hard limit, as Go programs (and so Vault) do at
/// start, so that a busy server does not run out of sockets at the common default of 1024.
pub fn raise_open_files_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current == limit.maximum {
        return;
    }
    let raised = rustix::process::Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    if let Err(e) = setrlimit(Resource::Nofile, raised) {
        tracing::debug!(error = %e, "could not raise the open files limit");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn timeouts(secs: u64) -> HttpTimeouts {
        let d = Duration::from_secs(secs);
        HttpTimeouts {
            read_header: Some(d),
            read: Some(d),
            write: Some(d),
            idle: Some(d),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_blocked_write_fails_after_the_write_timeout() {
        let state = Arc::new(ConnState::new(timeouts(5)));
        let (client, server) = tokio::io::duplex(16);
        let mut io = Deadlines::new(server, state.clone());
        let (_guard, _) = state.request_started();
        let started = Instant::now();
        let err = io.write_all(&[0u8; 64]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        drop(client);
    }

    #[tokio::test(start_paused = true)]
    async fn reads_wait_for_idle_then_header_deadlines() {
        let state = Arc::new(ConnState::new(HttpTimeouts {
            idle: Some(Duration::from_secs(60)),
            ..timeouts(5)
        }));
        let (mut client, server) = tokio::io::duplex(64);
        let mut io = Deadlines::new(server, state.clone());
        let mut buf = [0u8; 8];
        // First request: the header timeout runs from the accept.
        let started = Instant::now();
        let err = io.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        // While a request runs, the stream itself sets no read deadline.
        let guard = state.request_started().0;
        let waker = futures_noop_waker();
        assert_eq!(state.read_deadline(&waker), None);
        drop(guard);
        // Idle after a response: the idle timeout, then the header timeout from the first byte.
        let idle = Instant::now();
        assert_eq!(
            state.read_deadline(&waker),
            Some(idle + Duration::from_secs(60))
        );
        client.write_all(b"G").await.unwrap();
        assert_eq!(io.read(&mut buf).await.unwrap(), 1);
        let first = Instant::now();
        assert_eq!(
            state.read_deadline(&waker),
            Some(first + Duration::from_secs(5))
        );
    }

    #[tokio::test]
    async fn plain_http_on_a_tls_listener_gets_gos_400() {
        for start in [
            &b"GET /v1/sys/health HTTP/1.1\r\n\r\n"[..],
            b"LIST /v1/x HTTP/1.1\r\n\r\n",
        ] {
            let (mut client, server) = tokio::io::duplex(1024);
            client.write_all(start).await.unwrap();
            client.shutdown().await.unwrap();
            assert!(refuse_plain_http(server).await.is_none());
            let mut answer = Vec::new();
            client.read_to_end(&mut answer).await.unwrap();
            assert_eq!(answer, PLAIN_HTTP_ANSWER);
        }
    }

    #[tokio::test]
    async fn a_tls_hello_is_handed_on_whole() {
        let hello = [0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5, 6];
        let (mut client, server) = tokio::io::duplex(1024);
        client.write_all(&hello).await.unwrap();
        client.shutdown().await.unwrap();
        let mut rewound = refuse_plain_http(server).await.unwrap();
        let mut got = Vec::new();
        let mut small = [0u8; 3];
        let n = rewound.read(&mut small).await.unwrap();
        got.extend_from_slice(&small[..n]);
        rewound.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, hello);
        // Fewer than five bytes: nothing to hand on.
        let (mut client, server) = tokio::io::duplex(1024);
        client.write_all(b"GET").await.unwrap();
        client.shutdown().await.unwrap();
        assert!(refuse_plain_http(server).await.is_none());
    }

    fn futures_noop_waker() -> Waker {
        Waker::noop().clone()
    }
}

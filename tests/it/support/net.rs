//! Plumbing shared by the network fakes: a background thread with its own tokio runtime
//! that stops when its owner is dropped, a front door on 127.0.0.1 that can be closed
//! (connections refused) and reopened on the same port, and connections a handler can
//! cut without answering. It knows nothing about HTTP or SMTP.

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use futures_util::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};

/// One accepted TCP connection. Once cut, every read and write fails, so the peer sees
/// the connection closed without a byte of answer.
pub struct Conn {
    stream: TcpStream,
    cut: Arc<CutFlag>,
}

/// Set once a connection must die; wakes the task parked reading it, so even an idle
/// keep-alive connection is closed at once (the client's pool then drops it).
#[derive(Default)]
pub struct CutFlag {
    cut: AtomicBool,
    waker: AtomicWaker,
}

impl CutFlag {
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.waker.wake();
    }
}

impl Conn {
    pub fn handle(&self) -> ConnHandle {
        ConnHandle(self.cut.clone())
    }

    fn check(&self) -> io::Result<()> {
        if self.cut.cut.load(Ordering::SeqCst) {
            Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "connection cut by the fake",
            ))
        } else {
            Ok(())
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.cut.waker.register(cx.waker());
        if let Err(e) = self.check() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Err(e) = self.check() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Err(e) = self.check() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Lets a handler cut its own connection (HTTP handlers get it as `ConnectInfo`).
#[derive(Clone)]
pub struct ConnHandle(Arc<CutFlag>);

impl ConnHandle {
    pub fn cut(&self) {
        self.0.cut();
    }
}

/// The axum side of the front door: connections come from the acceptor task.
pub struct ChanListener {
    rx: mpsc::Receiver<Conn>,
    addr: SocketAddr,
}

impl Listener for ChanListener {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Conn, SocketAddr) {
        match self.rx.recv().await {
            Some(conn) => {
                let peer = conn
                    .stream
                    .peer_addr()
                    .unwrap_or_else(|_| SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
                (conn, peer)
            }
            // The acceptor is gone: the server is shutting down.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }
}

impl Connected<IncomingStream<'_, ChanListener>> for ConnHandle {
    fn connect_info(stream: IncomingStream<'_, ChanListener>) -> Self {
        stream.io().handle()
    }
}

/// Serves an axum router on the connections of a [`Background`].
pub fn serve_http(
    router: Router,
) -> impl FnOnce(mpsc::Receiver<Conn>, SocketAddr) -> Pin<Box<dyn Future<Output = ()> + Send>>
+ Send
+ 'static {
    move |rx, addr| {
        Box::pin(async move {
            let listener = ChanListener { rx, addr };
            let _ = axum::serve(
                listener,
                router.into_make_service_with_connect_info::<ConnHandle>(),
            )
            .await;
        })
    }
}

/// A server running on its own thread and runtime, on 127.0.0.1:<port>.
/// Dropping it stops the runtime, which cancels every connection (even hanging ones).
pub struct Background {
    addr: SocketAddr,
    want_up: watch::Sender<bool>,
    applied: Arc<(Mutex<bool>, Condvar)>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Background {
    /// Binds 127.0.0.1:0 and runs `serve` over the accepted connections.
    pub fn start<F, Fut>(name: &str, serve: F) -> Background
    where
        F: FnOnce(mpsc::Receiver<Conn>, SocketAddr) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (want_up, up_rx) = watch::channel(true);
        let applied = Arc::new((Mutex::new(true), Condvar::new()));
        let (shutdown, shutdown_rx) = oneshot::channel::<()>();
        let applied2 = applied.clone();
        let thread_name = format!("fake-{name}");
        let thread = std::thread::Builder::new()
            .name(thread_name.clone())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name(thread_name)
                    .enable_all()
                    .build()
                    .expect("building the runtime of a fake server");
                rt.block_on(async move {
                    let listener = match bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = addr_tx.send(Err(e));
                            return;
                        }
                    };
                    let addr = listener
                        .local_addr()
                        .expect("local address of a fake server");
                    let _ = addr_tx.send(Ok(addr));
                    let (conn_tx, conn_rx) = mpsc::channel(256);
                    tokio::spawn(acceptor(listener, addr, up_rx, conn_tx, applied2));
                    tokio::spawn(serve(conn_rx, addr));
                    let _ = shutdown_rx.await;
                });
                // Cancels every task, including connections that hang on purpose.
                rt.shutdown_timeout(Duration::from_millis(200));
            })
            .expect("spawning the thread of a fake server");
        let addr = addr_rx
            .recv()
            .expect("fake server thread died before binding")
            .expect("binding a fake server on 127.0.0.1");
        Background {
            addr,
            want_up,
            applied,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Opens (`true`) or closes (`false`) the front door; returns once it is done, so a
    /// connection attempted after `set_up(false)` returns is refused.
    pub fn set_up(&self, up: bool) {
        self.want_up.send_replace(up);
        let (lock, cvar) = &*self.applied;
        let guard = lock.lock().expect("fake server state");
        let (guard, timeout) = cvar
            .wait_timeout_while(guard, Duration::from_secs(10), |applied| *applied != up)
            .expect("fake server state");
        drop(guard);
        assert!(
            !timeout.timed_out(),
            "fake server at {} did not switch to up={up}",
            self.addr
        );
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    // Lets the door reopen on the same port while old connections sit in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

async fn acceptor(
    listener: TcpListener,
    addr: SocketAddr,
    mut up_rx: watch::Receiver<bool>,
    conn_tx: mpsc::Sender<Conn>,
    applied: Arc<(Mutex<bool>, Condvar)>,
) {
    let mut listener = Some(listener);
    let mut open: Vec<Weak<CutFlag>> = Vec::new();
    loop {
        let want = *up_rx.borrow_and_update();
        if want && listener.is_none() {
            let mut attempts = 0;
            listener = loop {
                match bind(addr) {
                    Ok(l) => break Some(l),
                    Err(e) if attempts < 200 => {
                        attempts += 1;
                        let _ = e;
                        tokio::time::sleep(Duration::from_millis(25)).await;
                    }
                    Err(e) => panic!("fake server could not reopen {addr}: {e}"),
                }
            };
        }
        if !want && listener.is_some() {
            // Closing the listening socket: new connections are refused (RST).
            listener = None;
            for flag in open.drain(..).filter_map(|w| w.upgrade()) {
                flag.cut();
            }
        }
        {
            let (lock, cvar) = &*applied;
            *lock.lock().expect("fake server state") = want;
            cvar.notify_all();
        }
        match &listener {
            Some(l) => {
                tokio::select! {
                    accepted = l.accept() => {
                        if let Ok((stream, _)) = accepted {
                            let _ = stream.set_nodelay(true);
                            let cut = Arc::new(CutFlag::default());
                            open.retain(|w| w.strong_count() > 0);
                            open.push(Arc::downgrade(&cut));
                            if conn_tx.send(Conn { stream, cut }).await.is_err() {
                                return;
                            }
                        }
                    }
                    changed = up_rx.changed() => {
                        if changed.is_err() {
                            return;
                        }
                    }
                }
            }
            None => {
                if up_rx.changed().await.is_err() {
                    return;
                }
            }
        }
    }
}

//! The bounds of the gateway: sizes, times, connections, and the rate of `POST chat`
//! (it carries no token: anyone who can reach the port can send it).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Largest body read (`POST chat`: a 1000-character message in JSON).
pub const MAX_BODY: usize = 8 * 1024;
/// Request line and headers (hyper's own bound; 8 KiB is its minimum).
pub const MAX_HEAD: usize = 16 * 1024;
/// Connections served at once; more wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 256;
/// Time a client has to send its request line and headers, and the TLS handshake.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a client has to send its body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest life of one connection (Pod opens one per request).
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);
/// The teacher's page waits on `start` (and Pod sets no timeout): an answer within 2 s.
pub const ENGINE_TIMEOUT: Duration = Duration::from_millis(1900);
/// A chat message may take a BBB round trip.
pub const CHAT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time the requests in flight get to finish after SIGTERM.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// A token bucket: `burst` requests at once, `per_sec` more each second.
#[derive(Debug, Clone)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn full(burst: f64, now: Instant) -> Bucket {
        Bucket {
            tokens: burst,
            last: now,
        }
    }

    fn take(&mut self, burst: f64, per_sec: f64, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * per_sec).min(burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Rates of `POST chat`: all rooms together (checked before anything else), and per
/// live room (a big class chats fast, a script faster).
pub struct ChatRate {
    all: Mutex<Bucket>,
    rooms: Mutex<HashMap<String, Bucket>>,
}

const ALL_BURST: f64 = 100.0;
const ALL_PER_SEC: f64 = 50.0;
const ROOM_BURST: f64 = 20.0;
const ROOM_PER_SEC: f64 = 5.0;
/// Past this many rooms remembered, idle ones are forgotten.
const ROOMS_KEPT: usize = 64;

impl ChatRate {
    pub fn new(now: Instant) -> ChatRate {
        ChatRate {
            all: Mutex::new(Bucket::full(ALL_BURST, now)),
            rooms: Mutex::new(HashMap::new()),
        }
    }

    /// One more message from anyone.
    pub fn admit_any(&self, now: Instant) -> bool {
        // A poisoned lock only means a panic elsewhere while holding it: the bucket
        // is still a number.
        let mut all = self.all.lock().unwrap_or_else(|p| p.into_inner());
        all.take(ALL_BURST, ALL_PER_SEC, now)
    }

    /// One more message into `room` (a room live here: the map stays small).
    pub fn admit_room(&self, room: &str, now: Instant) -> bool {
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        if rooms.len() >= ROOMS_KEPT && !rooms.contains_key(room) {
            let idle = Duration::from_secs_f64(ROOM_BURST / ROOM_PER_SEC);
            rooms.retain(|_, b| now.saturating_duration_since(b.last) < idle);
        }
        rooms
            .entry(room.to_owned())
            .or_insert_with(|| Bucket::full(ROOM_BURST, now))
            .take(ROOM_BURST, ROOM_PER_SEC, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_gets_its_burst_then_its_rate() {
        let t0 = Instant::now();
        let rate = ChatRate::new(t0);
        for i in 0..ROOM_BURST as usize {
            assert!(rate.admit_room("r", t0), "message {i}");
        }
        assert!(!rate.admit_room("r", t0));
        assert!(rate.admit_room("other", t0), "rooms are counted apart");
        assert!(rate.admit_room("r", t0 + Duration::from_millis(200)));
        assert!(!rate.admit_room("r", t0 + Duration::from_millis(200)));
    }

    #[test]
    fn all_rooms_together_are_bounded_too() {
        let t0 = Instant::now();
        let rate = ChatRate::new(t0);
        let admitted = (0..1000).filter(|_| rate.admit_any(t0)).count();
        assert_eq!(admitted, ALL_BURST as usize);
        assert!(rate.admit_any(t0 + Duration::from_secs(1)));
    }

    #[test]
    fn idle_rooms_are_forgotten_when_many() {
        let t0 = Instant::now();
        let rate = ChatRate::new(t0);
        for i in 0..ROOMS_KEPT {
            rate.admit_room(&format!("r{i}"), t0);
        }
        let later = t0 + Duration::from_secs(3600);
        assert!(rate.admit_room("new", later));
        assert_eq!(rate.rooms.lock().expect("lock").len(), 1);
    }
}

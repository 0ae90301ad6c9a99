//! A test double of the webinar engine: rooms in a map, a fixed number of slots, and
//! switches for the failures the HTTP layer must turn into answers.

use std::collections::HashMap;
use std::sync::Mutex;

use super::engine::{ChatPanel, Refusal, StartRequest, Started, Stopped, Webinars};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Normal,
    /// Every call waits forever.
    Hang,
    /// Every call panics.
    Panic,
    /// BBB does not know any meeting.
    NoMeeting,
    /// BBB does not answer.
    BbbDown,
    /// Every call fails unexpectedly.
    Broken,
}

#[derive(Debug, Default)]
pub struct Double {
    pub slots: usize,
    pub mode: Mutex<Mode>,
    /// room → (gateway path, chat shown)
    pub rooms: Mutex<HashMap<String, (String, bool)>>,
    pub messages: Mutex<Vec<(String, String)>>,
    pub shut_down: Mutex<bool>,
}

impl Double {
    pub fn with_slots(slots: usize) -> Double {
        Double {
            slots,
            ..Double::default()
        }
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.lock().expect("lock") = mode;
    }

    /// Waits, panics or refuses as the mode says; `Ok` in normal mode.
    async fn mode(&self) -> Result<(), Refusal> {
        let mode = *self.mode.lock().expect("lock");
        match mode {
            Mode::Normal => Ok(()),
            Mode::Hang => std::future::pending().await,
            Mode::Panic => panic!("the double panics"),
            Mode::NoMeeting => Err(Refusal::MeetingUnknown),
            Mode::BbbDown => Err(Refusal::BbbUnreachable),
            Mode::Broken => Err(Refusal::Internal(anyhow::anyhow!(
                "disk full, secret=hunter2"
            ))),
        }
    }
}

impl Webinars for Double {
    async fn start(&self, req: StartRequest) -> Result<Started, Refusal> {
        self.mode().await?;
        let mut rooms = self.rooms.lock().expect("lock");
        if rooms
            .get(&req.room)
            .is_some_and(|(p, _)| *p == req.gateway_path)
        {
            return Ok(Started {
                already: true,
                slot: Some(1),
                meeting_running: false,
            });
        }
        if let Some((other, _)) = rooms.iter().find(|(_, (p, _))| *p == req.gateway_path) {
            return Err(Refusal::GatewayBusy {
                room: other.clone(),
            });
        }
        if rooms.len() >= self.slots {
            return Err(Refusal::Full);
        }
        rooms.insert(req.room, (req.gateway_path, true));
        Ok(Started {
            already: false,
            slot: Some(rooms.len() as u32),
            meeting_running: false,
        })
    }

    async fn stop(&self, room: &str) -> Result<Stopped, Refusal> {
        self.mode().await?;
        let was_live = self.rooms.lock().expect("lock").remove(room).is_some();
        Ok(Stopped { was_live })
    }

    async fn toggle_chat(&self, room: &str) -> Result<ChatPanel, Refusal> {
        self.mode().await?;
        let mut rooms = self.rooms.lock().expect("lock");
        let (_, shown) = rooms.get_mut(room).ok_or(Refusal::NotLiveHere)?;
        *shown = !*shown;
        Ok(ChatPanel { shown: *shown })
    }

    async fn chat(&self, room: &str, msg: &str) -> Result<(), Refusal> {
        self.mode().await?;
        if !self.is_live_here(room) {
            return Err(Refusal::NotLiveHere);
        }
        self.messages
            .lock()
            .expect("lock")
            .push((room.to_owned(), msg.to_owned()));
        Ok(())
    }

    fn is_live_here(&self, room: &str) -> bool {
        self.rooms.lock().expect("lock").contains_key(room)
    }

    fn running(&self) -> usize {
        self.rooms.lock().expect("lock").len()
    }

    async fn shutdown(&self) {
        *self.shut_down.lock().expect("lock") = true;
    }
}

//! The socket table: dense small ids (reused lowest-first after removal),
//! each slot with a generation so completions for a removed socket can be
//! told apart from those for the socket that reuses its id.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};

use super::addr::Family;
use super::SocketId;

/// Generations wrap at 24 bits (they share a `u64` user-data word with an
/// operation kind and the slot index).
pub(crate) const GEN_MASK: u32 = 0x00FF_FFFF;

#[derive(Debug)]
pub(crate) struct Slot {
    socket: Option<UdpSocket>,
    pub(crate) fd: RawFd,
    pub(crate) family: Family,
    pub(crate) local: Option<SocketAddr>,
    pub(crate) gen: u32,
}

#[derive(Debug, Default)]
pub(crate) struct SocketTable {
    slots: Vec<Slot>,
    free: BinaryHeap<Reverse<u32>>,
    live: usize,
}

impl SocketTable {
    /// Stores `socket`; returns its id and the slot's new generation.
    pub(crate) fn insert(&mut self, socket: UdpSocket) -> std::io::Result<(SocketId, u32)> {
        let local = socket.local_addr().ok();
        let family = match local {
            Some(a) => Family::of(&a),
            None => socket_family(&socket)?,
        };
        let fd = socket.as_raw_fd();
        let index = if let Some(Reverse(i)) = self.free.pop() {
            i
        } else {
            let i = u32::try_from(self.slots.len())
                .map_err(|_| std::io::Error::from_raw_os_error(libc::EMFILE))?;
            self.slots.push(Slot {
                socket: None,
                fd: -1,
                family,
                local: None,
                gen: 0,
            });
            i
        };
        let slot = &mut self.slots[index as usize];
        slot.gen = (slot.gen + 1) & GEN_MASK;
        slot.socket = Some(socket);
        slot.fd = fd;
        slot.family = family;
        slot.local = local;
        self.live += 1;
        Ok((SocketId(index), slot.gen))
    }

    /// Takes the socket out of its slot (the id becomes free for reuse).
    pub(crate) fn remove(&mut self, id: SocketId) -> Option<(UdpSocket, u32)> {
        let slot = self.slots.get_mut(id.0 as usize)?;
        let socket = slot.socket.take()?;
        slot.fd = -1;
        slot.local = None;
        self.live -= 1;
        self.free.push(Reverse(id.0));
        Some((socket, slot.gen))
    }

    /// The live slot for `id`.
    #[inline]
    pub(crate) fn get(&self, id: SocketId) -> Option<&Slot> {
        self.slots.get(id.0 as usize).filter(|s| s.socket.is_some())
    }

    /// The live slot at `index` if it still has generation `gen`.
    #[inline]
    pub(crate) fn current(&self, index: u32, gen: u32) -> Option<&Slot> {
        self.slots
            .get(index as usize)
            .filter(|s| s.socket.is_some() && s.gen == gen)
    }

    pub(crate) fn live(&self) -> usize {
        self.live
    }
}

fn socket_family(socket: &UdpSocket) -> std::io::Result<Family> {
    let mut domain: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `domain`/`len` are valid for writes of one c_int, as the
    // option requires; the fd is owned by `socket` and open.
    let r = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_DOMAIN,
            (&raw mut domain).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    match domain {
        libc::AF_INET => Ok(Family::V4),
        libc::AF_INET6 => Ok(Family::V6),
        _ => Err(std::io::Error::from_raw_os_error(libc::EAFNOSUPPORT)),
    }
}

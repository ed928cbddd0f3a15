//! The named shared-memory region that joins the planes.
//!
//! ```text
//! offset 0      RegionHeader (magic, ABI version, size table, geometry)
//! rings_offset  per worker: ring control->data, ring data->control
//! counters_off  max_legs × counter::COUNT × u64
//!               workers × worker_stat::COUNT × u64
//! ```
//!
//! The data plane creates the region (a file under `/dev/shm`) and owns the
//! worker ends of the rings. The control plane attaches: the header's magic,
//! ABI version and size table must match its own build, else attaching fails
//! with an error naming both. The control plane takes an exclusive `flock` on
//! the file for as long as it is attached, so a second control plane is
//! refused while the first lives, and a killed one (whose lock the kernel
//! drops) can be replaced at once.

use core::sync::atomic::{AtomicU64, Ordering};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytemuck::{Pod, Zeroable};
use memmap2::MmapRaw;

use crate::abi::{self, ABI_VERSION, SIZE_TABLE};
use crate::ring::{Consumer, Producer, RingGeometry};

/// "STRAITDP" as a little-endian u64; written last when creating the region.
pub const MAGIC: u64 = u64::from_le_bytes(*b"STRAITDP");
const HEADER_LEN: usize = 4096;
const MAX_SIZES: usize = 32;

#[derive(Debug, Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct RegionHeader {
    magic: u64,
    abi_version: u32,
    header_len: u32,
    workers: u32,
    ring_capacity: u32,
    ring_slot_size: u32,
    max_legs: u32,
    owner_pid: u32,
    size_count: u32,
    port_min: u16,
    port_max: u16,
    _pad: u32,
    region_len: u64,
    rings_offset: u64,
    counters_offset: u64,
    sizes: [u32; MAX_SIZES],
}

const _: () = assert!(core::mem::size_of::<RegionHeader>() <= HEADER_LEN);
const _: () = assert!(SIZE_TABLE.len() <= MAX_SIZES);

/// The shape of a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionLayout {
    /// Number of data-plane workers (one ring pair each).
    pub workers: u32,
    /// Geometry of every ring.
    pub ring: RingGeometry,
    /// Slots in the per-leg counter table.
    pub max_legs: u32,
    /// Lowest media port (even).
    pub port_min: u16,
    /// Highest media port.
    pub port_max: u16,
}

impl RegionLayout {
    /// The worker that owns media `port`: ports are handed out in pairs
    /// (RTP, RTCP = RTP + 1), pair `k` belongs to worker `k % workers`.
    /// `None` outside the media port range.
    pub fn worker_for_port(&self, port: u16) -> Option<u32> {
        if port < self.port_min || port > self.port_max || self.workers == 0 {
            return None;
        }
        Some((u32::from(port - self.port_min) / 2) % self.workers)
    }

    fn offsets(&self) -> Result<(usize, usize, usize), RegionError> {
        let ring_len = self.ring.byte_len().map_err(RegionError::Layout)?;
        if self.workers == 0 || self.workers > 1024 {
            return Err(RegionError::Layout("workers must be 1..=1024"));
        }
        if self.max_legs == 0 || self.max_legs > 1 << 22 {
            return Err(RegionError::Layout("max_legs must be 1..=4194304"));
        }
        if self.port_min == 0 || !self.port_min.is_multiple_of(2) || self.port_max <= self.port_min
        {
            return Err(RegionError::Layout(
                "media ports: port_min must be even and non-zero, port_max above it",
            ));
        }
        let rings_offset = HEADER_LEN;
        let counters_offset = rings_offset + 2 * ring_len * self.workers as usize;
        let total = counters_offset
            + self.max_legs as usize * abi::counter::COUNT * 8
            + self.workers as usize * abi::worker_stat::COUNT * 8;
        Ok((rings_offset, counters_offset, total))
    }
}

/// Why a region could not be created or attached.
#[derive(Debug)]
#[non_exhaustive]
pub enum RegionError {
    /// The file could not be created, opened, sized, locked or mapped.
    Io(PathBuf, std::io::Error),
    /// No data plane has (finished) creating the region.
    NotInitialised(PathBuf),
    /// The region was built by a data plane of another ABI.
    AbiMismatch {
        /// Our [`ABI_VERSION`].
        ours: u32,
        /// The region's.
        theirs: u32,
        /// Which struct's size differs, if the versions agree.
        detail: String,
    },
    /// The header describes a region that does not fit the file.
    Corrupt(&'static str),
    /// A requested layout is invalid.
    Layout(&'static str),
    /// Another control plane is attached.
    Busy(PathBuf),
}

impl core::fmt::Display for RegionError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RegionError::Io(p, e) => write!(f, "shared memory {}: {e}", p.display()),
            RegionError::NotInitialised(p) => {
                write!(f, "shared memory {}: no data plane has initialised it", p.display())
            }
            RegionError::AbiMismatch {
                ours,
                theirs,
                detail,
            } => write!(
                f,
                "data plane ABI mismatch: this control plane speaks version {ours}, the data plane's region is version {theirs}{}{detail}",
                if detail.is_empty() { "" } else { ": " }
            ),
            RegionError::Corrupt(why) => write!(f, "shared memory region corrupt: {why}"),
            RegionError::Layout(why) => write!(f, "invalid region layout: {why}"),
            RegionError::Busy(p) => write!(
                f,
                "shared memory {}: another control plane is attached",
                p.display()
            ),
        }
    }
}

impl std::error::Error for RegionError {}

/// A mapped region, from either side.
#[derive(Debug)]
pub struct Region {
    map: Arc<MmapRaw>,
    path: PathBuf,
    layout: RegionLayout,
    rings_offset: usize,
    counters_offset: usize,
    // Keeps the control plane's flock for as long as the region is attached.
    _file: File,
    // False for a read-only observer (no flock, no rings).
    control: bool,
}

impl Region {
    /// Creates (or re-creates) the region at `path` for a data plane with
    /// `layout`, zeroed, with the header published last.
    pub fn create(path: impl AsRef<Path>, layout: RegionLayout) -> Result<Self, RegionError> {
        let path = path.as_ref().to_path_buf();
        let (rings_offset, counters_offset, total) = layout.offsets()?;
        let io = |e| RegionError::Io(path.clone(), e);
        // A fresh inode: a control plane still mapping an old region keeps
        // its (dead) copy instead of seeing this one change under it.
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io)?;
        file.set_len(total as u64).map_err(io)?;
        let map = Arc::new(MmapRaw::map_raw(&file).map_err(io)?);
        let mut sizes = [0u32; MAX_SIZES];
        for (dst, (_, size)) in sizes.iter_mut().zip(SIZE_TABLE.iter()) {
            *dst = *size;
        }
        let header = RegionHeader {
            magic: 0,
            abi_version: ABI_VERSION,
            header_len: HEADER_LEN as u32,
            workers: layout.workers,
            ring_capacity: layout.ring.capacity,
            ring_slot_size: layout.ring.slot_size,
            max_legs: layout.max_legs,
            owner_pid: std::process::id(),
            size_count: SIZE_TABLE.len() as u32,
            port_min: layout.port_min,
            port_max: layout.port_max,
            _pad: 0,
            region_len: total as u64,
            rings_offset: rings_offset as u64,
            counters_offset: counters_offset as u64,
            sizes,
        };
        let bytes = bytemuck::bytes_of(&header);
        // SAFETY: the mapping is at least HEADER_LEN bytes (the layout adds
        // it), freshly created and not yet visible to anyone who trusts it:
        // the magic is still zero.
        unsafe {
            core::ptr::copy_nonoverlapping(bytes.as_ptr(), map.as_mut_ptr(), bytes.len());
        }
        magic_cell(&map).store(MAGIC, Ordering::Release);
        Ok(Self {
            map,
            path,
            layout,
            rings_offset,
            counters_offset,
            _file: file,
            control: true,
        })
    }

    /// Attaches to an existing region as its control plane: checks magic, ABI
    /// version and size table, and takes the exclusive attachment lock.
    pub fn attach(path: impl AsRef<Path>) -> Result<Self, RegionError> {
        Self::open(path.as_ref(), true)
    }

    /// Maps an existing region to read its counters and worker statistics
    /// while a control plane is attached: same checks as
    /// [`attach`](Self::attach), no lock, and no rings
    /// ([`control_ends`](Self::control_ends) returns `None`).
    pub fn observe(path: impl AsRef<Path>) -> Result<Self, RegionError> {
        Self::open(path.as_ref(), false)
    }

    fn open(path: &Path, control: bool) -> Result<Self, RegionError> {
        let path = path.to_path_buf();
        let io = |e| RegionError::Io(path.clone(), e);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io)?;
        if control {
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => return Err(RegionError::Busy(path)),
                Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
            }
        }
        let file_len = file.metadata().map_err(io)?.len();
        if file_len < HEADER_LEN as u64 {
            return Err(RegionError::NotInitialised(path));
        }
        let map = Arc::new(MmapRaw::map_raw(&file).map_err(io)?);
        if magic_cell(&map).load(Ordering::Acquire) != MAGIC {
            return Err(RegionError::NotInitialised(path));
        }
        let mut header = RegionHeader::zeroed();
        // SAFETY: the mapping holds at least HEADER_LEN bytes (checked above)
        // and the header is immutable once the magic is published.
        unsafe {
            core::ptr::copy_nonoverlapping(
                map.as_ptr(),
                bytemuck::bytes_of_mut(&mut header).as_mut_ptr(),
                core::mem::size_of::<RegionHeader>(),
            );
        }
        check_abi(&header)?;
        let layout = RegionLayout {
            workers: header.workers,
            ring: RingGeometry {
                capacity: header.ring_capacity,
                slot_size: header.ring_slot_size,
            },
            max_legs: header.max_legs,
            port_min: header.port_min,
            port_max: header.port_max,
        };
        let (rings_offset, counters_offset, total) = layout
            .offsets()
            .map_err(|_| RegionError::Corrupt("geometry in header is invalid"))?;
        if rings_offset as u64 != header.rings_offset
            || counters_offset as u64 != header.counters_offset
            || total as u64 != header.region_len
            || total as u64 > file_len
        {
            return Err(RegionError::Corrupt(
                "offsets in header disagree with geometry or file size",
            ));
        }
        Ok(Self {
            map,
            path,
            layout,
            rings_offset,
            counters_offset,
            _file: file,
            control,
        })
    }

    /// The file backing the region.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The region's shape.
    pub fn layout(&self) -> RegionLayout {
        self.layout
    }

    fn ring_offset(&self, worker: u32, to_data: bool) -> usize {
        let ring_len = self
            .layout
            .ring
            .byte_len()
            .expect("layout was validated when the region was mapped");
        self.rings_offset + (2 * worker as usize + usize::from(!to_data)) * ring_len
    }

    /// The control plane's ends for `worker`: it produces rules and consumes
    /// events. Call once per worker per process. `None` for an observer.
    pub fn control_ends(&self, worker: u32) -> Option<(Producer, Consumer)> {
        if worker >= self.layout.workers || !self.control {
            return None;
        }
        let geo = self.layout.ring;
        // SAFETY: the offsets come from a validated layout that fits the
        // mapping; the flock makes this process the only control plane, so it
        // is the sole producer of the to-data ring and consumer of the other.
        unsafe {
            Some((
                Producer::new(self.map.clone(), self.ring_offset(worker, true), geo),
                Consumer::new(self.map.clone(), self.ring_offset(worker, false), geo),
            ))
        }
    }

    /// The data plane worker's ends: it consumes rules and produces events.
    /// Call once per worker, in the process that created the region.
    pub fn worker_ends(&self, worker: u32) -> Option<(Consumer, Producer)> {
        if worker >= self.layout.workers {
            return None;
        }
        let geo = self.layout.ring;
        // SAFETY: as in `control_ends`; the data plane creates one worker per
        // index, so each ring has one consumer and one producer on this side.
        unsafe {
            Some((
                Consumer::new(self.map.clone(), self.ring_offset(worker, true), geo),
                Producer::new(self.map.clone(), self.ring_offset(worker, false), geo),
            ))
        }
    }

    /// The counters of leg slot `slot`, or `None` past the table.
    pub fn counters(&self, slot: u32) -> Option<&[AtomicU64; abi::counter::COUNT]> {
        if slot >= self.layout.max_legs {
            return None;
        }
        let offset = self.counters_offset + slot as usize * abi::counter::COUNT * 8;
        // SAFETY: slot < max_legs, so the array lies inside the mapping; the
        // offset is 8-byte aligned (HEADER_LEN and ring lengths are multiples
        // of 64) and counters are only ever accessed atomically.
        Some(unsafe {
            &*(self.map.as_ptr().add(offset) as *const [AtomicU64; abi::counter::COUNT])
        })
    }
}

impl Region {
    /// Worker `worker`'s own counters ([`abi::worker_stat`]), published by
    /// the worker a few times per second; `None` past the last worker.
    pub fn worker_stats(&self, worker: u32) -> Option<&[AtomicU64; abi::worker_stat::COUNT]> {
        if worker >= self.layout.workers {
            return None;
        }
        let offset = self.counters_offset
            + self.layout.max_legs as usize * abi::counter::COUNT * 8
            + worker as usize * abi::worker_stat::COUNT * 8;
        // SAFETY: worker < workers, so the array lies inside the mapping (the
        // layout's total includes the worker blocks); 8-byte aligned as the
        // leg counters before it; only ever accessed atomically.
        Some(unsafe {
            &*(self.map.as_ptr().add(offset) as *const [AtomicU64; abi::worker_stat::COUNT])
        })
    }
}

fn magic_cell(map: &MmapRaw) -> &AtomicU64 {
    // SAFETY: every mapping here is at least HEADER_LEN bytes and page
    // aligned; the magic is only accessed atomically.
    unsafe { &*(map.as_ptr() as *const AtomicU64) }
}

fn check_abi(h: &RegionHeader) -> Result<(), RegionError> {
    let mismatch = |detail: String| RegionError::AbiMismatch {
        ours: ABI_VERSION,
        theirs: h.abi_version,
        detail,
    };
    if h.abi_version != ABI_VERSION {
        return Err(mismatch(String::new()));
    }
    if h.size_count as usize != SIZE_TABLE.len() {
        return Err(mismatch(format!(
            "{} ABI structs here, {} in the region",
            SIZE_TABLE.len(),
            h.size_count
        )));
    }
    for ((name, ours), theirs) in SIZE_TABLE.iter().zip(h.sizes.iter()) {
        if ours != theirs {
            return Err(mismatch(format!(
                "{name} is {ours} bytes here, {theirs} in the region"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("strait-region-{}-{name}", std::process::id()))
    }

    fn layout() -> RegionLayout {
        RegionLayout {
            workers: 2,
            ring: RingGeometry {
                capacity: 8,
                slot_size: 128,
            },
            max_legs: 4,
            port_min: 30000,
            port_max: 30099,
        }
    }

    #[test]
    fn ports_go_to_workers_in_pairs() {
        let l = layout();
        assert_eq!(l.worker_for_port(30000), Some(0));
        assert_eq!(l.worker_for_port(30001), Some(0));
        assert_eq!(l.worker_for_port(30002), Some(1));
        assert_eq!(l.worker_for_port(30004), Some(0));
        assert_eq!(l.worker_for_port(29999), None);
        assert_eq!(l.worker_for_port(30100), None);
    }

    fn poke_header(region: &Region, offset: usize, value: u32) {
        // SAFETY: test-only write of one u32 inside the 4 KiB header.
        unsafe {
            core::ptr::copy_nonoverlapping(
                value.to_le_bytes().as_ptr(),
                region.map.as_mut_ptr().add(offset),
                4,
            );
        }
    }

    #[test]
    fn attach_sees_layout_and_shares_rings_and_counters() {
        let path = tmp("share");
        let dp = Region::create(&path, layout()).unwrap();
        let cp = Region::attach(&path).unwrap();
        assert_eq!(cp.layout(), layout());
        let (mut tx, _) = cp.control_ends(1).unwrap();
        let (mut rx, _) = dp.worker_ends(1).unwrap();
        tx.push(abi::Kind::RemoveLeg as u16, &7u64.to_le_bytes())
            .unwrap();
        let got = rx.pop(|k, b| (k, b.to_vec())).unwrap().unwrap();
        assert_eq!(
            got,
            (abi::Kind::RemoveLeg as u16, 7u64.to_le_bytes().to_vec())
        );
        assert!(cp.control_ends(2).is_none());
        dp.counters(3).unwrap()[abi::counter::PACKETS_IN].store(42, Ordering::Relaxed);
        assert_eq!(
            cp.counters(3).unwrap()[abi::counter::PACKETS_IN].load(Ordering::Relaxed),
            42
        );
        assert!(cp.counters(4).is_none());
        dp.worker_stats(1).unwrap()[abi::worker_stat::RX_PACKETS].store(7, Ordering::Relaxed);
        assert_eq!(
            cp.worker_stats(1).unwrap()[abi::worker_stat::RX_PACKETS].load(Ordering::Relaxed),
            7
        );
        assert!(cp.worker_stats(2).is_none());
        // An observer reads counters beside the attached control plane, but
        // gets no rings.
        let obs = Region::observe(&path).unwrap();
        assert_eq!(
            obs.counters(3).unwrap()[abi::counter::PACKETS_IN].load(Ordering::Relaxed),
            42
        );
        assert!(obs.control_ends(0).is_none());
        assert!(matches!(Region::attach(&path), Err(RegionError::Busy(_))));
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn second_control_plane_is_refused_until_the_first_goes() {
        let path = tmp("busy");
        let _dp = Region::create(&path, layout()).unwrap();
        let first = Region::attach(&path).unwrap();
        assert!(matches!(Region::attach(&path), Err(RegionError::Busy(_))));
        drop(first);
        Region::attach(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn abi_version_mismatch_is_refused_naming_both_versions() {
        let path = tmp("abi");
        let dp = Region::create(&path, layout()).unwrap();
        poke_header(&dp, 8, ABI_VERSION + 1);
        let err = Region::attach(&path).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, RegionError::AbiMismatch { .. }), "{msg}");
        assert!(msg.contains(&format!("version {ABI_VERSION}")), "{msg}");
        assert!(
            msg.contains(&format!("version {}", ABI_VERSION + 1)),
            "{msg}"
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn struct_size_mismatch_is_refused_naming_the_struct() {
        let path = tmp("size");
        let dp = Region::create(&path, layout()).unwrap();
        // sizes[] starts after 8 u32 fields and three u64s past the magic.
        let sizes_at = core::mem::offset_of!(RegionHeader, sizes);
        poke_header(&dp, sizes_at + 4 * 2, 999);
        let msg = Region::attach(&path).unwrap_err().to_string();
        assert!(msg.contains("LegRule is"), "{msg}");
        assert!(msg.contains("999"), "{msg}");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn uninitialised_or_missing_region_is_a_clear_error() {
        let path = tmp("missing");
        assert!(matches!(Region::attach(&path), Err(RegionError::Io(..))));
        std::fs::write(&path, vec![0u8; 8192]).unwrap();
        assert!(matches!(
            Region::attach(&path),
            Err(RegionError::NotInitialised(_))
        ));
        std::fs::remove_file(&path).unwrap();
    }
}

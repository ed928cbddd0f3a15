//! The persistent part of the location store: a `redb` database (pure Rust,
//! one file, ACID, crash-safe) holding the bindings that are still useful
//! after a restart.
//!
//! One table maps a binding id (`u64`) to a record in our own compact,
//! versioned binary encoding (below). Every REGISTER that changes a
//! persistable binding is one small write transaction committed without
//! syncing (`Durability::None`); `flush` makes them durable with one fsync,
//! from the caller's timer. Bindings bound to a connection are never
//! written, so browser registrations cost no disk I/O at all.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use redb::{Database, DatabaseError, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use crate::sip::{FlowId, NameAddr, Transport};

use super::binding::{Binding, Reach};

const TABLE: TableDefinition<'static, u64, &[u8]> = TableDefinition::new("bindings_v1");

/// Record format version (first byte).
const RECORD_VERSION: u8 = 1;

/// Page cache for the database: the store is small.
const CACHE_BYTES: usize = 4 << 20;

/// A persistent-store failure (the in-memory registrar keeps working).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreError {
    /// The database file.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "location store {}: {}",
            self.path.display(),
            self.message
        )
    }
}

impl std::error::Error for StoreError {}

/// A binding as stored: everything needed to rebuild it, with the expiry in
/// wall-clock milliseconds since the UNIX epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) aor: String,
    pub(crate) contact: String,
    pub(crate) reg_id: Option<u32>,
    pub(crate) call_id: String,
    pub(crate) cseq: u32,
    pub(crate) expires_unix_ms: u64,
    pub(crate) path: Vec<String>,
    /// Whether the binding is reached through `flow` (else by routing).
    pub(crate) via_flow: bool,
    pub(crate) flow: FlowId,
    pub(crate) source: SocketAddr,
    pub(crate) user_agent: Option<String>,
}

impl Record {
    pub(crate) fn of(b: &Binding, expires_unix_ms: u64) -> Record {
        Record {
            aor: b.aor.clone(),
            contact: b.contact.to_string(),
            reg_id: b.reg_id,
            call_id: b.call_id.clone(),
            cseq: b.cseq,
            expires_unix_ms,
            path: b.path.clone(),
            via_flow: matches!(b.reach, Reach::Flow(_)),
            flow: b.flow,
            source: b.source,
            user_agent: b.user_agent.clone(),
        }
    }

    /// The stored Contact, parsed again.
    pub(crate) fn contact(&self) -> Option<NameAddr<'static>> {
        NameAddr::parse(&self.contact)
            .ok()
            .map(NameAddr::into_owned)
    }

    pub(crate) fn reach(&self) -> Reach {
        if self.via_flow {
            Reach::Flow(self.flow)
        } else {
            Reach::Route
        }
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Vec::with_capacity(256);
        w.push(RECORD_VERSION);
        put_str(&mut w, &self.aor);
        put_str(&mut w, &self.contact);
        match self.reg_id {
            Some(r) => {
                w.push(1);
                w.extend_from_slice(&r.to_le_bytes());
            }
            None => w.push(0),
        }
        put_str(&mut w, &self.call_id);
        w.extend_from_slice(&self.cseq.to_le_bytes());
        w.extend_from_slice(&self.expires_unix_ms.to_le_bytes());
        put_u32(&mut w, self.path.len());
        for p in &self.path {
            put_str(&mut w, p);
        }
        w.push(u8::from(self.via_flow));
        w.push(transport_code(self.flow.transport));
        put_str(&mut w, &self.flow.local.to_string());
        put_str(&mut w, &self.flow.remote.to_string());
        w.extend_from_slice(&self.flow.conn.to_le_bytes());
        put_str(&mut w, &self.source.to_string());
        match &self.user_agent {
            Some(ua) => {
                w.push(1);
                put_str(&mut w, ua);
            }
            None => w.push(0),
        }
        w
    }

    /// Decodes a record; `None` for anything malformed (never panics).
    pub(crate) fn decode(data: &[u8]) -> Option<Record> {
        let mut r = Reader { data };
        if r.u8()? != RECORD_VERSION {
            return None;
        }
        let aor = r.string()?;
        let contact = r.string()?;
        let reg_id = match r.u8()? {
            0 => None,
            1 => Some(r.u32()?),
            _ => return None,
        };
        let call_id = r.string()?;
        let cseq = r.u32()?;
        let expires_unix_ms = r.u64()?;
        let n = r.u32()?;
        let mut path = Vec::new();
        for _ in 0..n {
            path.push(r.string()?);
        }
        let via_flow = match r.u8()? {
            0 => false,
            1 => true,
            _ => return None,
        };
        let transport = transport_from_code(r.u8()?)?;
        let local = r.string()?.parse().ok()?;
        let remote = r.string()?.parse().ok()?;
        let conn = r.u64()?;
        let source = r.string()?.parse().ok()?;
        let user_agent = match r.u8()? {
            0 => None,
            1 => Some(r.string()?),
            _ => return None,
        };
        if !r.data.is_empty() {
            return None;
        }
        Some(Record {
            aor,
            contact,
            reg_id,
            call_id,
            cseq,
            expires_unix_ms,
            path,
            via_flow,
            flow: FlowId {
                transport,
                local,
                remote,
                conn,
            },
            source,
            user_agent,
        })
    }
}

fn transport_code(t: Transport) -> u8 {
    match t {
        Transport::Udp => 0,
        Transport::Tcp => 1,
        Transport::Tls => 2,
        Transport::Ws => 3,
        Transport::Wss => 4,
    }
}

fn transport_from_code(c: u8) -> Option<Transport> {
    Some(match c {
        0 => Transport::Udp,
        1 => Transport::Tcp,
        2 => Transport::Tls,
        3 => Transport::Ws,
        4 => Transport::Wss,
        _ => return None,
    })
}

fn put_u32(w: &mut Vec<u8>, n: usize) {
    let n = u32::try_from(n).expect("stored strings and lists are far below 4 GiB");
    w.extend_from_slice(&n.to_le_bytes());
}

fn put_str(w: &mut Vec<u8>, s: &str) {
    put_u32(w, s.len());
    w.extend_from_slice(s.as_bytes());
}

struct Reader<'a> {
    data: &'a [u8],
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.data.len() < n {
            return None;
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u32(&mut self) -> Option<u32> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Some(u32::from_le_bytes(a))
    }

    fn u64(&mut self) -> Option<u64> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Some(u64::from_le_bytes(a))
    }

    fn string(&mut self) -> Option<String> {
        let n = usize::try_from(self.u32()?).ok()?;
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).ok()
    }
}

/// What opening the store found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// The database file (`None`: persistence is off).
    pub path: Option<PathBuf>,
    /// Bindings restored.
    pub restored: usize,
    /// Stored bindings dropped because they had expired.
    pub dropped_expired: usize,
    /// Stored records dropped because they could not be decoded.
    pub dropped_undecodable: usize,
    /// Stored bindings dropped because they are beyond the configured limits.
    pub dropped_over_limit: usize,
    /// If the file was corrupt or unreadable: where it was moved, and why.
    /// A fresh, empty store was created in its place.
    pub moved_aside: Option<(PathBuf, String)>,
}

/// A stored record: binding id and encoded [`Record`].
pub(crate) type RawRecord = (u64, Vec<u8>);

/// The open database.
pub(crate) struct Store {
    db: Database,
    path: PathBuf,
    /// Commits made since the last durable one.
    dirty: bool,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// Whether an open failure means the file itself is bad (move it aside)
/// rather than something an operator must fix (permissions, another
/// process holding it).
fn file_is_bad(e: &DatabaseError) -> bool {
    match e {
        DatabaseError::DatabaseAlreadyOpen | DatabaseError::TransactionInProgress => false,
        DatabaseError::Storage(redb::StorageError::Io(io)) => matches!(
            io.kind(),
            std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
        ),
        _ => true,
    }
}

impl Store {
    fn err(path: &Path, e: impl fmt::Display) -> StoreError {
        StoreError {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }

    fn create(path: &Path) -> Result<Database, DatabaseError> {
        Database::builder().set_cache_size(CACHE_BYTES).create(path)
    }

    /// Opens (or creates) the store and reads every record. A corrupt file
    /// is renamed to `<name>.corrupt-<unix seconds>` and replaced by an empty
    /// one (reported in [`OpenReport::moved_aside`]); a file that cannot be
    /// opened for another reason (permissions, locked by another running
    /// process) is an error.
    pub(crate) fn open(
        path: &Path,
        now_unix_s: u64,
    ) -> Result<(Store, Vec<RawRecord>, OpenReport), StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Self::err(dir, e))?;
        }
        let mut report = OpenReport {
            path: Some(path.to_path_buf()),
            ..OpenReport::default()
        };
        let opened = match Self::create(path) {
            Ok(db) => Self::read_all(&db).map(|records| (db, records)),
            Err(e) if file_is_bad(&e) => Err(e.to_string()),
            Err(e) => return Err(Self::err(path, e)),
        };
        let (db, records) = match opened {
            Ok(x) => x,
            Err(why) => {
                let mut aside = path.as_os_str().to_owned();
                aside.push(format!(".corrupt-{now_unix_s}"));
                let aside = PathBuf::from(aside);
                std::fs::rename(path, &aside).map_err(|e| {
                    Self::err(
                        path,
                        format!("corrupt ({why}) and cannot be moved aside: {e}"),
                    )
                })?;
                report.moved_aside = Some((aside, why));
                let db = Self::create(path).map_err(|e| Self::err(path, e))?;
                (db, Vec::new())
            }
        };
        Ok((
            Store {
                db,
                path: path.to_path_buf(),
                dirty: false,
            },
            records,
            report,
        ))
    }

    fn read_all(db: &Database) -> Result<Vec<RawRecord>, String> {
        // Create the table if this is a new file.
        let w = db.begin_write().map_err(|e| e.to_string())?;
        w.open_table(TABLE).map_err(|e| e.to_string())?;
        w.commit().map_err(|e| e.to_string())?;
        let r = db.begin_read().map_err(|e| e.to_string())?;
        let t = r.open_table(TABLE).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for item in t.iter().map_err(|e| e.to_string())? {
            let (k, v) = item.map_err(|e| e.to_string())?;
            out.push((k.value(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// Writes and deletes records in one transaction. The commit is not
    /// synced to disk (`Durability::None`, a few microseconds): [`Store::flush`]
    /// does that, for every commit since the previous flush at once.
    pub(crate) fn apply(
        &mut self,
        puts: &[(u64, Vec<u8>)],
        deletes: &[u64],
    ) -> Result<(), StoreError> {
        if puts.is_empty() && deletes.is_empty() {
            return Ok(());
        }
        let path = self.path.clone();
        let e = |e: &dyn fmt::Display| Self::err(&path, e);
        let mut w = self.db.begin_write().map_err(|x| e(&x))?;
        w.set_durability(Durability::None).map_err(|x| e(&x))?;
        {
            let mut t = w.open_table(TABLE).map_err(|x| e(&x))?;
            for id in deletes {
                t.remove(id).map_err(|x| e(&x))?;
            }
            for (id, data) in puts {
                t.insert(id, data.as_slice()).map_err(|x| e(&x))?;
            }
        }
        w.commit().map_err(|x| e(&x))?;
        self.dirty = true;
        Ok(())
    }

    /// Whether commits await a [`Store::flush`].
    pub(crate) fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Makes every commit so far durable (one empty transaction with
    /// `Durability::Immediate`: one fsync).
    pub(crate) fn flush(&mut self) -> Result<(), StoreError> {
        if !self.dirty {
            return Ok(());
        }
        let path = self.path.clone();
        let e = |e: &dyn fmt::Display| Self::err(&path, e);
        let mut w = self.db.begin_write().map_err(|x| e(&x))?;
        w.set_durability(Durability::Immediate).map_err(|x| e(&x))?;
        w.commit().map_err(|x| e(&x))?;
        self.dirty = false;
        Ok(())
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // Best effort on a clean shutdown; a crash loses at most the commits
        // since the last flush (see the module docs of the registrar).
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        Record {
            aor: "sip:alice@example.com".into(),
            contact: "<sip:alice@192.0.2.1:5060>;+sip.instance=\"<urn:uuid:1>\"".into(),
            reg_id: Some(1),
            call_id: "c@x".into(),
            cseq: 7,
            expires_unix_ms: 1_700_000_600_000,
            path: vec!["<sip:edge.example.com;lr>".into()],
            via_flow: true,
            flow: FlowId {
                transport: Transport::Udp,
                local: "127.0.0.1:5060".parse().unwrap(),
                remote: "192.0.2.1:5060".parse().unwrap(),
                conn: 0,
            },
            source: "192.0.2.1:5060".parse().unwrap(),
            user_agent: Some("phone/1.0".into()),
        }
    }

    #[test]
    fn records_round_trip_and_reject_garbage() {
        let r = record();
        let bytes = r.encode();
        assert_eq!(Record::decode(&bytes), Some(r.clone()));
        // Every truncation and a trailing byte are refused.
        for n in 0..bytes.len() {
            assert_eq!(Record::decode(&bytes[..n]), None, "{n}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(Record::decode(&longer), None);
        let mut v2 = bytes;
        v2[0] = 2;
        assert_eq!(Record::decode(&v2), None);
        assert!(r.contact().is_some());
    }
}

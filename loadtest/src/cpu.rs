//! CPU accounting from `/proc`: per-core busy fractions from `/proc/stat`
//! and a process's or thread's CPU time from `/proc/<pid>/stat`
//! (`utime + stime`). Parsing is separate from reading so it can be tested
//! on crafted text.

use std::io;

/// Cumulative jiffies of one core.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CoreTimes {
    /// Everything but idle and iowait.
    pub busy: u64,
    /// Sum of all fields.
    pub total: u64,
}

impl CoreTimes {
    /// Busy fraction between `earlier` and `self` (0 if no time passed).
    pub fn busy_since(&self, earlier: &CoreTimes) -> f64 {
        let total = self.total.saturating_sub(earlier.total);
        if total == 0 {
            return 0.0;
        }
        self.busy.saturating_sub(earlier.busy) as f64 / total as f64
    }
}

/// Parses `/proc/stat`: the `cpuN` lines, indexed by N (missing cores stay default).
pub fn parse_proc_stat(text: &str) -> Vec<CoreTimes> {
    let mut cores = Vec::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let Some(name) = f.next() else { continue };
        let Some(n) = name
            .strip_prefix("cpu")
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        if n > 4096 {
            continue;
        }
        // user nice system idle iowait irq softirq steal (guest fields are
        // already included in user/nice).
        let v: Vec<u64> = f.take(8).filter_map(|x| x.parse().ok()).collect();
        if v.len() < 4 {
            continue;
        }
        let total: u64 = v.iter().sum();
        let idle = v[3] + v.get(4).copied().unwrap_or(0);
        if cores.len() <= n {
            cores.resize(n + 1, CoreTimes::default());
        }
        cores[n] = CoreTimes {
            busy: total - idle,
            total,
        };
    }
    cores
}

/// Parses `/proc/<pid>/stat` (or `/proc/<pid>/task/<tid>/stat`): `utime +
/// stime` in clock ticks. The command name may contain spaces and
/// parentheses, so fields are counted after the last `)`.
pub fn parse_pid_stat(text: &str) -> Option<u64> {
    let rest = &text[text.rfind(')')? + 1..];
    // After ")": state(3) ppid(4) ... utime is field 14, stime 15 (1-based
    // over the whole line), i.e. indexes 11 and 12 here.
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`).
pub fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions and only reads a constant.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// Reads `/proc/stat`.
pub fn read_cores() -> io::Result<Vec<CoreTimes>> {
    Ok(parse_proc_stat(&std::fs::read_to_string("/proc/stat")?))
}

/// CPU seconds (`utime + stime`) of process `pid`.
pub fn read_pid_cpu(pid: u32) -> io::Result<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    ticks_to_secs(&text)
}

/// CPU seconds of thread `tid` of this process.
pub fn read_thread_cpu(tid: u32) -> io::Result<f64> {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat"))?;
    ticks_to_secs(&text)
}

fn ticks_to_secs(text: &str) -> io::Result<f64> {
    parse_pid_stat(text)
        .map(|t| t as f64 / clock_ticks() as f64)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unparsable stat line"))
}

/// Mean busy fraction of `cores` between two `/proc/stat` snapshots, and
/// the per-core values.
pub fn busy_of(cores: &[usize], before: &[CoreTimes], after: &[CoreTimes]) -> (f64, Vec<f64>) {
    let per: Vec<f64> = cores
        .iter()
        .map(|&c| match (before.get(c), after.get(c)) {
            (Some(b), Some(a)) => a.busy_since(b),
            _ => 0.0,
        })
        .collect();
    let mean = if per.is_empty() {
        0.0
    } else {
        per.iter().sum::<f64>() / per.len() as f64
    };
    (mean, per)
}

/// How busy each of `cores` (deduplicated, sorted) was over one second,
/// sampled before a run: other tenants distort the figures.
pub fn baseline(cores: impl IntoIterator<Item = usize>) -> Vec<(usize, f64)> {
    let mut cores: Vec<usize> = cores.into_iter().collect();
    cores.sort_unstable();
    cores.dedup();
    let b0 = read_cores().unwrap_or_default();
    std::thread::sleep(std::time::Duration::from_secs(1));
    let b1 = read_cores().unwrap_or_default();
    let (_, per) = busy_of(&cores, &b0, &b1);
    cores.into_iter().zip(per).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat() {
        let a = parse_proc_stat(
            "cpu  10 0 10 100 0 0 0 0 0 0\ncpu0 5 0 5 50 0 0 0 0 0 0\ncpu1 100 1 20 200 10 3 4 2 0 0\nintr 1 2\n",
        );
        assert_eq!(a.len(), 2);
        assert_eq!(
            a[1],
            CoreTimes {
                busy: 130,
                total: 340
            }
        );
        let b = parse_proc_stat("cpu1 150 1 70 300 10 3 4 2 0 0\n");
        // +100 busy, +200 total
        assert_eq!(b[1].busy_since(&a[1]), 0.5);
        assert_eq!(b[0].busy_since(&a[0]), 0.0);
        let (mean, per) = busy_of(&[1, 7], &a, &b);
        assert_eq!(per, vec![0.5, 0.0]);
        assert_eq!(mean, 0.25);
    }

    #[test]
    fn parses_pid_stat_with_odd_names() {
        let line = "1234 (rtp engine (x)) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 5 0 100 0 0";
        assert_eq!(parse_pid_stat(line), Some(325));
        assert_eq!(parse_pid_stat("1234 (x) S 1"), None);
        assert_eq!(parse_pid_stat("no paren"), None);
    }

    #[test]
    fn reads_own_process() {
        let me = read_pid_cpu(std::process::id()).unwrap();
        assert!(me >= 0.0);
        assert!(!read_cores().unwrap().is_empty());
    }
}

//! Long jobs: progress streamed to the page over a channel, and a cancel token per job that
//! the page trips by the id it gave the job.

use super::{blocking, CommandError};
use dimg::ops::{Cancel, Progress};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tauri::ipc::Channel;
use tauri::State;

/// Cancel tokens of running jobs, by the id the page gave them.
#[derive(Default)]
pub struct Jobs(Mutex<HashMap<u64, Cancel>>);

impl Jobs {
    fn start(&self, id: u64) -> Cancel {
        let cancel = Cancel::new();
        self.0.lock().expect("jobs lock").insert(id, cancel.clone());
        cancel
    }
    fn finish(&self, id: u64) {
        self.0.lock().expect("jobs lock").remove(&id);
    }
}

#[tauri::command]
pub fn cancel_job(job: u64, jobs: State<Jobs>) {
    if let Some(cancel) = jobs.0.lock().expect("jobs lock").get(&job) {
        cancel.cancel();
    }
}

#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgressEvent {
    phase: String,
    done: u64,
    total: u64,
}

/// Streams progress to the page over a channel, at most every 50 ms (and always the last step),
/// so a fast job never floods the page.
struct ChannelProgress {
    channel: Channel<ProgressEvent>,
    state: Mutex<(String, u64, Instant)>,
}

const PROGRESS_INTERVAL: Duration = Duration::from_millis(50);

impl ChannelProgress {
    fn new(channel: Channel<ProgressEvent>) -> Self {
        let long_ago = Instant::now() - PROGRESS_INTERVAL;
        ChannelProgress {
            channel,
            state: Mutex::new((String::new(), 0, long_ago)),
        }
    }
}

impl Progress for ChannelProgress {
    fn begin(&self, phase: &str, total: u64) {
        let mut state = self.state.lock().expect("progress lock");
        *state = (phase.to_string(), total, Instant::now() - PROGRESS_INTERVAL);
    }
    fn advance(&self, done: u64) {
        let mut state = self.state.lock().expect("progress lock");
        let (phase, total, last) = &mut *state;
        if done < *total && last.elapsed() < PROGRESS_INTERVAL {
            return;
        }
        *last = Instant::now();
        // The page may have gone away; the job goes on regardless.
        let _ = self.channel.send(ProgressEvent {
            phase: phase.clone(),
            done,
            total: *total,
        });
    }
}

/// A finished job's report, and what it says to a person as `dimg` prints it: the sheet's Show
/// Details.
#[derive(Serialize)]
pub struct Reported<T> {
    report: T,
    text: String,
}

/// Runs a long engine job with progress streamed to the page and a cancel token the page can
/// trip through `cancel_job(id)`; its report comes back with its `text`.
pub(super) async fn long_job<T: Send + 'static>(
    jobs: &Jobs,
    id: u64,
    channel: Channel<ProgressEvent>,
    text: fn(&T) -> String,
    work: impl FnOnce(&dyn Progress, &Cancel) -> dimg::Result<T> + Send + 'static,
) -> Result<Reported<T>, CommandError> {
    let cancel = jobs.start(id);
    let progress = ChannelProgress::new(channel);
    let result = blocking(move || work(&progress, &cancel)).await;
    jobs.finish(id);
    result.map(|report| Reported {
        text: text(&report),
        report,
    })
}

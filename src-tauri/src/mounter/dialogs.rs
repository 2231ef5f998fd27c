//! The mounter's small native windows, in GTK (which the app's window already links): the
//! passphrase, a job's progress with Cancel, and a sentence to read. Each is modal and stands
//! alone (there is no main window). Every sentence shown is also written to standard error, as
//! the session's log would keep it.

use dimg::ops::{Cancel, Progress};
use dimg::{Error, Passphrase};
use gtk::prelude::*;
use gtk::{ButtonsType, DialogFlags, MessageType, ResponseType};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// A job that ends within this shows no progress window (most images verify at once).
const SHOW_PROGRESS_AFTER: Duration = Duration::from_millis(400);

/// A window title naming what it is about: "Verifying: disk.dmg".
pub fn title(what: &str, image: &Path) -> String {
    let name = image.file_name().unwrap_or(image.as_os_str());
    format!("{what}: {}", name.to_string_lossy())
}

/// Shows `sentence` until the user closes it.
pub fn tell(title: &str, sentence: &str) {
    eprintln!("dimg-app: {sentence}");
    let dialog = message(title, MessageType::Error, ButtonsType::Ok, sentence);
    dialog.run();
    close(&dialog);
}

/// Says that `name` holds nothing to mount, and what it holds; true when the user asks to open
/// it in dimg instead.
pub fn nothing_to_mount(name: &str, holds: &str) -> bool {
    let sentence = format!("“{name}” has no volume dimg can mount: it is {holds}.");
    eprintln!("dimg-app: {sentence}");
    let dialog = message(
        &format!("Nothing to mount: {name}"),
        MessageType::Info,
        ButtonsType::None,
        &sentence,
    );
    dialog.add_button("Open in dimg", ResponseType::Accept);
    dialog.add_button("OK", ResponseType::Ok);
    dialog.set_default_response(ResponseType::Ok);
    let answer = dialog.run();
    close(&dialog);
    answer == ResponseType::Accept
}

/// Asks for the passphrase of the image `name`, with "Remember password in my keychain" (off
/// unless ticked). `None` when cancelled.
pub fn ask_passphrase(name: &str) -> Option<(Passphrase, bool)> {
    let (dialog, _) = with_text(
        &format!("Password: {name}"),
        &[("Cancel", ResponseType::Cancel), ("OK", ResponseType::Ok)],
        &format!("Enter a password to access “{name}”:"),
    );
    dialog.set_default_response(ResponseType::Ok);
    dialog.set_resizable(false);
    let entry = gtk::Entry::new();
    entry.set_visibility(false);
    entry.set_activates_default(true);
    entry.set_input_purpose(gtk::InputPurpose::Password);
    let remember = gtk::CheckButton::with_label("Remember password in my keychain");
    remember.set_active(false);
    let area = dialog.content_area();
    area.add(&entry);
    area.add(&remember);
    dialog.show_all();
    entry.grab_focus();
    let answer = dialog.run();
    let typed = (answer == ResponseType::Ok).then(|| (take_secret(&entry), remember.is_active()));
    entry.set_text("");
    close(&dialog);
    typed
}

/// The entry's text, read from GTK's own buffer (not through a copy that would outlive it);
/// clearing the entry afterwards makes GTK wipe that buffer.
fn take_secret(entry: &gtk::Entry) -> Passphrase {
    use gtk::glib::translate::ToGlibPtr;
    // SAFETY: gtk_entry_get_text returns the entry's NUL-terminated buffer, valid until the
    // entry changes; it is copied at once, into memory the passphrase wipes when dropped.
    let bytes = unsafe {
        let text = gtk::ffi::gtk_entry_get_text(entry.to_glib_none().0);
        std::ffi::CStr::from_ptr(text).to_bytes().to_vec()
    };
    Passphrase::new(bytes)
}

/// Runs `job` on its own thread; when it takes a while, a window shows its progress with
/// Cancel, which cancels the job (it then returns `Error::Cancelled`).
pub fn with_progress<T: Send + 'static>(
    name: &str,
    job: impl FnOnce(&dyn Progress, &Cancel) -> dimg::Result<T> + Send + 'static,
) -> dimg::Result<T> {
    let watched = Arc::new(Watched::default());
    let cancel = Cancel::new();
    let (done, outcome) = mpsc::channel();
    {
        let (watched, cancel) = (watched.clone(), cancel.clone());
        std::thread::spawn(move || done.send(job(&*watched, &cancel)));
    }
    let stopped = || {
        Error::io(
            Path::new(name),
            std::io::Error::other("the job stopped without an answer"),
        )
    };
    match outcome.recv_timeout(SHOW_PROGRESS_AFTER) {
        Ok(result) => return result,
        Err(mpsc::RecvTimeoutError::Disconnected) => return Err(stopped()),
        Err(mpsc::RecvTimeoutError::Timeout) => {}
    }
    let (dialog, phase) = with_text(
        &format!("Verifying: {name}"),
        &[("Cancel", ResponseType::Cancel)],
        &format!("Verifying “{name}”…"),
    );
    dialog.set_default_size(380, -1);
    let bar = gtk::ProgressBar::new();
    dialog.content_area().add(&bar);
    // Closing the window cancels too.
    dialog.connect_response({
        let cancel = cancel.clone();
        move |_, _| cancel.cancel()
    });
    dialog.show_all();
    let result = loop {
        while gtk::events_pending() {
            gtk::main_iteration();
        }
        match outcome.recv_timeout(Duration::from_millis(50)) {
            Ok(result) => break result,
            Err(mpsc::RecvTimeoutError::Disconnected) => break Err(stopped()),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                bar.set_fraction(watched.fraction());
                phase.set_text(&format!("{} “{name}”…", watched.phase()));
            }
        }
    };
    close(&dialog);
    result
}

/// A job's progress as the window shows it.
#[derive(Default)]
struct Watched {
    phase: Mutex<String>,
    total: AtomicU64,
    done: AtomicU64,
}

impl Watched {
    fn fraction(&self) -> f64 {
        match self.total.load(Ordering::Relaxed) {
            0 => 0.0,
            total => self.done.load(Ordering::Relaxed) as f64 / total as f64,
        }
    }
    fn phase(&self) -> String {
        self.phase.lock().expect("phase lock").clone()
    }
}

impl Progress for Watched {
    fn begin(&self, phase: &str, total: u64) {
        *self.phase.lock().expect("phase lock") = phase.to_string();
        self.total.store(total, Ordering::Relaxed);
        self.done.store(0, Ordering::Relaxed);
    }
    fn advance(&self, done: u64) {
        self.done.store(done, Ordering::Relaxed);
    }
}

/// A modal dialog titled `title` with `buttons`, `text` at the top of it (the label returned,
/// for a dialog that changes it); what else it asks goes below.
fn with_text(
    title: &str,
    buttons: &[(&str, ResponseType)],
    text: &str,
) -> (gtk::Dialog, gtk::Label) {
    let dialog = gtk::Dialog::with_buttons(
        Some(title),
        None::<&gtk::Window>,
        DialogFlags::MODAL,
        buttons,
    );
    let area = dialog.content_area();
    area.set_spacing(10);
    area.set_border_width(14);
    let label = gtk::Label::new(Some(text));
    label.set_xalign(0.0);
    area.add(&label);
    (dialog, label)
}

fn message(
    title: &str,
    kind: MessageType,
    buttons: ButtonsType,
    sentence: &str,
) -> gtk::MessageDialog {
    let dialog = gtk::MessageDialog::new(
        None::<&gtk::Window>,
        DialogFlags::MODAL,
        kind,
        buttons,
        sentence,
    );
    dialog.set_title(title);
    dialog
}

/// Takes a dialog off the screen at once (there is no main loop to do it later).
fn close(dialog: &impl IsA<gtk::Widget>) {
    dialog.as_ref().hide();
    while gtk::events_pending() {
        gtk::main_iteration();
    }
}

//! Progress bars for training loops.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

/// A progress bar on stderr counting `total` `unit`s (e.g. `"epoch"`, `"steps"`), with the
/// elapsed time, an estimate of the time left and a message slot for the loss and throughput
/// (`bar.set_message(..)`). It is hidden, and costs nothing, when `quiet` is set or when stdout
/// or stderr is not a terminal (output piped to a file or another program).
pub fn bar(total: u64, unit: &str, quiet: bool) -> ProgressBar {
    let interactive = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
    let bar = if quiet || !interactive {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total)
    };
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{bar:40}} {unit} {{pos}}/{{len}} {{msg}} [{{elapsed}} < {{eta}}]"
        ))
        .expect("a valid progress template"),
    );
    bar
}
